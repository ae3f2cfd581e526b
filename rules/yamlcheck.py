"""Validation over YAML *nodes*, so that every error names the file, line and column a CM has to fix.

PyYAML's `compose` keeps a start mark on every key and value; `Checker` walks those nodes, collects every
problem it finds (not just the first) and converts the values it accepts. Scalars are read from their
source text, so `territories: [41]` and `territories: ["41"]` mean the same thing.
"""

from __future__ import annotations

import difflib
import gc
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar, overload

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from alerts.errors import CrieurError

T = TypeVar("T")

_BOOL_TRUE = {"true", "yes", "on"}
_BOOL_FALSE = {"false", "no", "off"}
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem in a configuration file, at a 1-based line and column. A "warning" does not stop the
    file from loading (a rule that can never fire, say); `french` is the message as the console shows it
    (empty: only the English message exists)."""

    file: str
    line: int
    column: int
    message: str
    level: str = "error"
    french: str = ""

    def __str__(self) -> str:
        prefix = "warning: " if self.level == "warning" else ""
        return f"{self.file}:{self.line}:{self.column}: {prefix}{self.message}"

    def in_french(self) -> str:
        prefix = "attention : " if self.level == "warning" else ""
        return f"{self.file}:{self.line}:{self.column}: {prefix}{self.french or self.message}"


def did_you_mean(value: str, candidates: Iterable[str]) -> str | None:
    """The candidate a typo most likely meant: close spelling (case and accents ignored), or the same
    characters in another order ("14" for "41"); None when nothing is close."""
    from .text import fold

    by_fold: dict[str, str] = {}
    for candidate in candidates:
        by_fold.setdefault(fold(str(candidate)), str(candidate))
    folded = fold(value)
    match = difflib.get_close_matches(folded, list(by_fold), n=1, cutoff=0.75)
    if match:
        return by_fold[match[0]]
    anagrams = [c for f, c in by_fold.items() if sorted(f) == sorted(folded) and f != folded]
    return anagrams[0] if len(anagrams) == 1 else None


def hint(guess: str | None) -> tuple[str, str]:
    """ "; did you mean 'x'?" in English and French, or nothing."""
    return (f"; did you mean {guess!r}?", f" ; vouliez-vous dire {guess!r} ?") if guess else ("", "")


class ValidationFailed(CrieurError):
    """Raised when a file (or several) did not validate; carries every error found."""

    def __init__(self, errors: Iterable[RuleError]):
        self.errors: tuple[RuleError, ...] = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def display_name(path: str | os.PathLike[str]) -> str:
    return os.fspath(path)


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader whose tag resolution is remembered per scalar text: a rule file says `channels`,
    `sms` or `true` thousands of times, and PyYAML's resolver runs its regular expressions on each."""

    _tags: dict[str, str] = {}

    def resolve(self, kind: type, value: Any, implicit: Any) -> Any:
        if kind is not ScalarNode:  # SafeLoader has no path resolvers: a list is a seq, a mapping a map
            return _SEQ if kind is SequenceNode else _MAP
        if not implicit[0]:  # quoted or tagged: a text (SafeLoader has no path resolvers)
            return _STR
        tag = self._tags.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._tags) < 100_000:  # a bound on what a pathological file can make it hold
                self._tags[value] = tag
        return tag


