"""The running service: sources → items → rules → alerts → outbox → channels, and citizens' messages.

`Crieur` holds the parts and the few decisions that join them. Each part can run alone (web, ingest,
workers), so the same code serves `crieur demo` (all in one process) and a deployment with a web process
and several worker processes on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Sequence

import aiohttp

from channels import channel_class
from channels.base import Channel
from rules.engine import DEFAULT_TEMPLATES, EvalState
from rules.territories import Territories, load_territories

from .config import ServiceConfig
from .delivery import DeliveryWorker, WorkerSettings
from .domain import Alert, AlertStatus, Item, MsgType
from .errors import AlertNotFound, NotAwaitingApproval
from .exercise import is_exercise, marked
from .exercise import prepare as prepare_exercise
from .fanout import Fanout, Text
from .ingest import SourceSpec
from .metrics import Metrics
from .places import gazetteer_for
from .schedule import Scheduler, scheduled_later
from .security import safe_session
from .storage import Ingested, Store, open_store

if TYPE_CHECKING:
    from rules.book import RuleBook
    from rules.competence import Directory

    from .citizens import Citizens
    from .ingest.loop import SourceLoop
    from .oncall import OnCall

log = logging.getLogger("crieur")
USER_AGENT = "Crieur/0.1 (+alertes)"


def build_channels(config: ServiceConfig) -> dict[str, Channel]:
    """Instantiate every configured channel; in dry-run, wrapped so that each records instead of sending.
    A missing secret raises ConfigurationError naming the channel (at start-up, not at the first send)."""
    from channels.dryrun import dry_run
    from channels.failover import FailoverChannel

    channels: dict[str, Channel] = {}
    for name, options in config.channels.items():
        kind = str(options["kind"])
        options = {k: v for k, v in options.items() if k != "kind"}
        if config.dry_run:
            channels[name] = dry_run(kind, name, options, config.data_dir / "dry-run.jsonl")
        else:
            channels[name] = channel_class(kind)(name, options)
    for channel in channels.values():  # a channel over others (failover) binds them once all exist
        inner = getattr(channel, "inner", channel)
        if isinstance(inner, FailoverChannel):
            inner.attach(channels)
    return channels


class Crieur:
    def __init__(self, config: ServiceConfig, *, store: Store | None = None):
        self.config = config
        self.store: Store = store  # type: ignore[assignment]
        self.channels: dict[str, Channel] = {}
        self.rules: RuleBook | None = None
        self.directory: Directory | None = None
        self.citizens: Citizens | None = None
        self.oncall: OnCall | None = None
        self.scheduler = Scheduler(self)
        self.now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # a replay plays its own time
        self.fanout: Fanout | None = None
        self.session: aiohttp.ClientSession | None = None
        self.source_loop: SourceLoop | None = None
        self.workers: list[DeliveryWorker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: Any = None
        self.started_at = time.time()
        # Modules that serve HTTP routes besides the web package (Twilio webhooks, metrics) register here;
        # the web app calls `extra_routes(app)` when it is built.
        self.route_installers: list[Callable[[Any], None]] = []
        self.metrics = Metrics(self)
        self._feed_session: aiohttp.ClientSession | None = None
        self._territories_file: Territories | None = None

    def extra_routes(self, app: Any) -> None:
        for install in self.route_installers:
            install(app)

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Load configuration files, connect storage and channels; nothing runs yet. Any invalid file
        raises ValidationFailed naming file, line and field."""
        from rules.book import RuleBook
        from rules.competence import Directory

        from .citizens import Citizens
        from .web.card import install_card_attachments

        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.directory = Directory.load(self.config.authorities) if self.config.authorities else None
        if self.directory is not None:
            missing = self.directory.unknown_feeds([s.name for s in self.config.sources])
            if missing:  # answers about these authorities cannot quote what they published
                log.info("authorities' feeds not among the configured sources: %s", ", ".join(missing))
            name_source_authorities(self.config.sources, self.directory)
        self.rules = RuleBook.for_config(self.config).load_or_raise()  # the checks `crieur rules check` makes
        for warning in self.rules.warnings:
            log.warning("rules: %s", warning)
        self.channels = build_channels(self.config)
        install_card_attachments(self)  # social posts carry the alert's card (alerts.web.card)
        if self.store is None:
            self.store = await open_store(self.config.database)
        self.session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        from .citizens.ovh import attach as ovh_receipts

        ovh_receipts(self.config, self.channels)  # OVHcloud accounts call /ovh/status with receipts
        for channel in self.channels.values():
            await channel.start(self.session)
        self.fanout = Fanout(
            self.store,
            self.channels,
            self.render,
            exercise_recipients=self.config.exercise_recipients,
            gazetteer=gazetteer_for(self.config.geo),
        )
        self.citizens = Citizens(self)
        self.citizens.subscriptions.attach(self.channels)  # alert e-mails carry their unsubscribe link
        if self.config.oncall is not None:
            from .oncall import OnCall, load_rota

            self.oncall = OnCall(self, load_rota(self.config.oncall))
        from .oncall.console import install_routes as oncall_routes
        from .timeline import install_routes as timeline_routes

        self.route_installers += [
            self.citizens.install_routes,
            timeline_routes,
            oncall_routes,
            self.metrics.install_routes,
        ]

    async def reload_rules(self) -> list[str]:
        """Re-read rules, territories and templates; on any error the rules in force stay and the errors
        are returned (and logged)."""
        book = self._rules()
        errors = [str(e) for e in book.reload()]
        for error in errors:
            log.error("rules not reloaded: %s", error)
        if not errors:
            log.info("rules reloaded")
            for warning in book.warnings:
                log.warning("rules: %s", warning)
        return errors

    async def start(self, *, web: bool = True, ingest: bool = True, workers: int | None = None) -> None:
        if self.fanout is None:
            await self.open()
        if ingest and self.config.sources:
            from .ingest.loop import SourceLoop

            # Feed URLs come from configuration: fetched through the SSRF guard (security.allow lifts it).
            self._feed_session = safe_session(self.config.allow, headers={"User-Agent": USER_AGENT})
            self.source_loop = SourceLoop(
                self._feed_session,
                self.config.sources,
                self.on_items,
                _SourceStates(self.store),
                on_poll=self.metrics.fetch,
            )
            self._tasks.append(asyncio.create_task(self.source_loop.run(), name="sources"))
        citizens = self.citizens
        if ingest and citizens is not None and citizens.mastodon_channel() is not None:
            self._tasks.append(asyncio.create_task(citizens.run_mentions(60), name="mentions"))
        if ingest and self.oncall is not None:
            self._tasks.append(asyncio.create_task(self.oncall.run(30), name="oncall"))
        if ingest:
            self._tasks.append(asyncio.create_task(self.scheduler.run(30), name="scheduler"))
        for index in range(self.config.workers if workers is None else workers):
            worker = DeliveryWorker(
                self.store, self.channels, worker_id=f"{_host()}:{index}", on_event=self.metrics.delivery_event
            )
            self.workers.append(worker)
            self._tasks.append(asyncio.create_task(worker.run(), name=f"worker-{index}"))
        if web:
            from aiohttp import web as aioweb

            from .web import make_app

            self._runner = aioweb.AppRunner(make_app(self), access_log=None)
            await self._runner.setup()
            await aioweb.TCPSite(self._runner, self.config.host, self.config.port).start()

    async def stop(self, grace: float = 30.0) -> None:
        """Finish in-flight sends, release leases, close everything. A task still running after `grace`
        seconds (a provider that never answers) is cancelled and named in the log."""
        for worker in self.workers:
            worker.stop()
        if self.citizens is not None:
            self.citizens.stop()
        if self.oncall is not None:
            self.oncall.stop()
        self.scheduler.stop()
        for task in self._tasks:
            if task.get_name() == "sources":
                task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                log.error("stopping: %s did not finish within %.0f s, cancelled", task.get_name(), grace)
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
        for channel in self.channels.values():
            await channel.close()
        for session in (self.session, self._feed_session):
            if session is not None:
                await session.close()
        if self.store is not None:
            await self.store.close()

    # ------------------------------------------------------------------ items → alerts

    async def on_items(self, spec: SourceSpec | None, items: Sequence[Item]) -> None:
        """The source loop's sink."""
        await self.process_items(items)

    async def process_items(self, items: Sequence[Item]) -> list[Alert]:
        """Store items, then act on what changed; returns the alerts made."""
        alerts: list[Alert] = []
        for ingested in await self.store.ingest(items):
            if ingested.change != "unchanged":
                alerts += await self.process(ingested)
        return alerts

    async def process(self, ingested: Ingested) -> list[Alert]:
        """Apply the rules to a new, changed or withdrawn item. A withdrawn item (CAP Cancel, a DATEX
        record that ended, a vigilance back to green) ends the alert made from it; an updated one replaces
        it with a "MISE À JOUR" threaded under the first post."""
        item = ingested.item
        previous = await self._previous_alert(item)
        episodes = await self.store.active_episodes()
        decisions = self._rules().decide(item, EvalState(now=self.now(), episodes=episodes))
        for decision in decisions:
            for territory in decision.territories:
                if decision.episode_action == "start":
                    await self.start_episode(territory, by=f"rule:{decision.rule}", reason=item.title)
                elif decision.episode_action == "end":
                    await self.end_episode(territory, by=f"rule:{decision.rule}", reason=item.title)
        if item.withdrawn:
            if previous is not None and previous.id is not None and previous.status is AlertStatus.PUBLISHED:
                return [await self.end_alert(previous.id, by=f"source:{item.source}", text=item.text)]
            return []
        alerts = []
        for decision in decisions:
            if not decision.channels:
                continue
            alert = decision.to_alert(item)
            alert.signature = alert.signature or self.config.signature
            if is_exercise(item):
                prepare_exercise(alert, self.config.exercise_channels)
                if not alert.channels:
                    log.warning(
                        "exercise %s (rule %s): no exercise channel among %s, not sent (exercise.channels)",
                        item.key,
                        alert.rule,
                        ", ".join(decision.channels),
                    )
                    continue
            dedup = decision.dedup_key(item)
            if decision.suppress_window:
                twin = await self.store.recent_alert_like(dedup, time.time() - decision.suppress_window)
                if twin is not None:
                    log.info("rule %s: same text as alert %s within the window, suppressed", alert.rule, twin.id)
                    continue
            alert.msg_type = MsgType.ALERT
            if (
                previous is not None
                and previous.status is AlertStatus.PUBLISHED
                and (ingested.change == "updated" or item.msg_type is MsgType.UPDATE)
            ):
                alert.msg_type = MsgType.UPDATE
                alert.supersedes = previous.id
                await self.store.set_alert_status(previous.id, AlertStatus.ENDED)  # type: ignore[arg-type]
            alerts.append(await self.publish(alert, dedup=dedup))
        return alerts

    async def _previous_alert(self, item: Item) -> Alert | None:
        """The latest alert made from an earlier version of this item or from an item it references
        (a CAP Cancel may reference the Alert and each Update since)."""
        found: Alert | None = None
        for key in (item.key, *(f"{item.source}:{reference}" for reference in item.references)):
            alert = await self.store.latest_alert_for_item(key)
            if alert is not None and (found is None or (alert.id or 0) > (found.id or 0)):
                found = alert
        return found

    async def publish(self, alert: Alert, created_by: str = "", dedup: str = "") -> Alert:
        """Store an alert; a published one is fanned out at once, a held one waits for a CM, a scheduled
        one for its publish_at (alerts.schedule)."""
        if alert.status is AlertStatus.PUBLISHED and scheduled_later(alert):
            alert.status = AlertStatus.SCHEDULED
        stored = await self.store.add_alert(alert, created_by=created_by, dedup=dedup)
        if stored.status is AlertStatus.PUBLISHED:
            await self.fanout.plan(stored)  # type: ignore[union-attr]
        log.info("alert %s %s: %s", stored.id, stored.status.value, stored.title)
        return stored

    async def approve(self, alert_id: int, by: str) -> Alert:
        """Publish a held alert and fan it out. Of two CMs approving at once, one does it; the other is told
        it is no longer waiting (NotAwaitingApproval)."""
        held = await self._alert(alert_id)
        if scheduled_later(held):  # approved ahead of its time: it goes out at its publish_at
            await self._decide(alert_id, AlertStatus.SCHEDULED)
            return await self._alert(alert_id)
        await self._decide(alert_id, AlertStatus.PUBLISHED)
        alert = await self._alert(alert_id)
        await self.fanout.plan(alert)  # type: ignore[union-attr]
        return alert

    async def reject(self, alert_id: int, by: str) -> None:
        await self._decide(alert_id, AlertStatus.REJECTED)

    async def _decide(self, alert_id: int, status: AlertStatus) -> None:
        """A held alert's fate, in one conditional UPDATE."""
        if not await self.store.set_alert_status(alert_id, status, only_from=AlertStatus.PENDING_APPROVAL):
            alert = await self._alert(alert_id)
            raise NotAwaitingApproval(f"alert {alert_id} is {alert.status.value}, not waiting for approval")

    async def end_alert(self, alert_id: int, by: str, text: str = "") -> Alert:
        """End a published alert: a "FIN D'ALERTE" (template fin-alerte) follows it on the channels it went
        to, threaded under the first post where the channel can."""
        alert = await self._alert(alert_id)
        await self.store.set_alert_status(alert_id, AlertStatus.ENDED)
        ending = Alert(
            title=alert.title,
            text=text or "Cette alerte est terminée.",
            territories=alert.territories,
            hashtags=alert.hashtags,
            channels=alert.channels,
            severity=alert.severity,
            status=AlertStatus.ENDED,
            msg_type=MsgType.CANCEL,
            rule=alert.rule,
            item_key=alert.item_key,
            link=alert.link,
            roads=alert.roads,
            areas=alert.areas,
            signature=alert.signature,
            supersedes=alert.id,
            authority=alert.authority,
            exercise=alert.exercise,
        )
        stored = await self.store.add_alert(ending, created_by=by)
        await self.fanout.plan(stored)  # type: ignore[union-attr]
        return stored

    async def _alert(self, alert_id: int) -> Alert:
        alert = await self.store.alert(alert_id)
        if alert is None:
            raise AlertNotFound(f"no alert {alert_id}")
        return alert

    def render(self, alert: Alert, channel: Channel) -> Text:
        """The alert's text for one channel: the rule's template for it (updates and ends use the
        mise-a-jour / fin-alerte templates), fitted to the channel's limits."""
        if alert.msg_type is MsgType.ALERT:
            template = (
                alert.templates.get(channel.name) or alert.templates.get("default") or DEFAULT_TEMPLATES[alert.msg_type]
            )
        else:
            template = DEFAULT_TEMPLATES[alert.msg_type]
        templates = self._rules().templates
        if templates is None:
            raise RuntimeError("no templates loaded")
        rendered = templates.render(
            alert,
            channel.kind,
            channel.limits,
            template,
            alert.signature or self.config.signature,
            gsm7=alert.sms_gsm7 or bool(channel.options.get("gsm7", False)),
        )
        extra: dict[str, Any] = {"facets": list(rendered.facets)} if rendered.facets else {}
        if channel.kind == "bluesky":
            extra["card"] = self.page_card(alert)
        return Text(marked(alert, rendered.text), extra, subject=alert.title)

    def page_card(self, alert: Alert) -> dict[str, str]:
        """What a link card (Bluesky's app.bsky.embed.external) shows for an alert: its territory's page on
        the public site (the site's index for several territories), the alert's title and text."""
        base = str(self.config.public_url).rstrip("/")
        uri = f"{base}/t/{alert.territories[0]}" if len(alert.territories) == 1 else f"{base}/"
        return {"uri": uri, "title": alert.title or self.config.name, "description": alert.text}

    async def preview(
        self, text: str, territories: Sequence[str], channels: Sequence[str], signature: str = "", title: str = ""
    ) -> list[dict[str, Any]]:
        """What a CM's alert would look like on each channel before sending: text, length against the
        limit, SMS segments and encoding, and how many subscribers an SMS would reach (its cost)."""
        from rules.fitting import measure

        alert = self.compose(text, territories, channels, signature, title)
        out = []
        for name in channels:
            channel = self.channels.get(name)
            if channel is None:
                continue
            entry: dict[str, Any] = {"channel": name, "kind": channel.kind, "max_length": channel.limits.max_length}
            try:
                rendered = self.render(alert, channel)
            except Exception as exc:  # FittingError, template errors: shown to the CM, not raised
                entry.update(text="", error=str(exc))
            else:
                measured = measure(rendered.text, channel.limits)
                entry.update(
                    text=rendered.text,
                    length=measured.length,
                    encoding=measured.encoding,
                    segments=measured.segments if measured.encoding else None,
                )
            if channel.subscribers:
                if self.fanout is not None:  # whom it reaches and why: whole département, communes, roads
                    audience = await self.fanout.audience(alert, channel.medium)
                    entry.update(subscribers=audience.total, audience=audience.describe())
                    entry["duration_s"] = fanout_seconds(channel, audience.total, entry.get("segments") or 1)
                else:
                    entry["subscribers"] = await self.store.subscriber_count(alert.territories)
                    entry["duration_s"] = fanout_seconds(channel, entry["subscribers"], entry.get("segments") or 1)
            out.append(entry)
        return out

    def compose(
        self, text: str, territories: Sequence[str], channels: Sequence[str], signature: str = "", title: str = ""
    ) -> Alert:
        """An alert written by a CM (the console's one way to build it): hashtags from its territories."""
        known = self._territories()
        hashtags = known.hashtags(territories) if known is not None else tuple(f"#route{t}" for t in territories)
        if not title:  # the first line is the title, the rest the text (no repetition on any channel)
            first, _, rest = text.strip().partition("\n")
            title, text = first.strip(), rest.strip()
        return Alert(
            title=title,
            text=text,
            territories=tuple(territories),
            hashtags=tuple(hashtags),
            channels=tuple(channels),
            signature=signature,
            rule="console",
            templates={"sms": "alerte-sms"},
            sms_gsm7=True,
        )

    def _rules(self) -> RuleBook:
        if self.rules is None:
            raise RuntimeError("the service is not open: call Crieur.open() first")
        return self.rules

    def _territories(self) -> Territories | None:
        """The rules' territories, else (a web process that did not load the rules) the configured file."""
        if self.rules is not None:
            return self.rules.territories
        if self.config.territories is None:
            return None
        if self._territories_file is None:
            self._territories_file = load_territories(self.config.territories)
        return self._territories_file

    async def start_episode(self, territory: str, by: str, reason: str = "") -> None:
        await self.store.set_episode(territory, True, by=by, reason=reason)
        log.info("snow episode started in %s by %s", territory, by)

    async def end_episode(self, territory: str, by: str, reason: str = "") -> None:
        await self.store.set_episode(territory, False, by=by, reason=reason)
        log.info("snow episode ended in %s by %s", territory, by)

    # ------------------------------------------------------------------ operations

    async def drain(self, timeout: float = 30.0) -> None:
        """Send everything due now with a temporary worker (CLI, tests)."""
        worker = (
            self.workers[0]
            if self.workers
            else DeliveryWorker(self.store, self.channels, worker_id=f"{_host()}:drain", settings=WorkerSettings())
        )
        await worker.drain(timeout)

    def health(self) -> dict[str, Any]:
        return {
            "sources": self.source_loop.health() if self.source_loop else [],
            "workers": len(self.workers),
            "uptime_s": round(time.time() - self.started_at),
        }


