"""The rules in force, and reloading them without ever running on half-valid rules.

`RuleBook.load(...)` reads territories, templates and rule files and builds an `Engine`. `reload()` reads
them all again and, only if everything validates, replaces the previous snapshot in one attribute
assignment; otherwise the previous rules stay in force and the errors are returned. Warnings (rules that
can never fire) do not stop a load; the last build's are in `warnings`.

`RuleBook.for_config(config)` is how both the service and `crieur rules check --config` get their book,
so that the check a CM runs is exactly the one the service applies: channels, sources, territories,
templates and authorities of that configuration, and the words its sources publish.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Collection, Sequence

from alerts.domain import Item
from alerts.ingest import SourceSpec

from .engine import Decision, Engine, EvalState
from .loader import PARSERS, Known, review_rules
from .templates import Templates
from .territories import Territories, check_territories
from .text import fold
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
        sources: Sequence[SourceSpec] | None = None,
    ):
        self.paths = tuple(paths)
        self.territories_path = territories
        self.templates_dir = templates
        self.channels = channels
        self.authorities = authorities
        self.sources = tuple(sources) if sources is not None else None
        self.warnings: list[RuleError] = []
        self.errors: list[RuleError] = []  # of the last build; the rules in force are older then
        self._snapshot: Snapshot | None = None

    @classmethod
    def for_config(
        cls,
        config: Any,
        *,
        paths: Sequence[PathLike] | None = None,
        territories: PathLike | None = None,
        templates: PathLike | None = None,
    ) -> "RuleBook":
        """The book of a service configuration (alerts.config.ServiceConfig), not loaded yet; `paths` etc.
        replace the configuration's own files (a CM checking a draft)."""
        authorities = None
        if config.authorities:
            from .competence import Directory

            authorities = tuple(a.id for a in Directory.load(config.authorities))
        return cls(
            paths if paths is not None else config.rules,
            territories=territories if territories is not None else config.territories,
            templates=templates if templates is not None else config.templates,
            channels=tuple(config.channels),
            authorities=authorities,
            sources=config.sources,
        )

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
        book.load_or_raise()
        return book

    def load_or_raise(self) -> "RuleBook":
        errors = self.reload()
        if errors:
            raise ValidationFailed(errors)
        return self

    def build(self) -> tuple[Snapshot | None, list[RuleError]]:
        """Read and validate everything, without touching the rules in force."""
        errors: list[RuleError] = []
        self.warnings = []
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
        review = review_rules(self.paths, self.known(territories, templates))
        self.warnings = review.warnings
        if review.errors:
            return None, review.errors
        return Snapshot(Engine(review.ruleset, territories), territories, templates), []

    def known(self, territories: Territories | None, templates: Templates | None) -> Known:
        """What the rule files may refer to."""
        from .vocabulary import Vocabulary, parser_of, seen_in_sources

        sources = {s.name: parser_of(s.kind) for s in self.sources} if self.sources else None
        places: dict[str, str] | None = None
        if territories is not None:
            places = {}
            for territory in territories.items:
                places[fold(territory.name)] = territory.code
                for insee, name in territory.communes.items():
                    places[insee] = places[fold(name)] = territory.code
        vocabulary = Vocabulary.from_parsers(seen_in_sources(self.sources), sources) if self.sources else PARSERS
        return Known(
            territories=territories.codes() if territories is not None else None,
            templates=templates.names() if templates is not None else None,
            channels=self.channels,
            authorities=self.authorities,
            sources=sources,
            places=places,
            vocabulary=vocabulary,
        )

    def reload(self) -> list[RuleError]:
        """Swap in freshly read rules; on any error keep the current ones and return the errors."""
        snapshot, errors = self.build()
        self.errors = errors
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