FAST_LOADER = _FastLoader if hasattr(yaml, "CSafeLoader") else None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (back as it was after).

    Composing and checking a large file allocates hundreds of thousands of nodes and marks, none of them in a
    cycle; the collector, triggered by the allocations alone, walked the growing tree again and again: 10,000
    rules composed in 3.2 s with it, 0.5 s without (bench/rules.py)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def compose(path: str | os.PathLike[str]) -> tuple[Node | None, list[RuleError]]:
    """Parse one YAML file into nodes; a syntax error (bad indentation, tab...) becomes a RuleError.

    libyaml (CSafeLoader) composes when PyYAML has it: 10,000 rules took 11 s with the pure-Python
    parser. A file it refuses is parsed again by the pure-Python one, whose messages the errors quote."""
    name = display_name(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        with collector_paused():
            if FAST_LOADER is not None:
                try:
                    return yaml.compose(text, Loader=FAST_LOADER), []
                except yaml.YAMLError:
                    pass
            return yaml.compose(text, Loader=yaml.SafeLoader), []
    except OSError as exc:
        return None, [
            RuleError(
                name,
                0,
                0,
                f"cannot read file: {exc.strerror or exc}",
                french=f"fichier illisible : {exc.strerror or exc}",
            )
        ]
    except UnicodeDecodeError as exc:
        return None, [
            RuleError(
                name,
                0,
                0,
                f"not UTF-8 text: {exc.reason} at byte {exc.start}",
                french=f"texte non UTF-8 : {exc.reason} à l'octet {exc.start}",
            )
        ]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{exc.context}, {problem}"
        check = any(word in problem for word in ("indent", "mapping", "block", "expected <"))
        return None, [
            RuleError(
                name,
                line,
                column,
                f"YAML syntax: {problem}" + (" (check the indentation)" if check else ""),
                french=f"syntaxe YAML : {problem}" + (" (vérifiez l'indentation)" if check else ""),
            )
        ]
    except yaml.YAMLError as exc:
        return None, [RuleError(name, 0, 0, f"YAML syntax: {exc}")]


EMPTY_LIST_FR = "liste vide : elle ne correspondrait jamais ; retirez la clé pour accepter toute valeur"


def describe_fr(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "une table"
    if isinstance(node, SequenceNode):
        return "une liste"
    return "rien" if node.tag == _NULL else repr(node.value)


def describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    return repr(node.value)


class Checker:
    """Collects errors for one file while converting its nodes."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[RuleError] = []
        self.warnings: list[RuleError] = []

    def error(self, node: Node | None, path: str, message: str, french: str = "") -> None:
        self.errors.append(self._finding(node, path, message, french, "error"))

    def warn(self, node: Node | None, path: str, message: str, french: str = "") -> None:
        self.warnings.append(self._finding(node, path, message, french, "warning"))

    def _finding(self, node: Node | None, path: str, message: str, french: str, level: str) -> RuleError:
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (0, 0)
        return RuleError(
            self.file,
            line,
            column,
            f"{path}: {message}" if path else message,
            level,
            f"{path} : {french}" if path and french else french,
        )

    def mapping(
        self, node: Node, path: str, allowed: Iterable[str] | None, required: Iterable[str] = ()
    ) -> dict[str, tuple[Node, Node]] | None:
        """Keys → (key node, value node). Unknown (unless allowed is None), duplicate and missing keys
        are errors."""
        if not isinstance(node, MappingNode):
            self.error(
                node,
                path,
                f"expected a mapping, got {describe(node)}",
                f"table attendue (clé: valeur), trouvé {describe_fr(node)}",
            )
            return None
        allowed = tuple(allowed) if allowed is not None else None
        accepted = frozenset(allowed) if allowed is not None else None
        result: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, path, "keys must be plain words", "les clés doivent être des mots simples")
                continue
            key = key_node.value
            if key in result:
                self.error(key_node, f"{path}.{key}" if path else key, "duplicate key", "clé en double")
            elif allowed is not None and accepted is not None and key not in accepted:
                guess = did_you_mean(str(key), allowed)
                self.error(
                    key_node,
                    f"{path}.{key}" if path else key,
                    f"unknown key (expected one of {', '.join(allowed)}{hint(guess)[0]})",
                    f"clé inconnue (clés possibles : {', '.join(allowed)}{hint(guess)[1]})",
                )
            else:
                result[key] = (key_node, value_node)
        for key in required:
            if key not in result:
                self.error(node, path, f"missing required key {key!r}", f"clé obligatoire {key!r} absente")
        return result

    def string(self, node: Node, path: str, *, allow_empty: bool = False) -> str | None:
        if not isinstance(node, ScalarNode) or node.tag == _NULL:
            self.error(
                node, path, f"expected a text value, got {describe(node)}", f"texte attendu, trouvé {describe_fr(node)}"
            )
            return None
        value = str(node.value).strip()
        if not value and not allow_empty:
            self.error(node, path, "expected a non-empty text value", "texte non vide attendu")
            return None
        return value

    def boolean(self, node: Node, path: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag == _BOOL:
            lowered = node.value.lower()
            if lowered in _BOOL_TRUE:
                return True
            if lowered in _BOOL_FALSE:
                return False
        self.error(
            node,
            path,
            f"expected true or false, got {describe(node)}",
            f"true ou false attendu, trouvé {describe_fr(node)}",
        )
        return None

    def integer(self, node: Node, path: str, *, minimum: int | None = None) -> int | None:
        if isinstance(node, ScalarNode) and node.tag == _INT:
            try:
                value = int(node.value.replace("_", ""), 0)
            except ValueError:
                value = None
            if value is not None and (minimum is None or value >= minimum):
                return value
        bound = f" ≥ {minimum}" if minimum is not None else ""
        self.error(
            node,
            path,
            f"expected a whole number{bound}, got {describe(node)}",
            f"nombre entier{bound} attendu, trouvé {describe_fr(node)}",
        )
        return None

    def choice(self, node: Node, path: str, choices: Iterable[str], *, fold_case: bool = False) -> str | None:
        choices = tuple(choices)
        if isinstance(node, ScalarNode) and node.tag != _NULL:
            value = str(node.value).strip()
            for candidate in choices:
                if candidate == value or (fold_case and candidate.lower() == value.lower()):
                    return candidate
            guess = did_you_mean(value, choices)
            if guess is not None:
                self.error(
                    node,
                    path,
                    f"expected one of {', '.join(choices)}, got {describe(node)} (did you mean {guess!r}?)",
                    f"valeur attendue parmi {', '.join(choices)}, trouvé {describe_fr(node)} "
                    f"(vouliez-vous dire {guess!r} ?)",
                )
                return None
        self.error(
            node,
            path,
            f"expected one of {', '.join(choices)}, got {describe(node)}",
            f"valeur attendue parmi {', '.join(choices)}, trouvé {describe_fr(node)}",
        )
        return None

    def items(self, node: Node, path: str, *, scalar_ok: bool = True) -> list[tuple[Node, str]]:
        """A list (or, when scalar_ok, a single value) → [(element node, element path)]."""
        if isinstance(node, SequenceNode):
            return [(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
        if scalar_ok and isinstance(node, ScalarNode) and node.tag != _NULL:
            return [(node, path)]
        self.error(node, path, f"expected a list, got {describe(node)}", f"liste attendue, trouvé {describe_fr(node)}")
        return []

    @overload
    def string_list(self, node: Node, path: str, convert: None = None, *, non_empty: bool = False) -> list[str]: ...

    @overload
    def string_list(
        self, node: Node, path: str, convert: Callable[[str, Node, str], T | None], *, non_empty: bool = False
    ) -> list[T]: ...

    def string_list(
        self,
        node: Node,
        path: str,
        convert: Callable[[str, Node, str], T | None] | None = None,
        *,
        non_empty: bool = False,
    ) -> list[Any]:
        """A list of texts (one text is accepted as a list of one), each optionally converted/checked.
        non_empty: an empty list is an error (for filters, where it would mean "never")."""
        if non_empty and isinstance(node, SequenceNode) and not node.value:
            self.error(
                node, path, "empty list: it would never match; remove the key to accept any value", EMPTY_LIST_FR
            )
            return []
        result: list[Any] = []
        for child, child_path in self.items(node, path):
            value = self.string(child, child_path)
            if value is None:
                continue
            if convert is not None:
                converted = convert(value, child, child_path)
                if converted is not None:
                    result.append(converted)
            else:
                result.append(value)
        return result
