"""An Item described in a YAML or JSON file, for `crieur rules test` and for tests.

source: prefecture-41
external_id: arrete-2013-01-20        # optional (defaults to the file name)
msg_type: Alert                       # Alert / Update / Cancel
title: Interdiction de circulation des poids lourds
text: ...
severity: Severe                      # Minor / Moderate / Severe / Extreme
event: neige-verglas
sent: 2013-01-20T06:00:00+01:00       # dates with their UTC offset
areas: ["departement:41", "commune:41018", "NUTS3:FRB05"]
roads: [D957, RN10]
link: https://www.loir-et-cher.gouv.fr/...
authority: Préfecture de Loir-et-Cher   # who issued it (templates say "Source : ...")
attributes: {colour: orange}
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from alerts.domain import Area, Certainty, Item, MsgType, Severity, Urgency
from alerts.errors import CrieurError

from .roads import parse_road_spec

_TEXT_FIELDS = (
    "source",
    "external_id",
    "version",
    "title",
    "text",
    "language",
    "category",
    "event",
    "link",
    "raw",
    "authority",
)
_DATE_FIELDS = ("sent", "onset", "expires")
FIELDS = (
    *_TEXT_FIELDS,
    *_DATE_FIELDS,
    "msg_type",
    "references",
    "severity",
    "urgency",
    "certainty",
    "areas",
    "roads",
    "attributes",
)


class ItemFileError(CrieurError, ValueError):
    pass


def load_item(path: str | os.PathLike[str]) -> Item:
    name = os.fspath(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ItemFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{mark.line + 1}:{mark.column + 1}: " if mark else ""
        raise ItemFileError(f"{name}:{where}YAML syntax: {exc.problem}") from None
    if not isinstance(data, dict):
        raise ItemFileError(f"{name}: expected a mapping of Item fields")
    return item_from_dict(data, name, default_id=Path(path).stem)


def item_from_dict(data: dict[str, Any], name: str = "item", default_id: str = "test") -> Item:
    def fail(field: str, message: str) -> ItemFileError:
        return ItemFileError(f"{name}: field {field}: {message}")

    unknown = sorted(set(map(str, data)) - set(FIELDS))
    if unknown:
        raise fail(unknown[0], f"unknown field (expected one of {', '.join(FIELDS)})")
    if not data.get("source"):
        raise fail("source", "required")
    values: dict[str, Any] = {"external_id": default_id}
    for field in _TEXT_FIELDS:
        if field in data and data[field] is not None:
            values[field] = str(data[field])
    for field in _DATE_FIELDS:
        if data.get(field) is not None:
            values[field] = _date(data[field], lambda m, f=field: fail(f, m))
    if "msg_type" in data:
        try:
            values["msg_type"] = MsgType(str(data["msg_type"]).capitalize())
        except ValueError:
            raise fail("msg_type", f"expected Alert, Update or Cancel, got {data['msg_type']!r}") from None
    if "severity" in data:
        severity = Severity.parse(str(data["severity"]))
        if severity is Severity.UNKNOWN and str(data["severity"]).lower() != "unknown":
            raise fail("severity", f"expected Minor, Moderate, Severe, Extreme or Unknown, got {data['severity']!r}")
        values["severity"] = severity
    if "urgency" in data:
        values["urgency"] = Urgency.parse(str(data["urgency"]))
    if "certainty" in data:
        values["certainty"] = Certainty.parse(str(data["certainty"]))
    values["references"] = tuple(str(r) for r in _list(data.get("references"), lambda m: fail("references", m)))
    areas = []
    for entry in _list(data.get("areas"), lambda m: fail("areas", m)):
        kind, sep, code = str(entry).partition(":")
        if not sep or not kind.strip() or not code.strip():
            raise fail("areas", f'expected "kind:code" like "commune:41018", got {entry!r}')
        areas.append(Area(kind.strip(), code.strip()))
    values["areas"] = tuple(areas)
    roads = []
    for entry in _list(data.get("roads"), lambda m: fail("roads", m)):
        road = parse_road_spec(str(entry))
        if road is None or isinstance(road, str):
            raise fail("roads", f"expected a road like D957 or RN10, got {entry!r}")
        roads.append(road)
    values["roads"] = tuple(roads)
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise fail("attributes", "expected a mapping")
    values["attributes"] = dict(attributes)
    return Item(**values)


def _list(value: Any, fail) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, int)):
        return [value]
    raise fail(f"expected a list, got {type(value).__name__}")


def _date(value: Any, fail) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise fail(f"expected an ISO date like 2013-01-20T06:00:00+01:00, got {value!r}") from None
    if moment.tzinfo is None:
        raise fail(f"{value!r} has no UTC offset (write +01:00 or Z)")
    return moment
