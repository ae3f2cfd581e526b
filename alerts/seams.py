"""The seams between the service and its parts, named as types.

`Crieur` (alerts/service.py) satisfies every protocol here; tests may stand in for it with any object of
the same shape (a `SimpleNamespace`), and the type checker says when one drifts. The parts read these
attributes when they use them, so they may be built before the service is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    from channels.base import Channel
    from rules.competence import Directory
    from rules.territories import Territories

    from .config import ServiceConfig
    from .domain import Alert
    from .metrics import Metrics
    from .storage import Store


class Rules(Protocol):
    """What the parts read from the rule book (rules.book.RuleBook)."""

    @property
    def territories(self) -> Territories | None:
        """The territories file's contents; raises RuntimeError while no rules were ever loaded."""


class CitizensHost(Protocol):
    """What `alerts.citizens.Citizens` needs from the service."""

    @property
    def config(self) -> ServiceConfig: ...

    @property
    def store(self) -> Store: ...

    @property
    def channels(self) -> Mapping[str, Channel]: ...

    @property
    def directory(self) -> Directory | None: ...

    @property
    def rules(self) -> Rules | None: ...

    @property
    def metrics(self) -> Metrics | None: ...


class MetricsHost(Protocol):
    """What `alerts.metrics.Metrics` reads from the service at each scrape."""

    @property
    def store(self) -> Store | None: ...

    @property
    def workers(self) -> Sequence[Any]: ...

    @property
    def started_at(self) -> float: ...

    @property
    def source_loop(self) -> Any: ...


class ConsoleService(CitizensHost, Protocol):
    """What the CMs' console does through the service: compose, preview and publish alerts, decide on held
    ones, end alerts and snow episodes. Composing has one path, `compose`."""

    def compose(
        self, text: str, territories: Sequence[str], channels: Sequence[str], signature: str = "", title: str = ""
    ) -> Alert: ...

    async def preview(
        self,
        text: str,
        territories: Sequence[str],
        channels: Sequence[str],
        signature: str = "",
        title: str = "",
        exercise: bool = False,
    ) -> list[dict[str, Any]]: ...

    async def publish(self, alert: Alert, created_by: str = "", dedup: str = "") -> Alert: ...

    async def approve(self, alert_id: int, by: str) -> Alert: ...

    async def reject(self, alert_id: int, by: str) -> None: ...

    async def end_alert(self, alert_id: int, by: str, text: str = "") -> Alert: ...

    async def start_episode(self, territory: str, by: str, reason: str = "") -> None: ...

    async def end_episode(self, territory: str, by: str, reason: str = "") -> None: ...

    async def reload_rules(self) -> list[str]: ...
