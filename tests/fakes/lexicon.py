"""AT Protocol lexicons (../shared/api-specs/bluesky/lexicons) turned into JSON Schema, so that the fake
PDS checks XRPC calls and records as a PDS does.

The conversion is small because the lexicon language is: object/params → object with required and
nullable; string → string with `maxLength`/`minLength` counted in UTF-8 bytes and `maxGraphemes`/
`minGraphemes` in grapheme clusters (two keywords added to jsonschema's Draft 2020-12 validator), `format`
(datetime, uri, at-uri, did, handle, cid, language, nsid...); integer/boolean with their bounds; array
with maxLength as maxItems; ref; union (by `$type`, closed or open); blob/unknown as objects.

`LexiconContract` checks an XRPC request (procedure or query, known NSID, input encoding, input schema)
and, for com.atproto.repo.createRecord, the record against its collection's lexicon plus what the schema
cannot say (facet byte ranges inside the text, on character boundaries). Answers are checked against
the output schema of their method.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Mapping

import grapheme
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.shared_files import shared_path

BASE = "https://lexicons.invalid/"
XRPC = "/xrpc/"

FORMATS = FormatChecker(formats=())
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_PATTERNS = {
    "uri": r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$",
    "at-uri": r"^at://[^\s/?#]+(/[a-zA-Z][a-zA-Z0-9.-]*(/[A-Za-z0-9._:~-]{1,512})?)?$",
    "did": r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$",
    "handle": r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$",
    "cid": r"^[a-zA-Z0-9+=]{8,256}$",
    "language": r"^(i|[a-z]{2,3})(-[a-zA-Z0-9]{1,8})*$",
    "nsid": r"^[a-zA-Z]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+\.[a-zA-Z][a-zA-Z0-9]{0,62}$",
    "record-key": r"^[a-zA-Z0-9_~.:-]{1,512}$",
    "tid": r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$",
}


def _pattern_check(pattern: str) -> Any:
    compiled = re.compile(pattern)
    return lambda value: not isinstance(value, str) or bool(compiled.match(value))


for _name, _pattern in _PATTERNS.items():
    FORMATS.checks(_name)(_pattern_check(_pattern))
FORMATS.checks("at-identifier")(
    lambda v: not isinstance(v, str) or bool(re.match(_PATTERNS["did"], v) or re.match(_PATTERNS["handle"], v))
)


@FORMATS.checks("datetime")
def _datetime(value: object) -> bool:
    """RFC 3339 with a time zone, as the lexicon requires (atproto refuses '-00:00' and bare local times)."""
    if not isinstance(value, str):
        return True
    if not _DATETIME.match(value) or value.endswith("-00:00"):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _bytes(validator: Any, limit: int, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if isinstance(instance, str) and len(instance.encode("utf-8")) > limit:
        yield ValidationError(f"must not be longer than {limit} bytes")


def _min_bytes(validator: Any, limit: int, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if isinstance(instance, str) and len(instance.encode("utf-8")) < limit:
        yield ValidationError(f"must not be shorter than {limit} bytes")


def _graphemes(validator: Any, limit: int, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if isinstance(instance, str) and grapheme.length(instance) > limit:
        yield ValidationError(f"must not be longer than {limit} graphemes")


def _min_graphemes(validator: Any, limit: int, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if isinstance(instance, str) and grapheme.length(instance) < limit:
        yield ValidationError(f"must not be shorter than {limit} graphemes")


LexiconValidator = validators.extend(
    Draft202012Validator,
    {
        "maxBytes": _bytes,
        "minBytes": _min_bytes,
        "maxGraphemes": _graphemes,
        "minGraphemes": _min_graphemes,
    },
)


def _uri(nsid: str, name: str = "main") -> str:
    return f"{BASE}{nsid}/{name}"


def _type_name(nsid: str, name: str) -> str:
    return nsid if name == "main" else f"{nsid}#{name}"


class Lexicons:
    """Every lexicon under a folder, converted; `validator(nsid, def)` validates against one definition."""

    def __init__(self, root: Path) -> None:
        # A cache per instance (an lru_cache on the method itself would be keyed on, and keep alive, self).
        self.validator = functools.lru_cache(maxsize=None)(self._build_validator)
        self.root = root
        self.documents: dict[str, dict[str, Any]] = {}
        for path in sorted(root.rglob("*.json")):
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("lexicon") == 1:
                self.documents[document["id"]] = document
        resources = []
        for nsid, document in self.documents.items():
            for name, definition in document["defs"].items():
                schema = self.convert(nsid, definition)
                resources.append((_uri(nsid, name), Resource(contents=schema, specification=DRAFT202012)))
                if isinstance(definition.get("parameters"), dict):
                    resources.append(
                        (
                            _uri(nsid, f"{name}.parameters"),
                            Resource(contents=self.convert(nsid, definition["parameters"]), specification=DRAFT202012),
                        )
                    )
                for part in ("input", "output"):
                    body = definition.get(part, {}).get("schema") if isinstance(definition.get(part), dict) else None
                    if body is not None:
                        resources.append(
                            (
                                _uri(nsid, f"{name}.{part}"),
                                Resource(contents=self.convert(nsid, body), specification=DRAFT202012),
                            )
                        )
        self.registry = Registry().with_resources(resources)

    def _ref(self, nsid: str, ref: str) -> str:
        target, _, name = ref.partition("#")
        return _uri(target or nsid, name or "main")

    def convert(self, nsid: str, node: Mapping[str, Any]) -> dict[str, Any]:
        kind = node.get("type")
        if kind == "record":
            return self.convert(nsid, node["record"])
        if kind in ("object", "params"):
            properties = {k: self.convert(nsid, v) for k, v in node.get("properties", {}).items()}
            for key in node.get("nullable", []):
                if key in properties:
                    properties[key] = {"anyOf": [properties[key], {"type": "null"}]}
            return {"type": "object", "required": list(node.get("required", [])), "properties": properties}
        if kind == "string":
            schema: dict[str, Any] = {"type": "string"}
            for lexicon_key, json_key in (
                ("maxLength", "maxBytes"),
                ("minLength", "minBytes"),
                ("maxGraphemes", "maxGraphemes"),
                ("minGraphemes", "minGraphemes"),
                ("format", "format"),
                ("enum", "enum"),
                ("const", "const"),
            ):
                if lexicon_key in node:
                    schema[json_key] = node[lexicon_key]
            return schema
        if kind == "integer":
            schema = {"type": "integer"}
            for key in ("minimum", "maximum", "enum", "const"):
                if key in node:
                    schema[key] = node[key]
            return schema
        if kind == "boolean":
            return {"type": "boolean", **({"const": node["const"]} if "const" in node else {})}
        if kind == "array":
            schema = {"type": "array", "items": self.convert(nsid, node.get("items", {}))}
            if "maxLength" in node:
                schema["maxItems"] = node["maxLength"]
            if "minLength" in node:
                schema["minItems"] = node["minLength"]
            return schema
        if kind == "ref":
            return {"$ref": self._ref(nsid, node["ref"])}
        if kind == "union":
            names = []
            branches = []
            for ref in node.get("refs", []):
                target, _, name = (ref if not ref.startswith("#") else f"{nsid}{ref}").partition("#")
                type_name = _type_name(target, name or "main")
                names.append(type_name)
                branches.append(
                    {
                        "if": {"properties": {"$type": {"const": type_name}}, "required": ["$type"]},
                        "then": {"$ref": self._ref(nsid, ref)},
                    }
                )
            schema = {
                "type": "object",
                "required": ["$type"],
                "properties": {"$type": {"type": "string"}},
                "allOf": branches,
            }
            if node.get("closed"):
                schema["properties"]["$type"]["enum"] = names
            return schema
        if kind in ("blob", "unknown", "cid-link", "bytes"):
            return {"type": "object"}
        if kind == "token":
            return {"type": "string"}
        return {}

    def _build_validator(self, nsid: str, name: str = "main") -> Any:
        return LexiconValidator({"$ref": _uri(nsid, name)}, registry=self.registry, format_checker=FORMATS)

    def errors(self, nsid: str, name: str, value: Any, where: str) -> list[str]:
        found = sorted(self.validator(nsid, name).iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
        return [f"{where}{''.join(f'/{p}' for p in e.absolute_path)}: {e.message[:300]}" for e in found][:5]


@functools.lru_cache(maxsize=None)
def lexicons() -> Lexicons:
    return Lexicons(shared_path("api-specs", "bluesky", "lexicons"))


def facet_range_errors(record: Mapping[str, Any]) -> list[str]:
    """What the schema cannot say: each facet's byte range lies inside the text, on character boundaries."""
    text = record.get("text")
    if not isinstance(text, str):
        return []
    raw = text.encode("utf-8")
    problems = []
    for number, facet in enumerate(record.get("facets") or []):
        index = facet.get("index") if isinstance(facet, dict) else None
        if not isinstance(index, dict):
            continue
        start, end = index.get("byteStart"), index.get("byteEnd")
        if not isinstance(start, int) or not isinstance(end, int):
            continue
        if not 0 <= start < end <= len(raw):
            problems.append(
                f"record/facets/{number}/index: bytes {start}-{end} are not inside the text ({len(raw)} bytes)"
            )
            continue
        try:
            raw[start:end].decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"record/facets/{number}/index: bytes {start}-{end} cut a character")
    return problems


