"""Message templates (Jinja2, sandboxed) and rendering fitted to a channel.

A templates directory holds one `<name>.j2` file per template, read when the rules are (re)loaded (examples/loir-et-cher/templates/:
alerte, alerte-sms, mise-a-jour, fin-alerte). Templates are plain text, not HTML, and a misspelt variable
is an error rather than an empty string. Variables:

    title, text, link, signature          the alert's fields (text may arrive shortened, see below)
    authority                             who issued what the alert relays ("Préfecture de Loir-et-Cher"),
                                          "" for the département's own message
    hashtags (list), hashtags_text        "#route41 #route28"
    territories (codes), roads (labels "RD 957"), roads_text
    severity ("Severe"), severity_fr ("forte"), msg_type ("Alert" / "Update" / "Cancel")
    expires (aware datetime in Europe/Paris or None), expires_text ("jeudi 17/01 à 18h00" or "")
    channel (the channel kind: "x", "sms"...), rule

When the rendered message is too long for the channel, `text` (the body) is cut at a word boundary and
ends with "…" ("..." in SMS). The title, hashtags, link and signature are never cut; if they alone do not
fit, `FittingError` says so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from alerts.domain import Alert, Severity, web_link
from alerts.errors import CrieurError
from channels.base import Limits

from .engine import PARIS
from .fitting import (
    FittingError,
    Rendered,
    bluesky_facets,
    describe_limit,
    fit_body,
    measure,
    to_gsm7,
)
from .yamlcheck import RuleError

SUFFIX = ".j2"
SEVERITY_FR = {
    Severity.UNKNOWN: "",
    Severity.MINOR: "faible",
    Severity.MODERATE: "modérée",
    Severity.SEVERE: "forte",
    Severity.EXTREME: "extrême",
}
_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_BLANK_LINES = re.compile(r"\n{3,}")


class TemplateRenderError(CrieurError):
    """A template failed while rendering (unknown variable, sandbox violation...)."""


# What a template may compute. A message is at most a few thousand characters: anything far larger is a
# mistake or an attack on the workers' memory (`{{ 10**10**6 }}`, `{{ "x" * 10**8 }}`).
MAX_OUTPUT = 20_000  # characters a template may produce
MAX_VALUE = 20_000  # length of a string or list built by * or +, width given to a filter or a % format
MAX_POWER_BITS = 4096  # size of an integer built by **
MAX_RANGE = 1000  # items of range()
_WIDE_FORMAT = re.compile(r"%[-#0 +]*(\*|\d{5,}|\d*\.(\*|\d{5,}))")


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox (no attribute escapes) with caps on what an expression may build."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, (str, list, tuple)) and isinstance(count, int):
                    _check_size(len(sized) * max(count, 0), "a repeated string or list")
            if isinstance(left, int) and isinstance(right, int):
                _check_bits(abs(left).bit_length() + abs(right).bit_length())
        elif operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _check_size(len(left) + len(right), "a concatenation")
        elif operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
            raise SecurityError(f"template: a % format wider than {MAX_VALUE} characters")
        return super().call_binop(context, operator, left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in ("format", "format_map"):
            return False  # widths in a format string are not capped: use the |format filter
        return super().is_safe_attribute(obj, attr, value)


def _check_size(size: int, what: str) -> None:
    if size > MAX_VALUE:
        raise SecurityError(f"template: {what} of {size} items, over the limit of {MAX_VALUE}")


def _check_bits(bits: int) -> None:
    if bits > MAX_POWER_BITS:
        raise SecurityError(f"template: a number of about {bits} bits, over the limit of {MAX_POWER_BITS}")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, bool) or isinstance(exponent, bool):
        return
    if isinstance(base, (int, float)) and isinstance(exponent, (int, float)):
        if abs(exponent) > MAX_POWER_BITS:
            if abs(base) > 1:
                raise SecurityError(f"template: exponent {exponent} over the limit of {MAX_POWER_BITS}")
            return
        if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
            _check_bits(abs(base).bit_length() * exponent)


def _capped(filter_function: Any, *width_arguments: int) -> Any:
    """A filter whose width arguments (by position after the value, or by name) are capped."""
    names = {"width", "length"}

    def capped(*args: Any, **kwargs: Any) -> Any:
        for index in width_arguments:
            if len(args) > index and isinstance(args[index], int):
                _check_size(args[index], "a filter width")
        for name in names & kwargs.keys():
            if isinstance(kwargs[name], int):
                _check_size(kwargs[name], "a filter width")
        return filter_function(*args, **kwargs)

    for attribute in ("jinja_pass_arg",):
        if hasattr(filter_function, attribute):
            setattr(capped, attribute, getattr(filter_function, attribute))
    return capped


def _safe_range(*args: int) -> range:
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise SecurityError(f"template: range of {len(found)} items, over the limit of {MAX_RANGE}")
    return found


class Templates:
    """Templates from a directory (or, for tests, a {name: source} mapping)."""

    def __init__(self, source: str | os.PathLike[str] | Mapping[str, str]):
        if isinstance(source, Mapping):
            loader: jinja2.BaseLoader = jinja2.DictLoader({f"{k}{SUFFIX}": v for k, v in source.items()})
            self.directory: Path | None = None
        else:
            self.directory = Path(source)
            if not self.directory.is_dir():
                raise FileNotFoundError(f"templates directory not found: {os.fspath(source)}")
            # Read once: a snapshot in force must not change when files are edited before a reload.
            loader = jinja2.DictLoader(
                {
                    p.name: p.read_text(encoding="utf-8")
                    for p in sorted(self.directory.glob(f"*{SUFFIX}"))
                    if p.is_file()
                }
            )
        self.env = _Sandbox(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["range"] = _safe_range
        for name, positions in (("center", (1,)), ("indent", (1,)), ("wordwrap", (2,)), ("truncate", (2,))):
            self.env.filters[name] = _capped(self.env.filters[name], *positions)
        self.env.filters["format"] = _capped_format(self.env.filters["format"])

    def names(self) -> frozenset[str]:
        return frozenset(n[: -len(SUFFIX)] for n in self.env.list_templates() if n.endswith(SUFFIX))

    def check(self) -> list[RuleError]:
        """Compile every template; syntax errors with file and line."""
        errors = []
        for name in sorted(self.names()):
            try:
                self.env.get_template(f"{name}{SUFFIX}")
            except jinja2.TemplateSyntaxError as exc:
                where = os.fspath(self.directory / f"{name}{SUFFIX}") if self.directory else f"{name}{SUFFIX}"
                errors.append(RuleError(where, exc.lineno or 0, 1, f"template syntax: {exc.message}"))
        return errors

    def render(
        self,
        alert: Alert,
        channel_kind: str,
        limits: Limits,
        template: str,
        signature: str = "",
        *,
        gsm7: bool = False,
    ) -> Rendered:
        """The message `channel_kind` receives for `alert`, fitted to `limits`.

        gsm7: for SMS, rewrite to GSM-7 characters (ê → e, ’ → ') to avoid UCS-2's 70-character segments.
        Raises FittingError when even the fixed parts exceed the limit, TemplateRenderError when the
        template fails, jinja2.TemplateNotFound for an unknown template."""
        try:
            compiled = self.env.get_template(f"{template}{SUFFIX}")
        except jinja2.TemplateNotFound:
            raise jinja2.TemplateNotFound(f"template {template!r} ({template}{SUFFIX})") from None
        context = _context(alert, channel_kind, signature or alert.signature)
        sms = limits.counting == "sms"
        ellipsis = "..." if sms else "…"

        def produce(body: str) -> str:
            try:
                text = _render_capped(compiled, {**context, "text": body})
            except (jinja2.TemplateError, ArithmeticError, ValueError, TypeError, MemoryError) as exc:
                raise TemplateRenderError(f"template {template!r}: {exc}") from exc
            text = _BLANK_LINES.sub("\n\n", "\n".join(line.rstrip() for line in text.splitlines())).strip()
            return to_gsm7(text) if sms and gsm7 else text

        fitted = fit_body(alert.text, produce, limits, ellipsis)
        if fitted is None:
            raise FittingError(
                f"template {template!r} on {channel_kind}: the message without its text is "
                f"{result_without_body(produce, limits)} long, over the limit of {describe_limit(limits)}"
                f" (rule {alert.rule or '-'}); shorten the title, hashtags or signature"
            )
        text, result, shortened = fitted
        facets = bluesky_facets(text) if channel_kind == "bluesky" or limits.counting == "graphemes" else ()
        return Rendered(text, result.length, result.segments, result.encoding, facets, shortened)


def _capped_format(format_filter: Any) -> Any:
    def capped(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and _WIDE_FORMAT.search(value):
            raise SecurityError(f"template: a format wider than {MAX_VALUE} characters")
        return format_filter(value, *args, **kwargs)

    return capped


def _render_capped(compiled: jinja2.Template, context: dict[str, Any]) -> str:
    """Render, stopping as soon as the output passes MAX_OUTPUT characters (a loop that writes
    forever is cut there, not when memory runs out)."""
    parts, size = [], 0
    for chunk in compiled.generate(context):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise SecurityError(f"template: output over {MAX_OUTPUT} characters")
        parts.append(chunk)
    return "".join(parts)


def result_without_body(produce, limits: Limits) -> str:
    m = measure(produce(""), limits)
    return f"{m.length} ({m.segments} segment(s), {m.encoding})" if m.encoding else str(m.length)


def _context(alert: Alert, channel_kind: str, signature: str) -> dict[str, Any]:
    expires = alert.expires.astimezone(PARIS) if alert.expires and alert.expires.tzinfo else alert.expires
    expires_text = ""
    if expires is not None:
        expires_text = f"{_DAYS_FR[expires.weekday()]} {expires:%d/%m} à {expires:%H}h{expires:%M}"
    roads = [road.label for road in alert.roads]
    return {
        "title": alert.title,
        "authority": alert.authority,
        "link": web_link(alert.link),
        "signature": signature,
        "hashtags": list(alert.hashtags),
        "hashtags_text": " ".join(alert.hashtags),
        "territories": list(alert.territories),
        "roads": roads,
        "roads_text": ", ".join(roads),
        "severity": alert.severity.cap if alert.severity else "",
        "severity_fr": SEVERITY_FR.get(alert.severity, ""),
        "msg_type": alert.msg_type.value,
        "expires": expires,
        "expires_text": expires_text,
        "channel": channel_kind,
        "rule": alert.rule,
    }
