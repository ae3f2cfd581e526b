"""The on-call rota ("astreinte"): who answers when the community managers are not at the desk.

A rota file (example: examples/loir-et-cher/astreinte.yaml)::

    people:                                  # everyone who may be paged
      alice: {name: Alice Martin, phone: "06 12 34 56 01", email: alice@cd41.example,
              pin_env: CRIEUR_PIN_ALICE}     # the PIN that signs SMS replies, in an environment variable
      bruno: {name: Bruno Petit, phone: "+33612345602", email: bruno@cd41.example, pin_env: CRIEUR_PIN_BRUNO}
      claire: {name: Claire Roux, phone: "+33612345603", email: claire@cd41.example, pin_env: CRIEUR_PIN_CLAIRE}
    head: claire                             # head of communication: the last of every chain
    shifts:                                  # Paris time; the first shift covering the moment wins
      - period: {from: "2026-12-04 18:00", to: "2026-12-07 08:00"}   # one dated turn
        cm: alice
        backup: bruno
      - when: [nights, weekends, holidays]   # or always, office, outside_office,
        cm: bruno                            #    or {days: [mon, tue], from: "18:00", to: "08:00"}
        backup: alice
    paging:                                  # wait before the first page, then between pages
      default: {after: 15m, next: 10m}
      alert.Severe: {after: 5m, next: 10m}   # kind, or kind.Severity (CAP words)
      alert.Extreme: {after: 0m, next: 5m}
    channels: {sms: sms, email: email}       # default: citizens.sms_channel / citizens.email_channel

Named windows: nights 20:00-08:00, weekends Saturday and Sunday, holidays the French public holidays
(`alsace_moselle: true` adds Good Friday and 26 December), office Monday-Friday 08:00-18:00 except
holidays, outside_office the rest. Errors name the file, line and column, all at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

from yaml.nodes import MappingNode, Node, ScalarNode

from alerts.config import _duration
from alerts.domain import Severity
from alerts.phones import InvalidPhone, normalise_phone
from rules.model import DAYS
from rules.yamlcheck import Checker, ValidationFailed, compose, display_name

from .holidays import is_holiday

PARIS = ZoneInfo("Europe/Paris")
NAMED_WINDOWS = ("always", "nights", "weekends", "holidays", "office", "outside_office")
NIGHT_START, NIGHT_END = time(20, 0), time(8, 0)
OFFICE_START, OFFICE_END = time(8, 0), time(18, 0)
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_PERIOD = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T]([01]\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    phone: str  # E.164
    email: str
    pin_env: str = ""

    def pin(self) -> str:
        """The PIN from its environment variable; "" when unset (then SMS replies are refused)."""
        return os.environ.get(self.pin_env, "").strip() if self.pin_env else ""


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly window in Paris time; `start > end` crosses midnight (then `days` are the start days)."""

    days: frozenset[int]
    start: time
    end: time

    def covers(self, local: datetime) -> bool:
        t, weekday = local.time(), local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= t < self.end
        if t >= self.start:
            return weekday in self.days
        return t < self.end and (weekday - 1) % 7 in self.days


@dataclass(frozen=True, slots=True)
class Shift:
    cm: str
    backup: str = ""
    named: tuple[str, ...] = ()
    windows: tuple[Window, ...] = ()
    period: tuple[datetime, datetime] | None = None
    line: int = 0

    def covers(self, moment: datetime, alsace_moselle: bool = False) -> bool:
        local = moment.astimezone(PARIS)
        if self.period is not None:
            return self.period[0] <= moment < self.period[1]
        if any(w.covers(local) for w in self.windows):
            return True
        return any(_named_covers(name, local, alsace_moselle) for name in self.named)


def _named_covers(name: str, local: datetime, alsace_moselle: bool) -> bool:
    t, day = local.time(), local.date()
    holiday = is_holiday(day, alsace_moselle)
    office = local.weekday() < 5 and not holiday and OFFICE_START <= t < OFFICE_END
    return {
        "always": True,
        "nights": t >= NIGHT_START or t < NIGHT_END,
        "weekends": local.weekday() >= 5,
        "holidays": holiday,
        "office": office,
        "outside_office": not office,
    }[name]


@dataclass(frozen=True, slots=True)
class Delays:
    after: float  # seconds before the first page
    next: float  # seconds before the next person of the chain is paged