def fanout_seconds(channel: Channel, messages: int, segments: int = 1) -> float:
    """How long a fan-out of `messages` takes on a channel: the adapter's own estimate (Twilio: senders in
    the pool times their throughput) or its send rate."""
    estimate = getattr(channel, "seconds_for", None)
    if callable(estimate):
        return float(estimate(messages, segments))
    return messages / channel.rate if channel.rate > 0 else 0.0


class _SourceStates:
    """The source loop's view of the store: per-source health and HTTP validators."""

    def __init__(self, store: Store):
        self.store = store

    async def load(self, name: str) -> dict[str, Any] | None:
        return await self.store.load_source_state(name)

    async def save(self, name: str, state: dict[str, Any]) -> None:
        await self.store.save_source_state(name, state)


def _host() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def default_config_path() -> pathlib.Path:
    from .example import example_config

    return example_config()


def name_source_authorities(sources: Sequence[Any], directory: Any) -> None:
    """Give each source the name of the authority that issues it, as citizens read it after "Source :":
    its `authority` may be an id of the authorities file ("prefecture-41" -> "Préfecture de
    Loir-et-Cher"); without one, the authority that lists the source among its `feeds` issues it.
    A plain name is kept as written."""
    from .french import without_article

    for spec in sources:
        authority = directory.get(spec.authority) if spec.authority else None
        if authority is None and not spec.authority:
            authority = next((a for a in directory if spec.name in a.feeds), None)
        if authority is not None:
            spec.authority = without_article(authority.name)
