"""Source health as a CM reads it: OK / en retard / en panne, computed from the source's real timings
(its last successful reading against its poll interval, its consecutive failures), with the error
explained in words and the raw record kept for the detail view.

The ingestion loop stores each source's state (alerts.ingest.loop.SourceHealth.to_state); this module
only reads it, so a web-only process judges the sources polled by another process the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from .durations import ago, duration_fr, within

OK, LATE, DOWN, WAITING = "ok", "late", "down", "waiting"
LABELS = {OK: "OK", LATE: "en retard", DOWN: "en panne", WAITING: "pas encore lue"}
# A source is late after one failed reading, or when no reading succeeded for LATE_INTERVALS poll
# intervals plus one fetch timeout (a slow answer is not late); it is down after DOWN_FAILURES failures
# in a row, or when no reading succeeded for DOWN_INTERVALS intervals plus DOWN_TIMEOUTS timeouts.
LATE_INTERVALS = 2
DOWN_FAILURES = 3
DOWN_INTERVALS = 6
DOWN_TIMEOUTS = 3

KINDS_FR = {
    "rss": "RSS",
    "atom": "Atom",
    "cap": "CAP",
    "datex2": "DATEX II",
    "geojson": "GeoJSON",
    "csv": "CSV",
    "vigilance": "vigilance Météo-France",
}
HTTP_FR = {
    400: "requête refusée",
    401: "authentification requise",
    403: "accès refusé",
    404: "adresse introuvable : le flux a peut-être changé d'adresse",
    408: "le serveur a abandonné la requête",
    410: "le flux a été supprimé",
    429: "trop de requêtes : le serveur limite la fréquence de lecture",
    500: "erreur interne du serveur",
    502: "passerelle en erreur",
    503: "service indisponible (maintenance ou surcharge)",
    504: "le serveur n'a pas répondu à temps (passerelle)",
}
RAW_FIELDS = (
    "last_status",
    "last_success",
    "last_attempt",
    "next_run",
    "consecutive_failures",
    "last_items",
    "etag",
    "last_modified",
    "last_error",
)


@dataclass(frozen=True, slots=True)
class SourceView:
    name: str
    kind: str
    state: str  # OK, LATE, DOWN or WAITING
    label: str  # the state in French
    read: str  # "lu il y a 2 min"
    next: str  # "prochaine lecture dans 30 s"
    why: str = ""  # why it is late or down, in words
    explanation: str = ""  # the last error in words
    interval: float | None = None
    raw: list[tuple[str, str]] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)

    @property
    def attention(self) -> bool:
        return self.state == DOWN


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def _strip_source(message: str) -> str:
    """ "source 'x': HTTP 503 ..." -> "HTTP 503 ..." (the name is already on the card)."""
    return re.sub(r"^source '[^']*':\s*", "", message.strip())


def explain_error(message: str, kind: str = "") -> str:
    """The last error of a source in plain French; the raw message stays available beside it."""
    text = _strip_source(message)
    if not text:
        return ""
    kind_fr = KINDS_FR.get(kind, kind.upper() or "attendu")
    line = re.search(r"\bline (\d+)", text)
    at_line = f" (ligne {line.group(1)})" if line else ""
    http = re.search(r"\bHTTP (\d{3})\b", text)
    if http:
        code = int(http.group(1))
        meaning = HTTP_FR.get(code) or ("erreur du serveur" if code >= 500 else "réponse refusée")
        return f"Le serveur a répondu {code} : {meaning}."
    if timeout := re.search(r"no complete answer within ([\d.]+) s", text):
        return f"Délai dépassé : le serveur n'a pas envoyé le document complet en {timeout.group(1)} s."
    lowered = text.lower()
    rules: list[tuple[tuple[str, ...], str]] = [
        (
            ("sink failed", "parse failed"),
            "Le document a été lu mais n'a pas pu être traité (erreur interne : voir les journaux).",
        ),
        (
            ("name or service not known", "nodename nor servname", "getaddrinfo", "temporary failure in name"),
            "Adresse du serveur introuvable (nom de domaine inconnu ou DNS en panne).",
        ),
        (("ssl", "certificate"), "Connexion sécurisée impossible : le certificat du serveur est refusé."),
        (
            ("connection refused", "cannot connect", "clientconnector", "connect call failed"),
            "Impossible de joindre le serveur : connexion refusée ou réseau coupé.",
        ),
        (
            ("serverdisconnected", "connection reset", "payload", "server disconnected"),
            "Le serveur a coupé la connexion avant la fin du document.",
        ),
        (("exceeds the limit",), "Le document dépasse la taille maximale acceptée pour cette source."),
        (("cannot read",), "Le fichier de la source est absent ou illisible."),
        (("unsupported url scheme",), "L'adresse de la source n'est ni http(s) ni un fichier."),
        (
            ("sent an html page",),
            "Le serveur a envoyé une page web au lieu des données (page d'erreur ou de connexion ?).",
        ),
        (
            ("refused hostile", "entity-expansion", "xml entities"),
            "Document refusé par sécurité : il déclare des entités XML.",
        ),
        (("empty document", "empty csv"), "Le document reçu est vide."),
        (("malformed json", "unreadable json"), f"Le document n'est pas du JSON valide{at_line}."),
        (("malformed", "unreadable"), f"Le document est mal formé (XML invalide){at_line}."),
        (
            (
                "expected a cap",
                "not a datex ii",
                "not a readable rss",
                "not an rss",
                "expected a geojson",
                "not a vigilance document",
                "expected a json object",
                "(xml) but got",
                "(json) but got",
                "featurecollection without",
                "neither a road nor a state column",
                "situationpublication",
                "payloadpublication",
            ),
            f"Le fichier n'est pas au format {kind_fr}{at_line}.",
        ),
    ]
    for needles, sentence in rules:
        if any(n in lowered for n in needles):
            return sentence
    return f"Lecture en échec{at_line} (voir le détail technique)."


def judge(state: Mapping[str, Any], spec: Any | None, now: datetime) -> tuple[str, str]:
    """(OK/LATE/DOWN/WAITING, why) for one source's stored state and its configuration (a SourceSpec:
    interval and timeout; None when the source is no longer configured: then only failures count)."""
    interval = float(spec.interval) if spec is not None else None
    timeout = float(getattr(spec, "timeout", 0) or 0)
    failures = state.get("consecutive_failures")
    failures = failures if isinstance(failures, int) and failures > 0 else 0
    success = _when(state.get("last_success"))
    age = (now - success).total_seconds() if success else None
    if success is None and not failures:
        return WAITING, "aucune lecture n'a encore eu lieu"
    silent = f"aucune lecture réussie depuis {duration_fr(age)}" if age is not None else "jamais lue avec succès"
    tries = f"{failures} échec{'s' if failures > 1 else ''} de suite"
    if failures >= DOWN_FAILURES or (success is None and failures):
        return DOWN, f"{tries}, {silent}"
    if interval and age is not None and age > DOWN_INTERVALS * interval + DOWN_TIMEOUTS * timeout:
        return DOWN, f"{silent} (lue normalement toutes les {duration_fr(interval)})"
    if failures:
        return LATE, f"{tries}, nouvel essai prévu"
    if interval and age is not None and age > LATE_INTERVALS * interval + timeout:
        return LATE, f"{silent} (lue normalement toutes les {duration_fr(interval)})"
    return OK, ""


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def view(name: str, state: Mapping[str, Any], spec: Any | None, now: datetime) -> SourceView:
    interval = float(spec.interval) if spec is not None else None
    kind = str(getattr(spec, "kind", "") or state.get("kind") or "")
    verdict, why = judge(state, spec, now)
    success = _when(state.get("last_success"))
    attempt = _when(state.get("last_attempt"))
    read = f"lue {ago((now - success).total_seconds())}" if success else "jamais lue avec succès"
    if attempt and (success is None or attempt > success) and state.get("last_status") == "error":
        read += f" · dernier essai {ago((now - attempt).total_seconds())}"
    upcoming = _when(state.get("next_run"))
    if spec is None:
        next_reading = "n'est plus dans la configuration : plus lue"
    elif upcoming is None:
        next_reading = "première lecture au démarrage de l'ingestion"
    elif upcoming >= now:
        next_reading = f"prochaine lecture {within((upcoming - now).total_seconds())}"
    else:
        next_reading = (
            f"prochaine lecture attendue depuis {duration_fr((now - upcoming).total_seconds())}"
            " (l'ingestion tourne-t-elle ?)"
        )
    error = str(state.get("last_error") or "")
    raw = [(key, str(state.get(key))) for key in RAW_FIELDS if state.get(key) not in (None, "")]
    if spec is not None:
        raw.insert(0, ("url", str(spec.url)))
        raw.insert(1, ("interval", f"{interval:g} s"))
    return SourceView(
        name=name,
        kind=kind,
        state=verdict,
        label=LABELS[verdict],
        read=read,
        next=next_reading,
        why=_sentence(why),
        explanation=explain_error(error, kind) if error else "",
        interval=interval,
        raw=raw,
        issues=[str(i) for i in state.get("issues") or []],
    )


def views(
    states: Mapping[str, Mapping[str, Any]], specs: Iterable[Any], now: datetime | None = None
) -> list[SourceView]:
    """Every configured source (polled or not yet) and every source with a stored state, the ones that
    need a CM first (down, late), then by name."""
    now = now or datetime.now(timezone.utc)
    by_name = {spec.name: spec for spec in specs}
    names = list(dict.fromkeys([*by_name, *states]))
    found = [view(n, states.get(n) or {}, by_name.get(n), now) for n in names]
    order = {DOWN: 0, LATE: 1, WAITING: 2, OK: 3}
    return sorted(found, key=lambda v: (order[v.state], v.name))
