"""Météo-France vigilance by département (the public API's "cartevigilance" JSON).

Accepted shapes, per département ("domain"):
  product.periods[].timelaps.domain_ids[] = {domain_id, max_color_id,
      phenomenon_items: [{phenomenon_id, phenomenon_max_color_id, timelaps_items: [...]}]}
and the flatter  {"domain_ids" | "domains": [{domain_id, phenomenon_items: [{phenomenon_id, color_id}]}]},
and the app API's single-département "warning/full" {domain_id, update_time, end_validity_time,
phenomenons_items: [...], comments} whose dates are epoch seconds and phenomenon_id an integer.
Only the period whose echeance is options["echeance"] (default "J", today) is read when periods exist.

One Item per département x phenomenon: yellow/orange/red are alerts, green is a CANCEL of the same
external_id so an episode ends. options: departements (keep only these), departement (for a document
that has no domain ids: a single-département file).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from ..domain import Area, Certainty, Item, MsgType, Severity
from .common import departement_area, load_json, origin, parse_datetime
from .errors import ParseError, RecordError, skip_record

PHENOMENA = {
    1: "vent",
    2: "pluie-inondation",
    3: "orages",
    4: "crues",
    5: "neige-verglas",
    6: "canicule",
    7: "grand-froid",
    8: "avalanches",
    9: "vagues-submersion",
}
COLOURS = {1: "vert", 2: "jaune", 3: "orange", 4: "rouge"}
ATTRIBUTES = ("colour", "colour_id", "phenomenon", "phenomenon_id", "domain_id")  # what rules may test
SEVERITIES = {1: Severity.MINOR, 2: Severity.MODERATE, 3: Severity.SEVERE, 4: Severity.EXTREME}


def _int(value: Any, field: str) -> int:
    if value is None:
        raise RecordError(f"field {field!r} is missing")
    if isinstance(value, bool):
        raise RecordError(f"field {field!r}: not a number: {value!r}")
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise RecordError(f"field {field!r}: not a number: {str(value)[:30]!r}") from None


def _date(value: Any, field: str) -> datetime | None:
    """ISO 8601 text, or epoch seconds (the Météo-France app API writes 1635656400, as a number or text)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"field {field!r}: not a date: {value!r}")
    if isinstance(value, (int, float)) or (
        isinstance(value, str) and value.strip().isdigit() and len(value.strip()) >= 9
    ):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise RecordError(f"field {field!r}: epoch seconds out of range: {str(value)[:30]!r}") from None
    try:
        return parse_datetime(str(value))
    except ValueError as exc:
        raise RecordError(f"field {field!r}: {exc}") from None


def _domain_area(domain_id: str) -> Area | None:
    """ "41" -> département 41; "2910" (coastal domain of Finistère) -> département 29."""
    area = departement_area(domain_id)
    if area is None and len(domain_id) == 4 and domain_id.endswith("10"):
        area = departement_area(domain_id[:2])
    return area


def parse(spec: Any, body: bytes, content_type: str = "") -> list[Item]:
    doc = load_json(spec, body)
    if not isinstance(doc, dict):
        raise ParseError("expected a JSON object", source=spec.name)
    product: dict[str, Any] = doc["product"] if isinstance(doc.get("product"), dict) else doc
    update_time = product.get("update_time") or doc.get("update_time") or ""
    try:
        updated = _date(update_time, "update_time")
    except RecordError as exc:
        raise ParseError(str(exc), source=spec.name, field="update_time") from None
    period, domains = _domains(spec, product)
    validity = period if period is not None else product  # a single-département document states it at its top
    try:
        onset = _date(validity.get("begin_validity_time"), "begin_validity_time")
        expires = _date(validity.get("end_validity_time"), "end_validity_time")
    except RecordError as exc:
        raise ParseError(str(exc), source=spec.name, field="periods" if period is not None else "") from None
    comment = _comment(product)
    wanted = {str(d).zfill(2) if str(d).isdigit() else str(d).upper() for d in spec.options.get("departements") or ()}
    default_dep = str(spec.options.get("departement") or "")
    items: list[Item] = []
    for index, domain in enumerate(domains, start=1):
        try:
            if not isinstance(domain, dict):
                raise RecordError("not an object")
            domain_id = str(domain.get("domain_id") or default_dep).strip().upper()
            area = _domain_area(domain_id)
            if area is None:
                continue  # national ("FRA"), Andorra, sea areas: not a département
            if wanted and area.code not in wanted:
                continue
            phenomena = (
                domain.get("phenomenon_items") or domain.get("phenomenons_items") or domain.get("phenomenons") or []
            )
            if not isinstance(phenomena, list):
                raise RecordError("field 'phenomenon_items' is not a list")
            for phenomenon in phenomena:
                items.append(
                    _item(spec, domain_id, area, phenomenon, str(update_time), updated, onset, expires, comment)
                )
        except RecordError as exc:
            skip_record(spec.name, f"domain {index}", exc)
    return items


