"""What a rule's `when:` refers to, checked against the configuration and what the parsers produce.

A rule that names a source, an event or a colour that no item will ever carry never fires, silently. The
loader asks this module about each such value:

* a likely typo (close to a known word: "meteo-vigilence", "neige-verglass") is an **error**, with the
  word it probably meant; so is a value outside a closed vocabulary (vigilance colours, DATEX record types);
* a value some parser produces, but not the sources this rule can get items from, or a combination of
  conditions no single kind of source satisfies, is a **warning**: the rule loads, and can never fire.

`Scope` follows the kinds of source (rss, cap, datex2, geojson, vigilance) an item matching the conditions
read so far could come from: the rule's `source:` (or every configured source), then narrowed by each
condition in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Iterable, Mapping

from yaml.nodes import Node

from alerts.domain import MsgType, Severity

from .vocabulary import Vocabulary
from .yamlcheck import Checker, did_you_mean

# field name in messages → (English, French)
_LABELS = {
    "event": ("event", "événement"),
    "category": ("category", "catégorie"),
    "msg_type": ("message type", "type de message"),
    "severity": ("severity", "gravité"),
}


def label(name: str) -> tuple[str, str]:
    return _LABELS.get(name, (f"attribute {name}", f"attribut {name}"))


def check_source(checker: Checker, value: str, node: Node, path: str, sources: Mapping[str, str] | None) -> str:
    """A source name against the configured ones. Always returns the value: an unknown source that is not a
    typo (a rules file shared by several deployments) is a warning only."""
    if not sources or value in sources:
        return value
    configured = ", ".join(sorted(sources))
    guess = did_you_mean(value, sources)
    if guess is not None and _skeleton(guess) == _skeleton(value):
        guess = None  # prefecture-28 is not a typo of prefecture-41: another source, not configured here
    if guess is not None:
        checker.error(
            node,
            path,
            f"unknown source {value!r} (did you mean {guess!r}?)",
            f"source {value!r} inconnue (vouliez-vous dire {guess!r} ?)",
        )
    else:
        checker.warn(
            node,
            path,
            f"source {value!r} is not configured (configured: {configured}): no item will come from it",
            f"la source {value!r} n'est pas configurée (sources : {configured}) : aucun message n'en viendra",
        )
    return value


def _skeleton(name: str) -> str:
    return "".join("0" if c.isdigit() else c for c in name.casefold())


@dataclass(slots=True)
class Scope:
    """Kinds of source the rule's items can come from, given the conditions read so far."""

    kinds: set[str]
    origin: str  # English, e.g. "source prefecture-41 (rss)"
    origin_fr: str
    narrowed_by: list[str] = field(default_factory=list)  # paths of the conditions that narrowed it
    dead: bool = False  # a warning was given already: say it once

    @classmethod
    def start(
        cls, rule_sources: Collection[str] | None, sources: Mapping[str, str] | None, vocabulary: Vocabulary
    ) -> "Scope":
        everything = set(vocabulary.kinds)
        if rule_sources and sources:
            named = {s: sources[s] for s in rule_sources if s in sources}
            if named:
                listed = ", ".join(f"{s} ({k})" for s, k in sorted(named.items()))
                plural = "s" if len(named) > 1 else ""
                return cls(set(named.values()), f"source{plural} {listed}", f"source{plural} {listed}")
            return cls(everything, "any source", "toute source")
        if rule_sources is None and sources:
            listed = ", ".join(f"{s} ({k})" for s, k in sorted(sources.items()))
            return cls(set(sources.values()), f"the configured sources {listed}", f"les sources configurées {listed}")
        return cls(everything, "any source", "toute source")

    def narrow(self, checker: Checker, node: Node, path: str, producers: set[str], what: str, what_fr: str) -> None:
        """Keep the kinds that can also satisfy this condition; none left: the rule can never fire."""
        if self.dead:
            return
        left = self.kinds & producers
        if left:
            if left != self.kinds:
                self.narrowed_by.append(path)
            self.kinds = left
            return
        self.dead = True
        makers = ", ".join(sorted(producers)) or "none"
        if self.narrowed_by:
            earlier = ", ".join(self.narrowed_by)
            checker.warn(
                node,
                path,
                f"this rule can never fire: conditions contradict each other: {what} comes only "
                f"from {makers} sources, which {earlier} already excludes",
                f"cette règle ne se déclenchera jamais : conditions contradictoires : {what_fr} ne vient que "
                f"de sources {makers}, que {earlier} exclut déjà",
            )
        else:
            checker.warn(
                node,
                path,
                f"this rule can never fire: items from {self.origin} never have {what} "
                f"(only {makers} sources produce it)",
                f"cette règle ne se déclenchera jamais : les messages de {self.origin_fr} n'ont jamais "
                f"{what_fr} (seules des sources {makers} le produisent)",
            )


def check_value(
    checker: Checker, node: Node, path: str, name: str, value: str, vocabulary: Vocabulary
) -> set[str] | None:
    """The kinds whose items may carry `value` in field `name` (event, category or an attribute); None after
    an error (a likely typo, or a value outside a closed vocabulary)."""
    kinds = tuple(vocabulary.kinds)
    if vocabulary.exact_producers(name, value, kinds):
        return set(vocabulary.producers(name, value, kinds))
    what, what_fr = label(name)
    known = vocabulary.spellings(name, kinds)
    guess = did_you_mean(value, known)
    if guess is not None:
        checker.error(
            node,
            path,
            f"no source produces the {what} {value!r} (did you mean {guess!r}?)",
            f"aucune source ne produit {what_fr} {value!r} (vouliez-vous dire {guess!r} ?)",
        )
        return None
    if vocabulary.closed(name, kinds):
        listed = ", ".join(known)
        checker.error(
            node,
            path,
            f"no source produces the {what} {value!r} (known: {listed})",
            f"aucune source ne produit {what_fr} {value!r} (valeurs possibles : {listed})",
        )
        return None
    return set(vocabulary.producers(name, value, kinds))


def check_attribute_name(checker: Checker, node: Node, path: str, name: str, vocabulary: Vocabulary) -> bool:
    names = vocabulary.attribute_names()
    if name in names:
        return True
    guess = did_you_mean(name, names)
    hint = f"did you mean {guess!r}?" if guess else f"known: {', '.join(names)}"
    hint_fr = f"vouliez-vous dire {guess!r} ?" if guess else f"attributs possibles : {', '.join(names)}"
    checker.error(
        node,
        path,
        f"no source gives items the attribute {name!r} ({hint})",
        f"aucune source ne donne l'attribut {name!r} aux messages ({hint_fr})",
    )
    return False


def msg_type_producers(vocabulary: Vocabulary, msg_types: Iterable[MsgType]) -> set[str]:
    wanted = set(msg_types)
    return {k for k, words in vocabulary.kinds.items() if words.msg_types & wanted}


def severity_producers(vocabulary: Vocabulary, minimum: Severity) -> set[str]:
    return {k for k, words in vocabulary.kinds.items() if words.max_severity >= minimum}
