"""Poll every source in its own task: fetch -> parse -> sink, with per-source health and backoff.

A source's ETag/Last-Modified are only committed after the sink accepted its items, so a failed
store never turns into a 304 that silently drops those items.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp

from ..domain import Item
from . import SourceSpec, parse
from .common import now_utc
from .errors import ParseError, collect_issues, stop_collecting
from .fetch import FetchError, fetch, next_delay
from .links import LinkedDocuments, follow_cap_links, follows_links

log = logging.getLogger("crieur.ingest")

Sink = Callable[[SourceSpec, list[Item]], Awaitable[None]]
MAX_ISSUES = 20  # skipped-record messages kept per source in health()


class StateStore(Protocol):
    async def load(self, name: str) -> dict[str, Any] | None: ...

    async def save(self, name: str, state: dict[str, Any]) -> None: ...


class MemoryStateStore:
    """A StateStore that forgets on restart (tests, one-shot CLI runs)."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}

    async def load(self, name: str) -> dict[str, Any] | None:
        state = self.states.get(name)
        return dict(state) if state is not None else None

    async def save(self, name: str, state: dict[str, Any]) -> None:
        self.states[name] = dict(state)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _from_iso(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


@dataclass(slots=True)
class SourceHealth:
    name: str
    kind: str
    last_status: str = "never"  # never | ok | not_modified | error
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str = ""
    consecutive_failures: int = 0
    etag: str | None = None
    last_modified: str | None = None
    next_run: datetime | None = None
    last_items: int = 0
    issues: list[str] = field(default_factory=list)

    def to_state(self) -> dict[str, Any]:
        state = asdict(self)
        for key in ("last_success", "last_attempt", "next_run"):
            state[key] = _iso(getattr(self, key))
        return state

    def restore(self, state: dict[str, Any]) -> None:
        self.last_status = str(state.get("last_status") or "never")
        self.last_success = _from_iso(state.get("last_success"))
        self.last_attempt = _from_iso(state.get("last_attempt"))
        self.last_error = str(state.get("last_error") or "")
        failures = state.get("consecutive_failures")
        self.consecutive_failures = failures if isinstance(failures, int) and failures >= 0 else 0
        self.etag = state.get("etag") if isinstance(state.get("etag"), str) else None
        self.last_modified = state.get("last_modified") if isinstance(state.get("last_modified"), str) else None
        self.next_run = _from_iso(state.get("next_run"))
        self.last_items = int(state.get("last_items") or 0) if str(state.get("last_items", 0)).isdigit() else 0
        self.issues = [str(i) for i in state.get("issues") or []][:MAX_ISSUES]


class SourceLoop:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        specs: Iterable[SourceSpec],
        sink: Sink,
        state_store: StateStore,
        on_poll: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        """on_poll(source, seconds, ok) is told of every poll (metrics)."""
        self._session = session
        self._on_poll = on_poll
        self._specs: dict[str, SourceSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"two sources are named {spec.name!r}")
            self._specs[spec.name] = spec
        self._sink = sink
        self._store = state_store
        self._health = {name: SourceHealth(name, spec.kind) for name, spec in self._specs.items()}
        self._loaded: set[str] = set()
        self._locks = {name: asyncio.Lock() for name in self._specs}
        self._linked: dict[str, LinkedDocuments] = {}  # per source: CAP documents behind feed entries

    # -- public API -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll every source on its own schedule until cancelled."""
        tasks = [
            asyncio.create_task(self._source_task(spec), name=f"ingest:{spec.name}") for spec in self._specs.values()
        ]
        try:
            if not tasks:
                await asyncio.Event().wait()  # nothing to poll, but run() still lasts until cancelled
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def poll_once(self, name: str) -> dict[str, Any]:
        """Fetch, parse and sink one source now; returns its health afterwards. Never raises for a
        source failure (that is recorded in the health), only KeyError for an unknown name."""
        spec = self._specs[name]
        await self._ensure_loaded(spec.name)
        await self._poll(spec)
        return self._snapshot(self._health[name])

    def health(self) -> list[dict[str, Any]]:
        return [self._snapshot(h) for h in self._health.values()]

    # -- internals --------------------------------------------------------------------------------

    @staticmethod
    def _snapshot(health: SourceHealth) -> dict[str, Any]:
        state = health.to_state()
        state["issues"] = list(health.issues)
        return state

    async def _ensure_loaded(self, name: str) -> None:
        if name in self._loaded:
            return
        self._loaded.add(name)
        try:
            state = await self._store.load(name)
        except Exception as exc:  # a broken state store must not stop ingestion
            log.error("source %r: cannot load saved state: %s", name, exc)
            return
        if isinstance(state, dict):
            self._health[name].restore(state)

    async def _source_task(self, spec: SourceSpec) -> None:
        await self._ensure_loaded(spec.name)
        health = self._health[spec.name]
        if health.next_run is not None:
            await asyncio.sleep(max(0.0, (health.next_run - now_utc()).total_seconds()))
        while True:
            try:
                await self._poll(spec)
                delay = (health.next_run - now_utc()).total_seconds() if health.next_run else spec.interval
            except asyncio.CancelledError:
                raise
            except Exception:  # _poll records source failures itself; this is a last guard for the task
                log.exception("source %r: polling task error", spec.name)
                delay = spec.interval
            await asyncio.sleep(max(0.0, delay))

    async def _poll(self, spec: SourceSpec) -> None:
        health = self._health[spec.name]
        async with self._locks[spec.name]:
            health.last_attempt = now_utc()
            started = time.monotonic()
            stage = "fetch"
            try:
                result = await fetch(self._session, spec, health.etag, health.last_modified)
                if result.status == "not_modified":
                    health.last_status, health.last_items = "not_modified", 0
                else:
                    stage = "parse"
                    items, issues = await asyncio.to_thread(_parse_collecting, spec, result.body, result.content_type)
                    if follows_links(spec):
                        stage = "linked documents"
                        memory = self._linked.setdefault(spec.name, LinkedDocuments())
                        items, link_issues = await follow_cap_links(self._session, spec, items, memory)
                        issues += link_issues
                    stage = "sink"
                    await self._sink(spec, items)
                    health.etag, health.last_modified = result.etag, result.last_modified
                    health.last_status, health.last_items = "ok", len(items)
                    health.issues = issues[:MAX_ISSUES]
                health.last_success = now_utc()
                health.last_error = ""
                health.consecutive_failures = 0
            except asyncio.CancelledError:
                raise
            except (FetchError, ParseError) as exc:
                self._failed(health, str(exc))
                log.error("%s", exc)
            except Exception as exc:  # a bug in a parser or the sink: record it, keep the source in rotation
                message = f"source {spec.name!r}: {stage} failed: {type(exc).__name__}: {exc}"
                self._failed(health, message)
                log.error("%s", message, exc_info=True)
            if self._on_poll is not None:
                self._on_poll(spec.name, time.monotonic() - started, health.consecutive_failures == 0)
            health.next_run = now_utc() + timedelta(seconds=next_delay(spec, health.consecutive_failures))
            try:
                await self._store.save(spec.name, health.to_state())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("source %r: cannot save state: %s", spec.name, exc)

    @staticmethod
    def _failed(health: SourceHealth, message: str) -> None:
        health.last_status = "error"
        health.last_error = message
        health.consecutive_failures += 1


def _parse_collecting(spec: SourceSpec, body: bytes, content_type: str) -> tuple[list[Item], list[str]]:
    issues, token = collect_issues()
    try:
        return parse(spec, body, content_type), issues
    finally:
        stop_collecting(token)
