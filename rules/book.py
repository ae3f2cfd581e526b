"""The rules in force, and reloading them without ever running on half-valid rules.

`RuleBook.load(...)` reads territories, templates and rule files and builds an `Engine`. `reload()` reads
them all again and, only if everything validates, replaces the previous snapshot in one attribute
assignment; otherwise the previous rules stay in force and the errors are returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Collection, Sequence

from alerts.domain import Item

from .engine import Decision, Engine, EvalState
from .loader import Known, check_rules
from .templates import Templates
from .territories import Territories, check_territories
from .yamlcheck import RuleError, ValidationFailed

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Snapshot:
    engine: Engine
    territories: Territories | None
    templates: Templates | None


class RuleBook:
    def __init__(
        self,
        paths: Sequence[PathLike],
        *,
        territories: PathLike | None = None,
        templates: PathLike | None = None,
        channels: Collection[str] | None = None,
        authorities: Collection[str] | None = None,
    ):
        self.paths = tuple(paths)
        self.territories_path = territories
        self.templates_dir = templates
        self.channels = channels
        self.authorities = authorities
        self._snapshot: Snapshot | None = None

    @classmethod
    def load(
        cls,
        *paths: PathLike,
        territories: PathLike | None = None,
        templates: PathLike | None = None,
        channels: Collection[str] | None = None,
        authorities: Collection[str] | None = None,
    ) -> "RuleBook":
        """Raises ValidationFailed (with every error) when anything does not validate."""
        book = cls(paths, territories=territories, templates=templates, channels=channels, authorities=authorities)
        errors = book.reload()
        if errors:
            raise ValidationFailed(errors)
        return book

    def build(self) -> tuple[Snapshot | None, list[RuleError]]:
        """Read and validate everything, without touching the rules in force."""
        errors: list[RuleError] = []
        territories = None
        if self.territories_path is not None:
            territories, found = check_territories(self.territories_path)
            errors += found
        templates = None
        if self.templates_dir is not None:
            try:
                templates = Templates(self.templates_dir)
            except FileNotFoundError as exc:
                errors.append(RuleError(os.fspath(self.templates_dir), 0, 0, str(exc)))
            else:
                errors += templates.check()
        if errors:
            return None, errors
        known = Known(
            territories=territories.codes() if territories is not None else None,
            templates=templates.names() if templates is not None else None,
            channels=self.channels,
            authorities=self.authorities,
        )
        ruleset, errors = check_rules(self.paths, known)
        if errors:
            return None, errors
        return Snapshot(Engine(ruleset, territories), territories, templates), []

    def reload(self) -> list[RuleError]:
        """Swap in freshly read rules; on any error keep the current ones and return the errors."""
        snapshot, errors = self.build()
        if snapshot is not None:
            self._snapshot = snapshot  # the single swap readers may observe
        return errors

    @property
    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            raise RuntimeError("no rules loaded yet (the first load failed)")
        return self._snapshot

    @property
    def engine(self) -> Engine:
        return self.snapshot.engine

    @property
    def territories(self) -> Territories | None:
        return self.snapshot.territories

    @property
    def templates(self) -> Templates | None:
        return self.snapshot.templates

    def decide(self, item: Item, state: EvalState) -> list[Decision]:
        return self.snapshot.engine.decide(item, state)
