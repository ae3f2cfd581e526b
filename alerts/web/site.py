"""What the public pages, feeds and API share: territories, current alerts, times, the SMS number, ETags."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from aiohttp import web

from alerts.domain import Alert, AlertStatus
from alerts.french import PARIS as PARIS
from alerts.french import datetime_fr
from alerts.seams import ConsoleService

log = logging.getLogger("crieur.web")

CRIEUR: web.AppKey[ConsoleService] = web.AppKey("crieur", object)  # type: ignore[arg-type]
TEMPLATES: web.AppKey[Any] = web.AppKey("templates", object)
WALL: web.AppKey[Any] = web.AppKey("wall", object)
SECURE_COOKIES: web.AppKey[bool] = web.AppKey("secure_cookies", bool)
# Per-request values (aiohttp >= 3.12 has typed request keys; older versions take plain strings).
_RequestKey = getattr(web, "RequestKey", None)
SESSION: Any = _RequestKey("session", object) if _RequestKey else "crieur.session"
LOGIN_NAME: Any = _RequestKey("login_name", str) if _RequestKey else "crieur.login_name"

PUBLIC_CACHE = "public, max-age=30, must-revalidate"
SEVERITY_FR = {0: "Information", 1: "Mineure", 2: "Modérée", 3: "Sévère", 4: "Extrême"}
# Shown alerts: what was published; pending and rejected ones never leave the console.
PUBLIC_STATUSES = (AlertStatus.PUBLISHED, AlertStatus.ENDED, AlertStatus.EXPIRED)


@dataclass(frozen=True, slots=True)
class TerritoryInfo:
    code: str
    name: str
    hashtag: str
    communes: dict[str, str] = field(default_factory=dict, compare=False, hash=False)  # INSEE code -> name

    @property
    def sms_keyword(self) -> str:
        """What a citizen texts to subscribe: ROUTE41 for #route41."""
        return self.hashtag.lstrip("#").upper() or f"ROUTE{self.code}"


MAX_ID = 2**63 - 1  # the largest id a database row can have (BIGINT)
ID_PATTERN = "[0-9]{1,19}"  # route pattern; \d would also match "²" or Arabic-Indic digits


def parse_id(text: str | None) -> int | None:
    """A row id written in ASCII digits and within BIGINT range, else None (the caller answers 400/404
    rather than letting int() or the database raise a 500)."""
    if not text or len(text) > 19 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def territories(crieur: Any) -> list[TerritoryInfo]:
    """The configured territories in file order: from the rules engine when it is loaded, else from the
    territories file named by the configuration (a web-only process need not load the rules)."""
    source = getattr(getattr(crieur, "rules", None), "territories", None)
    if source is None:
        source = _territories_file(crieur)
    found: list[TerritoryInfo] = []
    if source is not None:
        for t in getattr(source, "items", source):
            code = str(t.code)
            hashtag = str(getattr(t, "hashtag", "") or f"#route{code}")
            found.append(TerritoryInfo(code, str(t.name), hashtag, dict(getattr(t, "communes", {}) or {})))
    return found


def _territories_file(crieur: Any) -> Any:
    cached = getattr(crieur, "_web_territories", None)
    if cached is not None:
        return cached
    path = getattr(crieur.config, "territories", None)
    if path is None:
        return None
    try:
        from rules.territories import load_territories

        loaded = load_territories(path)
    except Exception as exc:  # the rules package is optional for the web; say why the names are missing
        log.warning("territories file %s could not be read: %s", path, exc)
        return None
    crieur._web_territories = loaded
    return loaded


def territory(crieur: Any, code: str) -> TerritoryInfo | None:
    """A configured territory by code, or None."""
    for t in territories(crieur):
        if t.code == code:
            return t
    return None


def commune_names(alert: Alert, known: Iterable[TerritoryInfo]) -> list[str]:
    """The communes an alert names, by name when a territory lists them, else by INSEE code."""
    names = {insee: name for t in known for insee, name in t.communes.items()}
    return [names.get(a.code, a.code) for a in alert.areas if a.kind == "commune"]


def is_current(alert: Alert, now: datetime | None = None) -> bool:
    now = now or datetime.now(timezone.utc)
    return alert.status is AlertStatus.PUBLISHED and (alert.expires is None or alert.expires > now)


async def current_alerts(crieur: Any, code: str | None = None, *, exercises: str = "none") -> list[Alert]:
    """Published, unexpired alerts, most severe first, then newest. `exercises`: "none" (every public list:
    exercises are never in one), "only" (the exercise page: exercises carried by a web channel), "all"
    (the console)."""
    found = await crieur.store.alerts((AlertStatus.PUBLISHED,), territory=code, limit=200)
    now = datetime.now(timezone.utc)
    current = [a for a in found if is_current(a, now) and _kept(crieur, a, exercises)]
    current.sort(key=lambda a: (-int(a.severity), -(a.updated_at or now).timestamp()))
    return current


