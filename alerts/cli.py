"""`crieur` command line.

Commands that act on a deployment read its configuration from --config, else $CRIEUR_CONFIG, else the
bundled Loir-et-Cher example (the one `crieur demo` runs), so that after `crieur demo` the other commands
look at the demo's data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import pathlib
import signal
import sys
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from .logs import setup_logging

log = logging.getLogger("crieur")


def _config_path(args: argparse.Namespace) -> pathlib.Path:
    from .service import default_config_path

    return pathlib.Path(args.config or os.environ.get("CRIEUR_CONFIG") or default_config_path())


def _load(args: argparse.Namespace, *, dry_run: bool | None = None):
    from rules.yamlcheck import ValidationFailed

    from .config import load_config

    try:
        config = load_config(_config_path(args))
    except ValidationFailed as exc:
        raise SystemExit(f"crieur: configuration error\n{exc}") from None
    from .security import install_log_redaction

    install_log_redaction(config)
    if dry_run is not None:
        config.dry_run = dry_run
    if getattr(args, "data_dir", None):
        config.data_dir = pathlib.Path(args.data_dir)
        if config.database.startswith("sqlite:///") and not os.environ.get("CRIEUR_DATABASE_URL"):
            config.database = f"sqlite:///{config.data_dir / 'crieur.db'}"
    return config


async def _with_store(args: argparse.Namespace, action: Callable[[Any], Awaitable[int]]) -> int:
    from .storage import open_store

    config = _load(args)
    store = await open_store(config.database)
    try:
        return await action(store)
    finally:
        await store.close()


async def _serve(crieur: Any, *, web: bool, ingest: bool, workers: int | None, on_ready: Callable[[], None]) -> None:
    """Run until SIGINT/SIGTERM, then stop cleanly (in-flight sends finish, leases are released)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(Exception):
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(crieur.reload_rules()))
    await crieur.start(web=web, ingest=ingest, workers=workers)
    on_ready()
    await stop.wait()
    log.info("stopping: finishing in-flight sends")
    await crieur.stop()


# ------------------------------------------------------------------------------------------ commands


def cmd_run(args: argparse.Namespace) -> int:
    from channels.base import ConfigurationError

    from .service import Crieur

    config = _load(args)
    crieur = Crieur(config)
    try:
        asyncio.run(
            _serve(
                crieur,
                web=not args.no_web,
                ingest=not args.no_ingest,
                workers=args.workers,
                on_ready=lambda: log.info("Crieur is running on http://%s:%s/", config.host, config.port),
            )
        )
    except ConfigurationError as exc:
        raise SystemExit(f"crieur: {exc}") from None
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .service import Crieur

    config = _load(args)
    crieur = Crieur(config)

    async def main() -> None:
        runner = None
        if args.metrics_port:  # a worker has no web app: Prometheus scrapes this small server
            await crieur.open()
            runner = await crieur.metrics.serve(config.host, args.metrics_port)
        try:
            await _serve(
                crieur,
                web=False,
                ingest=False,
                workers=args.workers or 1,
                on_ready=lambda: log.info("delivery worker running"),
            )
        finally:
            if runner is not None:
                await runner.cleanup()

    asyncio.run(main())
    return 0


DEMO_SECRET_KEY = "crieur-demo-secret-not-for-production"  # public: good for nothing but the demo


def _demo_secret(config: Any) -> None:
    """The demo's signing key, when none is set: only `crieur demo` (and `crieur sms` playing a message
    without sending anything) use it, never a service run from a configuration, dry-run or not."""
    config.demo_secret_key = DEMO_SECRET_KEY


DEMO_SUBSCRIBERS = [("+33600000001", "41"), ("+33600000002", "41"), ("+33600000003", "28")]


