"""What every part of the citizens package reads from the service (alerts.seams.CitizensHost)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from channels.base import Channel

from ..seams import CitizensHost

if TYPE_CHECKING:
    from rules.competence import Directory

    from ..config import ServiceConfig
    from ..storage import Store

NO_ALERT = 0  # deliveries.alert_id of replies and escalations, which belong to no alert


class Part:
    """A part of the citizens' side; the service's parts are read when used, so it may be built before
    the store is opened."""

    def __init__(self, crieur: CitizensHost):
        self.crieur = crieur

    @property
    def config(self) -> ServiceConfig:
        return self.crieur.config

    @property
    def store(self) -> Store:
        return self.crieur.store

    @property
    def directory(self) -> Directory | None:
        return self.crieur.directory

    @property
    def channels(self) -> Mapping[str, Channel]:
        return self.crieur.channels


def when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, timezone.utc) if epoch else None
