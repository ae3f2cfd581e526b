"""Domain objects to and from the JSON kept in the database (and shown by the JSON API)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from alerts.domain import (
    Alert,
    AlertStatus,
    Area,
    Certainty,
    Item,
    MsgType,
    Road,
    Severity,
    Urgency,
)


def to_epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def from_epoch(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def item_to_dict(item: Item) -> dict[str, Any]:
    """Everything but `raw`, which is stored apart (item_versions). `authority` only when known, so that
    items stored before it existed keep their digest (an unchanged item must not look updated)."""
    data: dict[str, Any] = {
        "source": item.source,
        "external_id": item.external_id,
        "version": item.version,
        "msg_type": item.msg_type.value,
        "references": list(item.references),
        "sent": _iso(item.sent),
        "onset": _iso(item.onset),
        "expires": _iso(item.expires),
        "title": item.title,
        "text": item.text,
        "language": item.language,
        "category": item.category,
        "event": item.event,
        "severity": item.severity.cap,
        "urgency": item.urgency.value,
        "certainty": item.certainty.value,
        "areas": [[a.kind, a.code] for a in item.areas],
        "roads": [[r.kind, r.number] for r in item.roads],
        "geometry": item.geometry,
        "link": item.link,
        "attributes": item.attributes,
    }
    if item.authority:
        data["authority"] = item.authority
    return data


def item_from_dict(data: dict[str, Any], raw: str = "") -> Item:
    return Item(
        source=data["source"],
        external_id=data["external_id"],
        version=data.get("version", ""),
        msg_type=MsgType(data.get("msg_type", "Alert")),
        references=tuple(data.get("references", ())),
        sent=_dt(data.get("sent")),
        onset=_dt(data.get("onset")),
        expires=_dt(data.get("expires")),
        title=data.get("title", ""),
        text=data.get("text", ""),
        language=data.get("language", "fr"),
        category=data.get("category", ""),
        event=data.get("event", ""),
        severity=Severity.parse(data.get("severity")),
        urgency=Urgency.parse(data.get("urgency")),
        certainty=Certainty.parse(data.get("certainty")),
        areas=tuple(Area(k, c) for k, c in data.get("areas", ())),
        roads=tuple(Road(k, n) for k, n in data.get("roads", ())),
        geometry=data.get("geometry"),
        link=data.get("link", ""),
        raw=raw,
        authority=data.get("authority", ""),
        attributes=dict(data.get("attributes") or {}),
    )


def item_json(item: Item) -> str:
    """The stored form of an item (canonical: sorted keys, so equal items give equal text)."""
    return json.dumps(item_to_dict(item), sort_keys=True, ensure_ascii=False, default=str)


def digest_of(item_text: str) -> str:
    """What decides whether a re-published item changed: its normalised content, not the raw bytes
    (feeds re-serialise the same entry with new whitespace or generation dates)."""
    return hashlib.sha256(item_text.encode("utf-8")).hexdigest()


def alert_row(alert: Alert, now: float) -> dict[str, Any]:
    return {
        "status": alert.status.value,
        "msg_type": alert.msg_type.value,
        "title": alert.title,
        "text": alert.text,
        "territories": json.dumps(list(alert.territories)),
        "hashtags": json.dumps(list(alert.hashtags)),
        "channels": json.dumps(list(alert.channels)),
        "severity": int(alert.severity),
        "rule": alert.rule,
        "item_key": alert.item_key,
        "link": alert.link,
        "data": json.dumps(
            {
                "roads": [[r.kind, r.number] for r in alert.roads],
                "areas": [[a.kind, a.code] for a in alert.areas],
                **({"geometry": alert.geometry} if alert.geometry else {}),
                "templates": alert.templates,
                "signature": alert.signature,
                "sms_gsm7": alert.sms_gsm7,
                **({"authority": alert.authority} if alert.authority else {}),
                **({"exercise": True} if alert.exercise else {}),
                **({"publish_at": _iso(alert.publish_at)} if alert.publish_at else {}),
                **({"end_at": _iso(alert.end_at)} if alert.end_at else {}),
            },
            ensure_ascii=False,
        ),
        "expires": to_epoch(alert.expires),
        "supersedes": alert.supersedes,
        "created_at": to_epoch(alert.created_at) or now,
        "updated_at": now,
    }


def alert_from_row(row: dict[str, Any]) -> Alert:
    data = json.loads(row.get("data") or "{}")
    return Alert(
        id=row["id"],
        title=row["title"],
        text=row["text"],
        territories=tuple(json.loads(row["territories"])),
        hashtags=tuple(json.loads(row["hashtags"])),
        channels=tuple(json.loads(row["channels"])),
        severity=Severity(row["severity"]),
        status=AlertStatus(row["status"]),
        msg_type=MsgType(row["msg_type"]),
        rule=row["rule"],
        item_key=row["item_key"],
        link=row["link"],
        roads=tuple(Road(k, n) for k, n in data.get("roads", ())),
        areas=tuple(Area(k, c) for k, c in data.get("areas", ())),
        geometry=data.get("geometry"),
        templates=dict(data.get("templates", {})),
        signature=data.get("signature", ""),
        sms_gsm7=bool(data.get("sms_gsm7", False)),
        authority=str(data.get("authority", "")),
        exercise=bool(data.get("exercise", False)),
        publish_at=_dt(data.get("publish_at")),
        end_at=_dt(data.get("end_at")),
        expires=from_epoch(row["expires"]),
        supersedes=row["supersedes"],
        created_at=from_epoch(row["created_at"]),
        updated_at=from_epoch(row["updated_at"]),
    )


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """The public JSON shape of an alert (API, webhooks)."""
    return {
        "id": alert.id,
        "status": alert.status.value,
        "msg_type": alert.msg_type.value,
        "title": alert.title,
        "text": alert.text,
        "territories": list(alert.territories),
        "hashtags": list(alert.hashtags),
        "severity": alert.severity.cap,
        "roads": [r.label for r in alert.roads],
        "authority": alert.authority,  # who issued what is relayed; "" = the département's own message
        "link": alert.link,
        "expires": _iso(alert.expires),
        "supersedes": alert.supersedes,
        "created_at": _iso(alert.created_at),
        "updated_at": _iso(alert.updated_at),
        "exercise": alert.exercise,  # an exercise (alerts.exercise): never a real situation
    }