def _domains(spec: Any, product: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Any]]:
    periods = product.get("periods")
    if periods is not None:
        if not isinstance(periods, list):
            raise ParseError("field 'periods' is not a list", source=spec.name, field="periods")
        echeance = str(spec.options.get("echeance") or "J")
        period = next((p for p in periods if isinstance(p, dict) and p.get("echeance") == echeance), None)
        if period is None:
            raise ParseError(f"no period with echeance {echeance!r}", source=spec.name, field="periods")
        timelaps = period.get("timelaps")
        domains = timelaps.get("domain_ids") if isinstance(timelaps, dict) else None
        if not isinstance(domains, list):
            raise ParseError("period without timelaps.domain_ids", source=spec.name, field="timelaps")
        return period, domains
    domains = product.get("domain_ids", product.get("domains"))
    if domains is None and ("phenomenon_items" in product or "phenomenons_items" in product):
        domains = [product]  # a single-département document
    if not isinstance(domains, list):
        raise ParseError("no periods, domain_ids nor domains: not a vigilance document", source=spec.name)
    return None, domains


def _comment(product: dict[str, Any]) -> str:
    """The forecaster's French comment ("comments.text_bloc_item[].text"), when the document has one."""
    comments = product.get("comments")
    blocks = comments.get("text_bloc_item") if isinstance(comments, dict) else None
    lines: list[str] = []
    for block in blocks if isinstance(blocks, list) else []:
        texts = block.get("text") if isinstance(block, dict) else None
        if isinstance(texts, str):
            texts = [texts]
        lines.extend(str(t).strip() for t in texts or [] if str(t).strip())
    return "\n".join(lines)


def _item(
    spec: Any,
    domain_id: str,
    area: Area,
    phenomenon: Any,
    update_time: str,
    updated: datetime | None,
    onset: datetime | None,
    expires: datetime | None,
    comment: str = "",
) -> Item:
    if not isinstance(phenomenon, dict):
        raise RecordError("phenomenon is not an object")
    pid = _int(phenomenon.get("phenomenon_id"), "phenomenon_id")
    if pid not in PHENOMENA:
        raise RecordError(f"field 'phenomenon_id': unknown phenomenon {pid}")
    colour_value = next(
        (phenomenon[k] for k in ("phenomenon_max_color_id", "color_id", "colour_id", "colour") if k in phenomenon), None
    )
    colour_id = _int(colour_value, "phenomenon_max_color_id")
    if colour_id not in COLOURS:
        raise RecordError(f"field 'phenomenon_max_color_id': unknown colour {colour_id}")
    name, colour = PHENOMENA[pid], COLOURS[colour_id]
    green = colour_id == 1
    title = f"Fin de vigilance {name} ({area.code})" if green else f"Vigilance {colour} {name} ({area.code})"
    return Item(
        source=spec.name,
        external_id=f"vigilance:{domain_id}:{pid}",
        version=f"{update_time}:{colour_id}" if update_time else str(colour_id),
        msg_type=MsgType.CANCEL if green else MsgType.ALERT,
        sent=updated,
        onset=onset,
        expires=expires,
        title=title,
        text=comment,
        category="Met",
        event=name,
        severity=SEVERITIES[colour_id],
        certainty=Certainty.LIKELY,
        areas=(area,),
        raw=json.dumps(phenomenon, ensure_ascii=False),
        authority=origin(spec, "", "Météo-France"),
        attributes={
            "colour": colour,
            "colour_id": colour_id,
            "phenomenon": name,
            "phenomenon_id": pid,
            "domain_id": domain_id,
        },
    )