def cmd_demo(args: argparse.Namespace) -> int:
    from .service import Crieur

    config = _load(args, dry_run=True)
    _demo_secret(config)
    if args.port:
        config.port = args.port
    dry_log = config.data_dir / "dry-run.jsonl"

    async def main() -> None:
        crieur = Crieur(config)
        await crieur.open()
        await crieur.store.add_subscribers(DEMO_SUBSCRIBERS)
        # The demo night: the CM has declared a snow episode in Loir-et-Cher, so the episode rules apply.
        await crieur.start_episode("41", by="demo", reason="épisode neigeux (démonstration)")
        tail = asyncio.create_task(_tail(dry_log))

        def ready() -> None:
            print(
                f"\nCrieur demo — {config.name} (dry-run: nothing leaves this machine)\n"
                f"  public page     http://{config.host}:{config.port}/   (and /t/41, /t/28)\n"
                f"  alert feed      http://{config.host}:{config.port}/alertes.atom\n"
                f"  JSON API        http://{config.host}:{config.port}/api/v1/alerts\n"
                f"  CM console      http://{config.host}:{config.port}/console   (first an account:"
                " crieur users add NAME --role admin)\n"
                f"  dry-run log     {dry_log}  (every message a channel would have sent)\n"
                f"  database        {config.database}\n"
                f"  example feeds   {config.folder / 'feeds'}\n"
                f"  demo subscribers: {', '.join(p for p, _ in DEMO_SUBSCRIBERS)}\n"
                '  Try a citizen SMS:  crieur sms +33600000009 "ROUTE41"   or   '
                'crieur sms +33600000009 "Les poids lourds peuvent-ils rouler ?"\n'
                "Ctrl-C stops.\n",
                flush=True,
            )

        try:
            await _serve(crieur, web=True, ingest=True, workers=None, on_ready=ready)
        finally:
            tail.cancel()

    asyncio.run(main())
    return 0


async def _tail(path: pathlib.Path) -> None:
    """Print each dry-run record as the channels write it."""
    position = path.stat().st_size if path.exists() else 0
    while True:
        await asyncio.sleep(0.5)
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as handle:
            handle.seek(position)
            for line in handle:
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    to = f" → {record.get('recipient')}" if record.get("recipient") else ""
                    print(f"[dry-run] {record.get('channel')}{to}: {record.get('text')}", flush=True)
            position = handle.tell()


def cmd_sources(args: argparse.Namespace) -> int:
    async def show(store: Any) -> int:
        states = await store.source_states()
        if args.json:
            print(json.dumps(states, indent=2, ensure_ascii=False))
            return 0
        if not states:
            print("no source has been polled yet")
        for name, state in states.items():
            print(
                f"{name:24} last success {state.get('last_success') or '-'}  "
                f"failures {state.get('consecutive_failures', 0)}  last error {state.get('last_error') or '-'}"
            )
        return 0

    return asyncio.run(_with_store(args, show))


def cmd_channels(args: argparse.Namespace) -> int:
    """The options each channel kind takes in crieur.yaml (the README's table is this output)."""
    from channels import channel_class, known_kinds
    from channels.base import ConfigurationError, options_markdown

    kinds = args.kinds or known_kinds()
    for kind in kinds:
        try:
            cls = channel_class(kind)
        except ConfigurationError as exc:
            print(f"{exc} (known: {', '.join(known_kinds())})", file=sys.stderr)
            return 2
        print(options_markdown(cls))
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    async def show(store: Any) -> int:
        report = await store.progress(args.alert)
        if args.json:
            print(json.dumps(report, indent=2))
            return 0
        if not report:
            print("no deliveries")
        for row in report:
            eta = "-" if row["eta_s"] is None else f"{row['eta_s']:.0f} s"
            print(
                f"alert {row['alert_id']:>5} {row['channel']:10} sent {row['sent']}/{row['total']}  "
                f"failed {row['failed']}  queued {row['queued']}  {row['rate_per_s']}/s  eta {eta}"
            )
        return 0

    return asyncio.run(_with_store(args, show))