class LexiconContract:
    """The fake PDS's contract: XRPC methods and records as the lexicons describe them."""

    def __init__(self) -> None:
        self.lexicons = lexicons()

    def check_request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
        form: dict[str, str],
        json_body: Any,
    ) -> tuple[Any, list[str]]:
        if not path.startswith(XRPC):
            return None, [f"{method} {path}: not an XRPC method"]
        nsid = path[len(XRPC) :]
        document = self.lexicons.documents.get(nsid)
        if document is None:
            return None, [f"{method} {path}: no lexicon for {nsid}"]
        main = document["defs"]["main"]
        expected = {"procedure": "POST", "query": "GET"}.get(main.get("type"))
        if method != expected:
            return None, [f"{nsid} is a {main.get('type')}: {expected} only, not {method}"]
        problems: list[str] = self.params_errors(nsid, main, query)
        given = main.get("input")
        if isinstance(given, dict) and given.get("schema") is not None:
            content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "").split(";")[0]
            if content_type != given.get("encoding"):
                return nsid, [f"input must be {given.get('encoding')}, not {content_type or '(none)'}"]
            if json_body is None:
                return nsid, ["input is not a JSON object"]
            problems += self.lexicons.errors(nsid, "main.input", json_body, "input")
            if nsid == "com.atproto.repo.createRecord" and isinstance(json_body, dict):
                problems += self.record_errors(json_body)
        return nsid, problems

    def params_errors(self, nsid: str, main: Mapping[str, Any], query: list[tuple[str, str]]) -> list[str]:
        """A query string read as the lexicon's params say (integers, booleans, repeated arrays), then
        validated; a parameter the method does not declare is refused."""
        declared = (main.get("parameters") or {}).get("properties", {})
        values: dict[str, Any] = {}
        problems = []
        for name, raw in query:
            spec = declared.get(name)
            if spec is None:
                problems.append(f"params/{name}: not a parameter of {nsid}")
                continue
            kind = spec.get("type")
            if kind == "array":
                values.setdefault(name, []).append(raw)
            elif kind == "integer":
                try:
                    values[name] = int(raw)
                except ValueError:
                    problems.append(f"params/{name}: {raw!r} is not an integer")
            elif kind == "boolean":
                if raw not in ("true", "false"):
                    problems.append(f"params/{name}: {raw!r} is not true or false")
                values[name] = raw == "true"
            else:
                values[name] = raw
        if declared and not problems:
            problems += self.lexicons.errors(nsid, "main.parameters", values, "params")
        return problems

    def record_errors(self, call: Mapping[str, Any]) -> list[str]:
        """A record checked against its collection's lexicon ($type must name the collection)."""
        record, collection = call.get("record"), call.get("collection")
        if not isinstance(record, dict):
            return ["record: must be an object"]
        if record.get("$type") != collection:
            return [f"record/$type: {record.get('$type')!r} is not the collection {collection!r}"]
        if collection not in self.lexicons.documents:
            return []  # unknown lexicons are stored unvalidated by a PDS
        return self.lexicons.errors(str(collection), "main", record, "record") + facet_range_errors(record)

    def check_response(self, operation: Any, status: int, content_type: str, body: bytes) -> list[str]:
        if status != 200:
            if not body:
                return []
            try:
                answer = json.loads(body)
            except ValueError:
                return [f"error {status} is not JSON"]
            if not isinstance(answer, dict) or not isinstance(answer.get("error"), str):
                return [f"error {status} has no 'error' name (XRPC errors are {{error, message}})"]
            return []
        output = self.lexicons.documents[operation]["defs"]["main"].get("output")
        if not isinstance(output, dict) or output.get("schema") is None:
            return []
        if content_type != output.get("encoding"):
            return [f"answer is {content_type}, not {output.get('encoding')}"]
        try:
            value = json.loads(body)
        except ValueError:
            return ["answer is not JSON"]
        return self.lexicons.errors(operation, "main.output", value, "output")
