"""Who is responsible for what: the competence directory, and what each authority has published.

A citizen's question is routed to the authority that decides on it (the policy: rules/routing.py). Crieur
answers at once with what that authority has published (`Directory.latest_publication`), and warns its
webmaster, above all when it has published nothing (rules/escalation.py). The directory is read from an
authorities file (rules/authorities_file.py); its vocabulary is in rules/authorities.py.

Keywords are matched on accent- and case-folded whole words (rules.text); each word also matches its
plural in s or x ("poids lourd" matches "poids lourds").
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime, timezone

from alerts.domain import Item, Road
from rules.yamlcheck import Checker, ValidationFailed, compose, display_name

from .authorities import Authority, Routing, Topic
from .authorities_file import read_directory
from .routing import route

__all__ = ["Directory", "DirectoryError"]


class DirectoryError(ValidationFailed):
    """The authorities file did not validate; `errors` lists every problem as file:line:column: field."""


class Directory:
    """The authorities of a service's territories, loaded from one YAML file."""

    def __init__(self, authorities: Iterable[Authority], self_id: str, *, source: str = "<memory>"):
        self.authorities: tuple[Authority, ...] = tuple(authorities)
        self.source = source
        by_id = {a.id: a for a in self.authorities}
        if len(by_id) != len(self.authorities):
            raise ValueError("authority ids must be unique")
        if self_id not in by_id:
            raise ValueError(f"self authority {self_id!r} is not in the directory")
        self._by_id = by_id
        self.self_id = self_id

    @property
    def own(self) -> Authority:
        """The operator's own département."""
        return self._by_id[self.self_id]

    def get(self, authority_id: str) -> Authority | None:
        return self._by_id.get(authority_id)

    def __getitem__(self, authority_id: str) -> Authority:
        return self._by_id[authority_id]

    def __iter__(self) -> Iterator[Authority]:
        return iter(self.authorities)

    def __len__(self) -> int:
        return len(self.authorities)

    def unknown_feeds(self, sources: Collection[str]) -> list[str]:
        """Feed names used by authorities that the service configuration does not define."""
        known = set(sources)
        return sorted({f for a in self.authorities for f in a.feeds if f not in known})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Directory":
        """Read an authorities file; raises DirectoryError listing every problem as file:line:column."""
        root, errors = compose(path)
        if errors:
            raise DirectoryError(errors)
        checker = Checker(display_name(path))
        if root is None:
            checker.error(None, "", "empty file: expected keys 'self' and 'authorities'")
            raise DirectoryError(checker.errors)
        read = read_directory(checker, root)
        if checker.errors or read is None:
            raise DirectoryError(checker.errors)
        authorities, self_id = read
        return cls(authorities, self_id, source=checker.file)

    # ------------------------------------------------------------------------------------- routing

    def route(self, text: str, territories: Collection[str] = (), roads: Collection[Road] = ()) -> Routing:
        """Decide who answers a citizen's question (the policy is rules/routing.py).

        `territories` restricts the candidates (the citizen's subscriptions, the channel's territory);
        `roads` adds roads already found by the caller to those read in `text`.
        """
        return route(self.authorities, self.own, text, territories, roads)

    def publication_for(self, routing: Routing, items: Iterable[Item], now: datetime) -> Item | None:
        """What the routed authority has published on the routed topic (None when nothing matched)."""
        if routing.authority is None or routing.topic is None:
            return None
        return self.latest_publication(routing.authority, routing.topic, items, now)

    def latest_publication(
        self, authority: Authority, topic: Topic, items: Iterable[Item], now: datetime
    ) -> Item | None:
        """The authority's latest current publication on `topic`, or None (the information gap).

        Only items from the authority's feeds count; withdrawn, expired and superseded ones (referenced by
        a later Update or Cancel from the same source) are skipped. Latest means most recently sent.
        """
        feeds = set(authority.feeds)
        own = [item for item in items if item.source in feeds]
        superseded = {(item.source, ref) for item in own for ref in _referenced_ids(item.references)}
        best: Item | None = None
        for item in own:
            if (item.source, item.external_id) in superseded or not item.is_current(now):
                continue
            if not topic.matches_item(item):
                continue
            if best is None or _sent_key(item) > _sent_key(best):
                best = item
        return best


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _sent_key(item: Item) -> datetime:
    sent = item.sent or item.onset
    if sent is None:
        return _EPOCH
    return sent if sent.tzinfo else sent.replace(tzinfo=timezone.utc)


def _referenced_ids(references: Iterable[str]) -> Iterable[str]:
    """CAP references are "sender,identifier,sent"; other formats give the identifier alone."""
    for reference in references:
        parts = reference.split(",")
        yield parts[1].strip() if len(parts) == 3 else reference.strip()