def cmd_subscribers(args: argparse.Namespace) -> int:
    from .phones import InvalidPhone, normalise_phone

    if "@" in args.number:  # an e-mail subscriber (web subscriptions)
        local, _, domain = args.number.strip().rpartition("@")
        phone = f"{local}@{domain.lower()}"
    else:
        try:
            phone = normalise_phone(args.number)
        except InvalidPhone as exc:
            raise SystemExit(f"crieur: {exc}") from None

    async def act(store: Any) -> int:
        if args.action == "export":
            print(json.dumps(await store.export_subscriber(phone), indent=2, ensure_ascii=False, default=str))
        else:
            await store.delete_subscriber(phone)
            print(f"{phone}: deleted")
        return 0

    return asyncio.run(_with_store(args, act))


def cmd_episode(args: argparse.Namespace) -> int:
    async def act(store: Any) -> int:
        await store.set_episode(args.territory, args.action == "start", by=args.by or "cli", reason=args.reason or "")
        print(f"snow episode {args.action}: {args.territory}")
        return 0

    return asyncio.run(_with_store(args, act))


def _new_password() -> str:
    """A new password, never from the command line (other users see it in the process list): asked twice
    at a terminal, else the first line of standard input (`... --password-stdin < file`, scripts)."""
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Mot de passe (10 caractères au moins) : ")
    if getpass.getpass("Le même, une seconde fois : ") != first:
        raise SystemExit("crieur: the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    """Console accounts: add, list, disable, enable, remove, unlock, password. Every change but add and
    enable ends the account's sessions at once."""
    from .web import accounts

    if args.action != "list" and not args.username:
        raise SystemExit(f"crieur: users {args.action} needs a username")
    password = _new_password() if args.action in ("add", "password") else ""

    async def act(store: Any) -> int:
        name = (args.username or "").strip().lower()
        try:
            if args.action == "add":
                await accounts.add_user(store, name, password, args.role, args.initials or "")
                print(f"user {name} ({args.role}) created")
            elif args.action == "list":
                for row in await accounts.users(store):
                    state = "active" if row["active"] else "disabled"
                    if row["throttled_until"]:
                        state += ", logins waiting"
                    print(f"{row['username']:24} {row['role']:9} {state}  failed logins {row['failed_attempts']}")
            elif args.action in ("disable", "enable"):
                await accounts.set_active(store, name, args.action == "enable")
                print(f"user {name} {args.action}d" + (", sessions ended" if args.action == "disable" else ""))
            elif args.action == "remove":
                await accounts.remove_user(store, name)
                print(f"user {name} removed, sessions ended")
            elif args.action == "unlock":
                await accounts.unlock_user(store, name)
                print(f"user {name}: failed logins forgotten, sessions ended")
            else:
                await accounts.set_password(store, name, password)
                print(f"user {name}: password changed, sessions ended")
        except accounts.AccountError as exc:
            raise SystemExit(f"crieur: {exc}") from None
        if args.action != "list":
            await accounts.audit(store, "cli", f"user-{args.action}", f"user:{name}")
        return 0

    return asyncio.run(_with_store(args, act))


def cmd_init(args: argparse.Namespace) -> int:
    """Write a commented starting configuration into DIR, then check that it loads."""
    from rules.yamlcheck import ValidationFailed

    from .config import load_config
    from .example import write_starter

    target = pathlib.Path(args.directory)
    try:
        written = write_starter(target, force=args.force)
    except FileExistsError as exc:
        raise SystemExit(f"crieur: {exc}") from None
    try:
        load_config(target / "crieur.yaml")
    except ValidationFailed as exc:  # a bug of ours: the starter must always load
        raise SystemExit(f"crieur: the starting configuration does not load\n{exc}") from None
    for path in written:
        print(f"wrote {path}")
    print(
        f"\nNext: edit {target / 'crieur.yaml'} (name, public_url, channels), then the territories, rules,\n"
        f"authorities and templates; check with `crieur rules check {target / 'rules.yaml'}`,\n"
        f"try with `crieur run --config {target / 'crieur.yaml'}` (dry-run until you set dry_run: false)."
    )
    return 0


def cmd_sms(args: argparse.Namespace) -> int:
    """Play a citizen's SMS through the same code as the Twilio webhook (demo, support)."""
    from .service import Crieur

    config = _load(args, dry_run=None if args.send else True)
    if not args.send:
        _demo_secret(config)

    async def act() -> int:
        crieur = Crieur(config)
        await crieur.open()
        try:
            assert crieur.citizens is not None  # open() made it
            reply = await crieur.citizens.handle_sms(args.number, args.text)
            print(f"réponse : {reply}")
            await crieur.drain(timeout=10)
        finally:
            await crieur.stop()
        return 0

    return asyncio.run(act())


def cmd_rules(args: argparse.Namespace) -> int:
    from rules import cli as rules_cli

    config = _load(args)
    if args.action == "check":  # as the service of that configuration would load them
        return rules_cli.check(args.paths, args.territories, args.templates, config=config, against=args.against)
    return rules_cli.test(
        args.paths[:-1],
        args.paths[-1],
        args.territories,
        args.templates,
        episodes=tuple(args.episode or ()),
        signature=config.signature,
        channel_kinds={name: str(options["kind"]) for name, options in config.channels.items()},
        config=config,
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    """What a real document becomes: its items, then what the configured rules make of each."""
    from rules import cli as rules_cli
    from rules.book import RuleBook
    from rules.engine import EvalState
    from rules.yamlcheck import ValidationFailed

    from .french import datetime_fr
    from .ingest import ParseError
    from .ingest.document import read_document
    from .ingest.fetch import FetchError
    from .storage.records import item_to_dict

    config = _load(args)
    try:
        document = asyncio.run(
            read_document(
                args.location, args.kind, authority=args.authority or "", follow=args.follow, allow=config.allow
            )
        )
    except (ParseError, FetchError) as exc:
        print(f"crieur ingest: {exc}", file=sys.stderr)
        return 2
    items = document.items
    if args.json:
        print(json.dumps([item_to_dict(i) for i in items], ensure_ascii=False, indent=2))
        return 0
    spec = document.spec
    linked = f", {document.linked_fetched} linked CAP document(s) read" if document.linked_fetched else ""
    print(f"{spec.name}: {spec.kind}, {len(items)} item(s){linked}")
    for issue in document.issues:
        print(f"  ! {issue}")
    book = None
    if not args.no_rules:
        try:
            book = RuleBook.load(*config.rules, territories=config.territories, templates=config.templates)
        except ValidationFailed as failed:
            print("rules not loaded:\n" + "\n".join(str(e) for e in failed.errors), file=sys.stderr)
            return 1
    state = EvalState(datetime.now(timezone.utc), frozenset(args.episode or ()))
    kinds = {**rules_cli.DEFAULT_KINDS, **{n: str(o["kind"]) for n, o in config.channels.items()}}
    status = 0
    for item in items:
        sent = f", {datetime_fr(item.sent)}" if item.sent else ""
        print(f"\n== {item.external_id} — {item.msg_type.value}{sent} ({item.language})")
        print(f"   Source : {item.authority or '(non nommée : configurez authority)'}")
        print(f"   Titre : {item.title}")
        for number, line in enumerate(item.text.splitlines()[: args.lines]):
            print(f"   {'Texte : ' if number == 0 else '        '}{line}")
        if item.references:
            print(f"   Remplace : {', '.join(item.references)}")
        areas = ", ".join(f"{a.kind}:{a.code}" for a in item.areas[:12]) + (" ..." if len(item.areas) > 12 else "")
        print(f"   Zones : {areas or '-'}   Routes : {', '.join(r.label for r in item.roads) or '-'}")
        if book is not None:
            status = max(status, rules_cli.explain(book, item, state, kinds, config.signature, sys.stdout))
    return status


def cmd_replay(args: argparse.Namespace) -> int:
    """Play a recorded episode through the current (or a proposed) rule set; report what would be sent."""
    from .replay import recorded_items, replay
    from .storage import open_store

    config = _load(args)
    items: list[Any] = []
    unread: list[str] = []
    if args.folder:
        folder = pathlib.Path(args.folder)
        if not folder.exists():
            raise SystemExit(f"crieur replay: no such folder {folder}")
        items, unread = recorded_items(folder, config.sources)
    elif not (args.start and args.end):
        raise SystemExit("crieur replay: give a FOLDER, or --from and --to (stored items)")

    async def main() -> int:
        nonlocal items
        subscribers: list[tuple[str, str]] = []
        if not args.folder:
            from .replay import stored_items

            store = await open_store(config.database)
            try:
                items = await stored_items(store, _when(args.start), _when(args.end))
            finally:
                await store.close()
        if args.subscribers:
            store = await open_store(config.database)
            try:
                rows = await store.db.fetch("SELECT phone, territory FROM subscribers WHERE medium = 'sms'")
                subscribers = [(r["phone"], r["territory"]) for r in rows]
            finally:
                await store.close()
        report = await replay(
            config,
            items,
            rules=[pathlib.Path(p) for p in args.rules or ()],
            sms_price=args.sms_price,
            subscribers=subscribers,
        )
        report.unread = unread
        if args.json:
            print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        else:
            print("\n".join(report.lines()))
        return 0

    return asyncio.run(main())


def _when(text: str) -> datetime:
    """An ISO date or date-time; without a zone, Paris time."""
    from zoneinfo import ZoneInfo

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"crieur replay: {text!r} is not a date like 2026-12-05 or 2026-12-05T23:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo("Europe/Paris"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crieur", description="Crieur — alertes neige et routes, sur tous les canaux")
    parser.add_argument("--log-level", default=os.environ.get("CRIEUR_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--log-json", action="store_true", default=os.environ.get("CRIEUR_LOG_JSON") == "1", help="log as JSON lines"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--config", help="crieur.yaml (default: $CRIEUR_CONFIG, else the bundled example)")
        p.set_defaults(func=func)
        return p

    p = command("demo", cmd_demo, "run everything on embedded defaults, channels in dry-run")
    p.add_argument("--data-dir", help="where the SQLite database and dry-run log go (default: ./data)")
    p.add_argument("--port", type=int)
    p = command("run", cmd_run, "run the service (web, ingestion, delivery workers)")
    p.add_argument("--no-web", action="store_true")
    p.add_argument("--no-ingest", action="store_true")
    p.add_argument("--workers", type=int, help="delivery workers in this process (default: from config)")
    p = command("worker", cmd_worker, "run delivery workers only")
    p.add_argument("--workers", type=int)
    p.add_argument("--metrics-port", type=int, help="serve /metrics on this port (host: service.host)")
    p = command("sources", cmd_sources, "health of every source")
    p.add_argument("--json", action="store_true")
    p = command("channels", cmd_channels, "the options of each channel kind (crieur.yaml)")
    p.add_argument("kinds", nargs="*", metavar="KIND", help="only these kinds (default: all)")
    p = command("deliveries", cmd_deliveries, "fan-out progress")
    p.add_argument("--alert", type=int)
    p.add_argument("--json", action="store_true")
    p = command("subscribers", cmd_subscribers, "RGPD requests: export or delete one number or e-mail address")
    p.add_argument("action", choices=["export", "delete"])
    p.add_argument("number")
    p = command("episode", cmd_episode, "start or end a snow episode")
    p.add_argument("action", choices=["start", "end"])
    p.add_argument("territory")
    p.add_argument("--by")
    p.add_argument("--reason")
    p = command("users", cmd_users, "console accounts (a new password is asked, or read from standard input)")
    p.add_argument("action", choices=["add", "list", "disable", "enable", "remove", "unlock", "password"])
    p.add_argument("username", nargs="?")
    p.add_argument("--role", choices=["cm", "approver", "admin"], default="cm")
    p.add_argument(
        "--initials", help="what the account signs its posts with (default: from the username, jean.dupont -> JD)"
    )
    p = sub.add_parser("init", help="write a commented starting configuration into DIR")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--force", action="store_true", help="overwrite files already in DIR")
    p.set_defaults(func=cmd_init)
    p = command("sms", cmd_sms, "play an incoming citizen SMS (as the Twilio webhook would)")
    p.add_argument("number")
    p.add_argument("text")
    p.add_argument(
        "--send",
        action="store_true",
        help="really send what follows (escalations) through the configured channels; default: dry-run",
    )
    p = command("ingest", cmd_ingest, "show what a real document (file or URL) becomes: items and rules")
    p.add_argument("location", help="a file or an http(s) URL (fetched through the SSRF guard)")
    p.add_argument("--kind", help="cap, datex2, rss, atom, geojson, csv, vigilance (default: guessed)")
    p.add_argument("--authority", help="the issuing authority, as the source's `authority` would name it")
    p.add_argument(
        "--follow",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="follow MeteoAlarm links to the full CAP (default: for URLs only)",
    )
    p.add_argument("--no-rules", action="store_true", help="only the items, not what the rules make of them")
    p.add_argument(
        "--episode", action="append", metavar="TERRITORY", help="as if a snow episode were on in TERRITORY (repeatable)"
    )
    p.add_argument("--lines", type=int, default=6, help="text lines shown per item (default 6)")
    p.add_argument("--json", action="store_true", help="the items as JSON")
    p = command("replay", cmd_replay, "what a recorded episode would send with these rules (nothing is sent)")
    p.add_argument(
        "folder",
        nargs="?",
        help="documents of the episode (feeds as published), played in the order "
        "of their dates; without it, the items stored between --from and --to",
    )
    p.add_argument("--from", dest="start", metavar="DATE", help="stored items received from DATE (Paris time)")
    p.add_argument("--to", dest="end", metavar="DATE", help="... up to DATE")
    p.add_argument(
        "--rules",
        action="append",
        metavar="FILE",
        help="a proposed rule file (repeatable; default: the configured rules)",
    )
    p.add_argument("--sms-price", type=float, default=0.0725, help="euros per SMS segment (default 0.0725)")
    p.add_argument(
        "--subscribers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count SMS for the live database's subscribers (default: yes)",
    )
    p.add_argument("--json", action="store_true")
    p = command("rules", cmd_rules, "check rule files, or show what an item would become")
    actions = p.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="errors and never-firing rules, as the service would load them")
    check.add_argument("paths", nargs="*", metavar="RULES", help="rule files (default: the configured ones)")
    check.add_argument(
        "--against",
        metavar="FOLDER",
        help="run the documents of FOLDER (feeds, a recorded episode) through the rules and report "
        "the rules that never fired and the items no rule handled",
    )
    test = actions.add_parser("test", help="what an item would become, without sending anything")
    test.add_argument(
        "paths",
        nargs="+",
        metavar="[RULES...] ITEM_FILE",
        help="ITEM_FILE: a YAML item, or a real CAP/Atom/DATEX/RSS file",
    )
    test.add_argument(
        "--episode", action="append", metavar="TERRITORY", help="as if a snow episode were on in TERRITORY (repeatable)"
    )
    for subcommand in (check, test):
        subcommand.add_argument("--config", default=argparse.SUPPRESS, help="crieur.yaml (as for every command)")
        subcommand.add_argument("--territories")
        subcommand.add_argument("--templates")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_json)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