@dataclass(frozen=True, slots=True)
class Rota:
    people: Mapping[str, Person]
    head: str
    shifts: tuple[Shift, ...]
    paging: Mapping[str, Delays] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)  # "sms" / "email" → channel name
    alsace_moselle: bool = False
    file: str = ""

    def chain(self, moment: datetime, swaps: Sequence[Shift] = ()) -> list[Person]:
        """Who is paged, in order, for something waiting at `moment`: the shift's CM, their back-up, then
        the head of communication (each once). Outside every shift, the head alone. `swaps` (dated shifts
        entered in the console) come before the file's shifts; a person no longer in the file is skipped."""
        ids: list[str] = []
        for shift in (*swaps, *self.shifts):
            if shift.covers(moment, self.alsace_moselle):
                ids = [shift.cm, shift.backup]
                break
        ids.append(self.head)
        return [self.people[i] for i in dict.fromkeys(i for i in ids if i in self.people)]

    def delays(self, kind: str, severity: Severity) -> Delays:
        for key in (f"{kind}.{severity.cap}", kind, "default"):
            if key in self.paging:
                return self.paging[key]
        return Delays(15 * 60, 10 * 60)

    def by_phone(self, phone: str) -> Person | None:
        return next((p for p in self.people.values() if p.phone == phone), None)


def load_rota(path: str | os.PathLike[str]) -> Rota:
    """Read and check a rota file; raises ValidationFailed naming file, line and column of every problem."""
    root, errors = compose(path)
    if errors:
        raise ValidationFailed(errors)
    check = Checker(display_name(path))
    if root is None:
        check.error(
            None,
            "",
            "the file is empty: expected 'people:', 'head:' and 'shifts:'",
            "le fichier est vide : 'people:', 'head:' et 'shifts:' attendus",
        )
        raise ValidationFailed(check.errors)
    top = (
        check.mapping(
            root,
            "",
            ("people", "head", "shifts", "paging", "channels", "alsace_moselle"),
            required=("people", "head", "shifts"),
        )
        or {}
    )
    people, declared = _people(check, top["people"][1]) if "people" in top else ({}, [])

    def person_ref(node: Node, where: str) -> str:
        value = check.string(node, where)
        if value is not None and declared and value not in declared:
            check.error(
                node,
                where,
                f"unknown person {value!r} (people: {', '.join(declared)})",
                f"personne {value!r} inconnue (personnes : {', '.join(declared)})",
            )
            return ""
        return value or ""

    head = person_ref(top["head"][1], "head") if "head" in top else ""
    shifts = []
    if "shifts" in top:
        for node, where in check.items(top["shifts"][1], "shifts", scalar_ok=False):
            shift = _shift(check, node, where, person_ref)
            if shift is not None:
                shifts.append(shift)
    paging: dict[str, Delays] = {}
    if "paging" in top:
        for key, (key_node, value_node) in (check.mapping(top["paging"][1], "paging", None) or {}).items():
            kind, _, severity = str(key).partition(".")
            if severity and severity not in {s.cap for s in Severity}:
                check.error(
                    key_node,
                    f"paging.{key}",
                    "expected kind or kind.Severity (Minor, Moderate, Severe, Extreme)",
                    "type ou type.Gravité attendu (Minor, Moderate, Severe, Extreme)",
                )
                continue
            fields = check.mapping(value_node, f"paging.{key}", ("after", "next"), required=("after", "next"))
            if fields and "after" in fields and "next" in fields:
                after = _duration(check, fields["after"][1], f"paging.{key}.after")
                following = _duration(check, fields["next"][1], f"paging.{key}.next")
                if after is not None and following is not None:
                    paging[key] = Delays(after, max(following, 60.0))
    channels: dict[str, str] = {}
    if "channels" in top:
        for key, (_k, value_node) in (check.mapping(top["channels"][1], "channels", ("sms", "email")) or {}).items():
            value = check.string(value_node, f"channels.{key}")
            if value:
                channels[key] = value
    alsace = bool(check.boolean(top["alsace_moselle"][1], "alsace_moselle")) if "alsace_moselle" in top else False
    if check.errors:
        raise ValidationFailed(sorted(check.errors, key=lambda e: (e.line, e.column)))
    return Rota(people, head, tuple(shifts), paging, channels, alsace, check.file)


def _people(check: Checker, node: Node) -> tuple[dict[str, Person], list[str]]:
    """The valid people, and every name declared (a person with an error is still referred to by name:
    one error, not one more at each shift naming them)."""
    people: dict[str, Person] = {}
    phones: dict[str, str] = {}
    declared = check.mapping(node, "people", None) or {}
    for key, (key_node, value_node) in declared.items():
        where = f"people.{key}"
        if not _ID.match(str(key)):
            check.error(
                key_node,
                where,
                "use lower-case letters, digits, '-', '_' or '.'",
                "lettres minuscules, chiffres, '-', '_' ou '.' seulement",
            )
            continue
        fields = (
            check.mapping(value_node, where, ("name", "phone", "email", "pin_env"), required=("name", "phone", "email"))
            or {}
        )
        values: dict[str, str] = {}
        for name, (_k, v) in fields.items():
            text = check.string(v, f"{where}.{name}")
            if text is None:
                continue
            if name == "phone":
                try:
                    text = normalise_phone(text)
                except InvalidPhone as exc:
                    check.error(v, f"{where}.phone", f"not a phone number: {exc}", f"numéro invalide : {exc}")
                    continue
                if text in phones:
                    check.error(
                        v, f"{where}.phone", f"same number as {phones[text]}", f"même numéro que {phones[text]}"
                    )
                phones[text] = str(key)
            if name == "email" and not _EMAIL.match(text):
                check.error(v, f"{where}.email", f"not an email address: {text!r}", f"adresse invalide : {text!r}")
                continue
            values[name] = text
        if {"name", "phone", "email"} <= set(values):
            people[str(key)] = Person(
                str(key), values["name"], values["phone"], values["email"], values.get("pin_env", "")
            )
    return people, [str(k) for k in declared]