async def recent_alerts(
    crieur: Any, code: str | None = None, limit: int = 50, *, exercises: str = "none"
) -> list[Alert]:
    """What was published, newest first: the feeds' entries, updates and ends included (`exercises` as for
    current_alerts)."""
    found = await crieur.store.alerts(PUBLIC_STATUSES, territory=code, limit=limit)
    found = [a for a in found if _kept(crieur, a, exercises)]
    epoch = datetime.fromtimestamp(0, timezone.utc)
    found.sort(key=lambda a: (a.updated_at or epoch, a.id or 0), reverse=True)
    return found[:limit]


def _kept(crieur: Any, alert: Alert, exercises: str) -> bool:
    if exercises == "all":
        return True
    if exercises == "only":
        return alert.exercise and on_web(crieur, alert)
    return not alert.exercise


def on_web(crieur: Any, alert: Alert) -> bool:
    """Whether one of the alert's channels is a web channel (an exercise is only on the exercise page when
    `exercise.channels` names one)."""
    channels = crieur.config.channels
    return any(str(channels.get(name, {}).get("kind", "")) == "web" for name in alert.channels)


def shown_by_id(crieur: Any, alert: Alert | None) -> bool:
    """Whether /alertes/ID, its CAP and /api/v1/alerts/ID may show the alert: published, and for an exercise
    only when a web channel carried it (then marked EXERCICE, CAP status Exercise)."""
    if alert is None or alert.status not in PUBLIC_STATUSES:
        return False
    return not alert.exercise or on_web(crieur, alert)


def paris(value: datetime | float | None) -> str:
    """ "25 novembre 2026 à 17 h 40", in Europe/Paris time."""
    return "" if value is None else datetime_fr(value)


def paris_iso(value: datetime | float | None) -> str:
    if value is None:
        return ""
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), timezone.utc)
    return value.astimezone(PARIS).isoformat(timespec="seconds")


def sms_number(crieur: Any) -> str:
    """The number citizens text, as French people write it ("07 57 00 00 41"), or "" without SMS."""
    config = crieur.config
    names = [config.sms_channel] if getattr(config, "sms_channel", "") else []
    names += [n for n, o in config.channels.items() if o.get("kind") == "twilio"]
    for name in names:
        number = str(config.channels.get(name, {}).get("from", "") or "")
        if number:
            return format_phone(number)
    return ""


def format_phone(number: str) -> str:
    digits = number.replace(" ", "")
    if digits.startswith("+33") and len(digits) == 12:
        national = "0" + digits[3:]
        return " ".join(national[i : i + 2] for i in range(0, 10, 2))
    return number


def public_url(crieur: Any) -> str:
    return str(getattr(crieur.config, "public_url", "") or "").rstrip("/")


# ------------------------------------------------------------------------------------------- caching


async def change_marker(crieur: Any) -> str:
    """What makes public content change: the newest alert change, how many published alerts have lapsed
    since (an expiry changes the pages before anything rewrites the row), and the newest answer published
    as a question and answer."""
    row = await crieur.store.db.fetchrow(
        "SELECT COALESCE(MAX(updated_at), 0) AS changed, SUM(CASE WHEN status = $1 AND expires IS NOT NULL"
        " AND expires <= $2 THEN 1 ELSE 0 END) AS lapsed FROM alerts",
        AlertStatus.PUBLISHED.value,
        time.time(),
    )
    answered = await crieur.store.db.fetchval("SELECT COALESCE(MAX(id), 0) FROM group_answers WHERE published = 1")
    return f"{float(row['changed'] or 0):.6f}:{int(row['lapsed'] or 0)}:{int(answered or 0)}"


async def cached(request: web.Request, *extra: str) -> tuple[str, web.Response | None]:
    """The ETag of this request's public content and, when the client already has it, a 304 to return
    at once (nothing is rendered)."""
    crieur = request.app[CRIEUR]
    basis = "|".join((await change_marker(crieur), request.path_qs, *extra))
    etag = '"' + hashlib.sha256(basis.encode()).hexdigest()[:32] + '"'
    given = request.headers.get("If-None-Match", "")
    if given and (given.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in given.split(",")]):
        return etag, web.Response(status=304, headers={"ETag": etag, "Cache-Control": PUBLIC_CACHE})
    return etag, None


def with_cache_headers(response: web.StreamResponse, etag: str) -> web.StreamResponse:
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return response
