"""The service configuration file (crieur.yaml), validated with file:line:column errors.

Paths inside it (territories, rules, templates, authorities, `file:` feeds) are relative to the file's own
folder. Secrets are never in it: channels name environment variables (`token_env: CRIEUR_MASTODON_TOKEN`).
Environment variables CRIEUR_DATABASE_URL, CRIEUR_DATA_DIR, CRIEUR_HOST, CRIEUR_PORT and
CRIEUR_PUBLIC_URL override the file, so one image serves every deployment.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from alerts.ingest import KINDS, SourceSpec
from channels import channel_class, known_kinds
from channels.base import Channel, ConfigurationError
from rules.yamlcheck import Checker, ValidationFailed, compose

SOURCE_KINDS = tuple(KINDS)
# citizens.*_channel settings that must name a channel of one kind
CHANNEL_KINDS = {"webhook_channel": "webhook", "mastodon_channel": "mastodon"}


@dataclass
class ServiceConfig:
    path: pathlib.Path
    name: str = "Crieur"
    public_url: str = "http://127.0.0.1:8041"
    host: str = "127.0.0.1"
    port: int = 8041
    data_dir: pathlib.Path = pathlib.Path("data")
    database: str = ""
    dry_run: bool = False
    signature: str = ""
    secret_key_env: str = "CRIEUR_SECRET_KEY"
    territories: pathlib.Path | None = None
    rules: list[pathlib.Path] = field(default_factory=list)
    templates: pathlib.Path | None = None
    authorities: pathlib.Path | None = None
    oncall: pathlib.Path | None = None  # the on-call rota (alerts.oncall.rota)
    exercise_channels: list[str] = field(default_factory=list)  # alerts.exercise
    exercise_recipients: list[str] = field(default_factory=list)
    geo: pathlib.Path | None = (
        None  # folder of GeoJSON outlines: maps (alerts.geo), targeting by commune (alerts.places)
    )
    sources: list[SourceSpec] = field(default_factory=list)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    sms_channel: str = ""
    email_channel: str = ""
    webhook_channel: str = ""  # escalations by webhook; else the first channel of kind webhook
    mastodon_channel: str = ""  # the account whose mentions are questions; else the first mastodon channel
    verify_twilio_signature: bool = True
    twilio_auth_token_env: str = ""
    # Facebook Page webhook (comments and Messenger): the variables holding the app secret (X-Hub-Signature-256)
    # and the verify token Facebook echoes when the webhook is subscribed.
    facebook_app_secret_env: str = ""
    facebook_verify_token_env: str = ""
    # Questions by e-mail: the address citizens write to, and where Crieur's SMTP endpoint listens (host:port).
    inbound_email: str = ""
    inbound_email_listen: str = ""
    escalation_window: float = 6 * 3600
    # A number whose last N messages all came back undelivered is put aside (0: never); texting us lifts it.
    undelivered_limit: int = 3
    citizen_limits: dict[str, Any] = field(default_factory=dict)  # see alerts.citizens.FloodLimits
    workers: int = 1
    partners: list[str] = field(default_factory=list)  # accounts whose #route41 posts join the wall
    # Hosts or networks that URLs from configuration or users (feeds, webhooks) may reach although they
    # are private or loopback; everything else internal is refused (SSRF guard, alerts.security).
    allow: list[str] = field(default_factory=list)
    trusted_proxies: list[str] = field(default_factory=list)  # reverse proxies whose X-Forwarded-For counts
    demo_secret_key: str = ""  # set by `crieur demo` only (never read from a file): used when the variable is unset

    @property
    def folder(self) -> pathlib.Path:
        return self.path.parent

    def secret_key(self) -> bytes:
        """Signing key for acknowledgement links and sessions, from the environment: never a built-in
        one, dry-run or not (only `crieur demo` sets demo_secret_key)."""
        value = os.environ.get(self.secret_key_env, "") or self.demo_secret_key
        if not value:
            raise ValidationFailed([_error(self.path, f"environment variable {self.secret_key_env} is not set")])
        return value.encode()


def _error(path: pathlib.Path, message: str) -> Any:
    from rules.yamlcheck import RuleError

    return RuleError(str(path), 0, 0, message)


def _plain(check: Checker, node: Node, path: str) -> Any:
    """A free-form subtree (channel or source options) as Python values; what YAML cannot build (a list
    as a key, an unknown !tag) is an error at its line, and None."""
    try:
        return yaml.SafeLoader("").construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        check.error(node, path, f"{problem}{at}")
        return None


def _duration(check: Checker, node: Node, path: str) -> float | None:
    """`90`, `90s`, `15m`, `6h`, `1d` → seconds."""
    if isinstance(node, ScalarNode):
        text = str(node.value).strip().lower()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        try:
            if text and text[-1] in units:
                return float(text[:-1]) * units[text[-1]]
            return float(text)
        except ValueError:
            pass
    check.error(node, path, "expected a duration such as 90, 90s, 15m, 6h")
    return None


def load_config(path: str | os.PathLike[str]) -> ServiceConfig:
    """Read and validate crieur.yaml; raises ValidationFailed listing every problem found."""
    path = pathlib.Path(path).resolve()
    root, errors = compose(path)
    if errors:
        raise ValidationFailed(errors)
    check = Checker(str(path))
    config = ServiceConfig(path=path)
    if root is None:
        raise ValidationFailed([_error(path, "the file is empty")])
    top = check.mapping(root, "", ("service", "sources", "channels", "citizens", "security", "exercise")) or {}

    def local(value: str) -> pathlib.Path:
        return (path.parent / value).resolve()

    if "service" in top:
        service = (
            check.mapping(
                top["service"][1],
                "service",
                (
                    "name",
                    "public_url",
                    "host",
                    "port",
                    "data_dir",
                    "database",
                    "dry_run",
                    "signature",
                    "secret_key_env",
                    "territories",
                    "rules",
                    "templates",
                    "authorities",
                    "workers",
                    "oncall",
                    "geo",
                ),
            )
            or {}
        )
        for key in ("name", "public_url", "host", "database", "signature", "secret_key_env"):
            if key in service:
                value = check.string(service[key][1], f"service.{key}", allow_empty=key == "signature")
                if value is not None:
                    setattr(config, key, value)
        if "port" in service:
            config.port = check.integer(service["port"][1], "service.port", minimum=1) or config.port
        if "workers" in service:
            config.workers = check.integer(service["workers"][1], "service.workers", minimum=0) or 0
        if "dry_run" in service:
            config.dry_run = bool(check.boolean(service["dry_run"][1], "service.dry_run"))
        if "data_dir" in service:
            value = check.string(service["data_dir"][1], "service.data_dir")
            if value:
                config.data_dir = pathlib.Path(value)
        for key in ("territories", "templates", "authorities", "oncall", "geo"):
            if key in service:
                value = check.string(service[key][1], f"service.{key}")
                if value:
                    setattr(config, key, local(value))
        if "rules" in service:
            config.rules = [local(v) for v in check.string_list(service["rules"][1], "service.rules")]

    names: set[str] = set()
    if "sources" in top:
        for node, where in check.items(top["sources"][1], "sources", scalar_ok=False):
            spec = _source(check, node, where, path.parent)
            if spec is None:
                continue
            if spec.name in names:
                check.error(node, where, f"duplicate source name {spec.name!r}")
            names.add(spec.name)
            config.sources.append(spec)

    if "channels" in top:
        node = top["channels"][1]
        if not isinstance(node, MappingNode):
            check.error(node, "channels", "expected a mapping of channel names to their settings")
        else:
            for key_node, value_node in node.value:
                name = str(key_node.value)
                options = _plain(check, value_node, f"channels.{name}")
                if options is None:
                    continue
                if not isinstance(options, dict) or not options.get("kind"):
                    check.error(value_node, f"channels.{name}", "expected a mapping with at least `kind`")
                    continue
                try:
                    cls = channel_class(str(options["kind"]))
                except ConfigurationError:
                    check.error(
                        value_node,
                        f"channels.{name}.kind",
                        f"unknown channel kind {options['kind']!r} (known: {', '.join(known_kinds())})",
                    )
                    continue
                assert isinstance(value_node, MappingNode)  # _plain built a dict from it
                _check_channel_options(
                    check, value_node, f"channels.{name}", cls, options, secrets_needed=not config.dry_run
                )
                config.channels[name] = options

    if "citizens" in top:
        citizens = (
            check.mapping(
                top["citizens"][1],
                "citizens",
                (
                    "sms_channel",
                    "email_channel",
                    "webhook_channel",
                    "mastodon_channel",
                    "verify_signature",
                    "twilio_auth_token_env",
                    "facebook_app_secret_env",
                    "facebook_verify_token_env",
                    "inbound_email",
                    "inbound_email_listen",
                    "escalation_window",
                    "partners",
                    "limits",
                    "undelivered_limit",
                ),
            )
            or {}
        )
        for key in ("sms_channel", "email_channel", "webhook_channel", "mastodon_channel", "twilio_auth_token_env"):
            if key in citizens:
                value = check.string(citizens[key][1], f"citizens.{key}")
                if value:
                    if key.endswith("_channel") and value not in config.channels:
                        check.error(citizens[key][1], f"citizens.{key}", f"no channel named {value!r}")
                    elif key in CHANNEL_KINDS and config.channels[value]["kind"] != CHANNEL_KINDS[key]:
                        check.error(
                            citizens[key][1],
                            f"citizens.{key}",
                            f"channel {value!r} is of kind "
                            f"{config.channels[value]['kind']!r}, not {CHANNEL_KINDS[key]!r}",
                        )
                    setattr(config, key, value)
        for key in ("facebook_app_secret_env", "facebook_verify_token_env", "inbound_email", "inbound_email_listen"):
            if key in citizens:
                setattr(config, key, check.string(citizens[key][1], f"citizens.{key}") or "")
        if config.inbound_email and "@" not in config.inbound_email:
            check.error(citizens["inbound_email"][1], "citizens.inbound_email", "not an e-mail address")
        listen = config.inbound_email_listen
        if listen and not (listen.rpartition(":")[0] and listen.rpartition(":")[2].isdigit()):
            check.error(citizens["inbound_email_listen"][1], "citizens.inbound_email_listen", "expected host:port")
        if "verify_signature" in citizens:
            config.verify_twilio_signature = bool(
                check.boolean(citizens["verify_signature"][1], "citizens.verify_signature")
            )
        if "undelivered_limit" in citizens:
            config.undelivered_limit = (
                check.integer(citizens["undelivered_limit"][1], "citizens.undelivered_limit", minimum=0) or 0
            )
        if "escalation_window" in citizens:
            config.escalation_window = (
                _duration(check, citizens["escalation_window"][1], "citizens.escalation_window")
                or config.escalation_window
            )
        if "limits" in citizens:
            from alerts.citizens import FloodLimits

            node = citizens["limits"][1]
            try:
                config.citizen_limits = _plain(check, node, "citizens.limits") or {}
                FloodLimits.from_mapping(config.citizen_limits)
            except (ValueError, AttributeError) as exc:
                check.error(node, "citizens.limits", str(exc).split(": ", 1)[-1])
        if "partners" in citizens:
            config.partners = check.string_list(citizens["partners"][1], "citizens.partners")

    if "security" in top:
        security = check.mapping(top["security"][1], "security", ("allow", "trusted_proxies")) or {}
        for key in ("allow", "trusted_proxies"):
            if key in security:
                setattr(config, key, check.string_list(security[key][1], f"security.{key}"))

    if "exercise" in top:  # alerts.exercise
        exercise = check.mapping(top["exercise"][1], "exercise", ("channels", "recipients")) or {}
        if "channels" in exercise:
            config.exercise_channels = check.string_list(exercise["channels"][1], "exercise.channels")
            for node, where in check.items(exercise["channels"][1], "exercise.channels"):
                if str(node.value) not in config.channels:
                    check.error(node, where, f"no channel named {node.value!r}")
        if "recipients" in exercise:
            from alerts.phones import InvalidPhone, normalise_phone

            for node, where in check.items(exercise["recipients"][1], "exercise.recipients"):
                try:
                    config.exercise_recipients.append(normalise_phone(str(node.value)))
                except InvalidPhone as exc:
                    check.error(node, where, f"not a phone number: {exc}")

    _apply_environment(config)
    if not config.database:
        config.database = f"sqlite:///{config.data_dir / 'crieur.db'}"
    for attr in ("territories", "authorities", "templates", "oncall", "geo"):
        target = getattr(config, attr)
        if target is not None and not target.exists():
            check.errors.append(_error(path, f"service.{attr}: {target.name} does not exist next to the file"))
    for rule_file in config.rules:
        if not rule_file.exists():
            check.errors.append(_error(path, f"service.rules: {rule_file.name} does not exist next to the file"))
    if check.errors:
        raise ValidationFailed(check.errors)
    return config


def _check_channel_options(
    check: Checker, node: MappingNode, where: str, cls: type[Channel], options: dict[str, Any], *, secrets_needed: bool
) -> None:
    """Each option against the adapter's declared table (channels.base.Option): unknown names, values of
    the wrong type and missing required options are errors at their line. A secret is given as
    `<name>_env: VARIABLE` (or `<name>` itself); required secrets are needed to send, not to dry-run."""
    table = {option.name: option for option in cls.option_table()}
    by_key = {**table, **{f"{o.name}_env": o for o in table.values() if o.type == "secret"}}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key == "kind":
            continue
        option = by_key.get(key)
        if option is None:
            check.error(
                key_node,
                f"{where}.{key}",
                f"unknown option for a {cls.kind} channel (known: {', '.join(sorted(by_key))})",
            )
            continue
        value = options.get(key)
        if key != option.name:  # <name>_env
            named = isinstance(value, str) and value
            problem = None if named else f"expected an environment variable name, got {value!r}"
        else:
            problem = option.problem(value)
        if problem:
            check.error(value_node, f"{where}.{key}", problem)
    for option in table.values():
        given = option.name in options or (option.type == "secret" and f"{option.name}_env" in options)
        if option.required and not given and (option.type != "secret" or secrets_needed):
            how = f"{option.name}_env: VARIABLE" if option.type == "secret" else option.name
            check.error(node, where, f"missing required option {how} ({option.description})")


def _source(check: Checker, node: Node, where: str, folder: pathlib.Path) -> SourceSpec | None:
    fields = check.mapping(
        node,
        where,
        ("name", "kind", "url", "interval", "timeout", "max_bytes", "authority", "options"),
        required=("name", "kind", "url"),
    )
    if fields is None or not {"name", "kind", "url"} <= fields.keys():
        return None
    name = check.string(fields["name"][1], f"{where}.name")
    kind = check.choice(fields["kind"][1], f"{where}.kind", SOURCE_KINDS)
    url = check.string(fields["url"][1], f"{where}.url")
    if name is None or kind is None or url is None:
        return None
    spec = SourceSpec(name=name, kind=kind, url=url)
    for key in ("interval", "timeout"):
        if key in fields:
            seconds = _duration(check, fields[key][1], f"{where}.{key}")
            if seconds is not None:
                setattr(spec, key, seconds)
    if "max_bytes" in fields:
        spec.max_bytes = check.integer(fields["max_bytes"][1], f"{where}.max_bytes", minimum=1) or spec.max_bytes
    if "authority" in fields:
        spec.authority = check.string(fields["authority"][1], f"{where}.authority") or ""
    options = _plain(check, fields["options"][1], f"{where}.options") if "options" in fields else {}
    if options is None:
        return None
    if not isinstance(options, dict):
        check.error(fields["options"][1], f"{where}.options", "expected a mapping")
        options = {}
    options.setdefault("base_dir", str(folder))
    spec.options = options
    return spec


def _apply_environment(config: ServiceConfig) -> None:
    env = os.environ
    if env.get("CRIEUR_DATA_DIR"):
        config.data_dir = pathlib.Path(env["CRIEUR_DATA_DIR"])
    if env.get("CRIEUR_DATABASE_URL"):
        config.database = env["CRIEUR_DATABASE_URL"]
    if env.get("CRIEUR_HOST"):
        config.host = env["CRIEUR_HOST"]
    if env.get("CRIEUR_PORT"):
        config.port = int(env["CRIEUR_PORT"])
    if env.get("CRIEUR_PUBLIC_URL"):
        config.public_url = env["CRIEUR_PUBLIC_URL"]