def _shift(check: Checker, node: Node, where: str, person_ref) -> Shift | None:  # type: ignore[no-untyped-def]
    fields = check.mapping(node, where, ("cm", "backup", "when", "period"), required=("cm",))
    if fields is None:
        return None
    before = len(check.errors)
    cm = person_ref(fields["cm"][1], f"{where}.cm") if "cm" in fields else ""
    backup = person_ref(fields["backup"][1], f"{where}.backup") if "backup" in fields else ""
    if ("when" in fields) == ("period" in fields):
        check.error(
            node,
            where,
            "give either 'when' (recurring) or 'period' (dated), not both nor neither",
            "indiquez 'when' (récurrent) ou 'period' (daté), l'un des deux",
        )
    named: list[str] = []
    windows: list[Window] = []
    period = None
    if "when" in fields:
        value = fields["when"][1]
        items = [(value, f"{where}.when")] if isinstance(value, MappingNode) else check.items(value, f"{where}.when")
        for child, child_where in items:
            if isinstance(child, MappingNode):
                window = _window(check, child, child_where)
                if window is not None:
                    windows.append(window)
            else:
                name = check.choice(child, child_where, NAMED_WINDOWS)
                if name:
                    named.append(name)
    if "period" in fields:
        period = _period(check, fields["period"][1], f"{where}.period")
    if len(check.errors) > before:
        return None
    return Shift(cm, backup, tuple(named), tuple(windows), period, node.start_mark.line + 1)


def _clock(check: Checker, node: Node, where: str) -> time | None:
    match = _CLOCK.match(str(node.value).strip()) if isinstance(node, ScalarNode) else None
    if match is None:
        check.error(
            node, where, 'expected a time like "18:00" (quote it)', 'heure attendue comme "18:00" (entre guillemets)'
        )
        return None
    return time(int(match.group(1)), int(match.group(2)))


def _window(check: Checker, node: Node, where: str) -> Window | None:
    fields = check.mapping(node, where, ("days", "from", "to"), required=("from", "to")) or {}
    if "from" not in fields or "to" not in fields:
        return None
    start, end = _clock(check, fields["from"][1], f"{where}.from"), _clock(check, fields["to"][1], f"{where}.to")
    days = frozenset(range(7))
    if "days" in fields:
        picked = [check.choice(n, p, DAYS, fold_case=True) for n, p in check.items(fields["days"][1], f"{where}.days")]
        days = frozenset(DAYS.index(d.lower()) for d in picked if d)
    if start is None or end is None:
        return None
    if start == end:
        check.error(node, where, "'from' and 'to' are equal", "'from' et 'to' sont égaux")
        return None
    return Window(days, start, end)


def _period(check: Checker, node: Node, where: str) -> tuple[datetime, datetime] | None:
    fields = check.mapping(node, where, ("from", "to"), required=("from", "to")) or {}
    moments = []
    for key in ("from", "to"):
        if key not in fields:
            return None
        value = fields[key][1]
        match = _PERIOD.match(str(value.value).strip()) if isinstance(value, ScalarNode) else None
        if match is None:
            check.error(
                value,
                f"{where}.{key}",
                'expected a Paris date and time like "2026-12-04 18:00" (quote it)',
                'date et heure de Paris attendues comme "2026-12-04 18:00" (entre guillemets)',
            )
            return None
        day = date.fromisoformat(match.group(1))
        moments.append(datetime.combine(day, time(int(match.group(2)), int(match.group(3))), PARIS))
    if moments[1] <= moments[0]:
        check.error(node, where, "'to' must come after 'from'", "'to' doit suivre 'from'")
        return None
    return moments[0], moments[1]


def paris(moment: datetime) -> str:
    """How a page or the audit writes a moment: "sam. 05/12 23:00"."""
    local = moment.astimezone(PARIS)
    day = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")[local.weekday()]
    return f"{day} {local:%d/%m %H:%M}"
