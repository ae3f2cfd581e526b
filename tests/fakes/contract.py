"""Requests and answers of the fakes checked against what the providers publish (../shared/api-specs).

`OpenAPIContract` reads an OpenAPI 3.0/3.1 description in place and checks one request: the operation
exists (method and path), required path/query/header parameters are present and match their schemas,
the body has a described content type and matches its schema (form bodies are coerced by schema type
first, as servers do). It also checks an answer against the schema of its status. Schemas are validated
with openapi-schema-validator (jsonschema with OpenAPI's dialects), $refs resolved inside the description.

Known gaps of the published descriptions are handled here, in one place, and said:
  * Mastodon's community description types the Idempotency-Key header as an object: header and query
    values are strings on the wire, so an "object" or "array" parameter schema is read as "string".
  * Answers under `default` (X's error problems) are not checked: X's own errors ("about:blank" problems)
    do not match its description; only explicitly described statuses are.
  * Mastodon's status body is a `oneOf` text / media / poll status, but a status with text and pictures
    (what the server accepts) matches both the text and the media branch: a request body's top-level
    `oneOf` is read as `anyOf` (the body is accepted when one branch at least accepts it).
"""

from __future__ import annotations

import email.utils
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import quote

from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator, OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

from tests.shared_files import shared_path

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)

FORMATS = FormatChecker(formats=())


@FORMATS.checks("phone-number")
def _phone(value: object) -> bool:
    return not isinstance(value, str) or bool(E164.match(value)) or value.startswith(("whatsapp:", "messenger:"))


@FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(RFC3339.match(value))


@FORMATS.checks("date-time-rfc-2822")
def _date_time_rfc_2822(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return email.utils.parsedate_to_datetime(value) is not None
    except (TypeError, ValueError):
        return False


@dataclass(slots=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    pointer: str  # JSON pointer of the operation object in the description
    operation: dict[str, Any]
    parameters: list[dict[str, Any]] = field(default_factory=list)
    owner: "OpenAPIContract | None" = None


class OpenAPIContract:
    def __init__(self, path: Path, *, prefix: str = "") -> None:
        # Caches per contract (an lru_cache on the methods themselves would be keyed on, and keep alive, self).
        self._schema = functools.lru_cache(maxsize=None)(self._build_schema)
        self._validator = functools.lru_cache(maxsize=None)(self._build_validator)
        self._value_errors = functools.lru_cache(maxsize=4096)(self._find_value_errors)
        self._property_errors = functools.lru_cache(maxsize=65536)(self._find_property_errors)
        self.path = path
        self.spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        version = str(self.spec.get("openapi", ""))
        self.uri = f"urn:crieur-spec:{path.parent.name}/{path.name}"
        dialect = DRAFT202012 if version.startswith("3.1") else DRAFT4
        self._validator_class = OAS31Validator if version.startswith("3.1") else OAS30Validator
        self._registry = Registry().with_resource(self.uri, Resource(contents=self.spec, specification=dialect))
        self.operations: list[Operation] = []
        for template, item in self.spec.get("paths", {}).items():
            shared = [self._deref(p) for p in item.get("parameters", [])]
            for method, operation in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                own = [self._deref(p) for p in operation.get("parameters", [])]
                names = {(p["name"], p["in"]) for p in own}
                parameters = own + [p for p in shared if (p["name"], p["in"]) not in names]
                regex = "".join(
                    "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", template)
                )
                self.operations.append(
                    Operation(
                        method.upper(),
                        template,
                        re.compile(f"^{re.escape(prefix)}{regex}$"),
                        "/paths/" + _escape(template) + "/" + method,
                        operation,
                        parameters,
                        self,
                    )
                )
        # literal paths first, so "/api/v1/statuses/{id}" never shadows a literal sibling
        self.operations.sort(key=lambda op: op.template.count("{"))

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"].lstrip("#/").split("/"):
                key = part.replace("~1", "/").replace("~0", "~")
                target = target[int(key)] if isinstance(target, list) else target[key]
            node = target
        return node

    def _build_schema(self, pointer: str) -> Any:
        return self._inline(self._deref({"$ref": "#" + pointer}), (pointer,))

    def _build_validator(self, pointer: str, key: str | None = None) -> Any:
        schema = self._schema(pointer)
        if key is not None:
            schema = schema["properties"][key]
        return self._validator_class(schema, registry=self._registry, format_checker=FORMATS)

    def _find_value_errors(self, pointer: str, kind: str, value: Any) -> tuple[str, ...]:
        """A scalar's errors (path and query parameters), remembered by value."""
        found = self._validator(pointer).iter_errors(value)
        return tuple(f": {e.message[:300]}" for e in found)[:5]

    def _find_property_errors(self, pointer: str, key: str, kind: str, frozen: Any) -> tuple[str, ...]:
        """A property's errors, remembered by value: most properties of a fake's traffic repeat (sender,
        body, account, status), so a 20,000-SMS fan-out validates each distinct value once. `frozen` is
        the value itself for a scalar (`kind` its type, so True and 1 differ), else its JSON."""
        found = self._validator(pointer, key).iter_errors(json.loads(frozen) if kind == "json" else frozen)
        return tuple(
            f"/{key}{''.join(f'/{p}' for p in e.absolute_path)}: {e.message[:300]}"
            for e in sorted(found, key=lambda e: list(map(str, e.absolute_path)))
        )

    def _inline(self, node: Any, stack: tuple[str, ...]) -> Any:
        """The schema with its $refs replaced by what they point to (once, when the validator is built:
        following references at every validation costs more than the validation). A reference back into
        a schema being inlined (Mastodon's Status.reblog is a Status) stays a reference."""
        if isinstance(node, list):
            return [self._inline(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].startswith("#/"):
            pointer = node["$ref"][1:]
            if pointer in stack:
                return {"$ref": f"{self.uri}#{quote(pointer)}"}
            target = self._inline(self._deref({"$ref": node["$ref"]}), (*stack, pointer))
            siblings = {k: self._inline(v, stack) for k, v in node.items() if k != "$ref"}
            if not siblings or self._validator_class is OAS30Validator:  # 3.0 ignores a $ref's siblings
                return target
            return {"allOf": [target, siblings]}
        return {key: self._inline(value, stack) for key, value in node.items()}

    def _errors(self, pointer: str, value: Any, where: str) -> list[str]:
        schema = self._schema(pointer)
        if isinstance(value, dict) and _plain_object(schema):
            # the same verdict as validating the whole object, property by property (see _property_errors)
            problems = [
                f"{where}: {key!r} is a required property" for key in schema.get("required", []) if key not in value
            ]
            for key, item in value.items():
                if key in schema["properties"]:
                    if isinstance(item, (dict, list)):
                        kind, frozen = "json", json.dumps(item, sort_keys=True, ensure_ascii=False)
                    else:
                        kind, frozen = type(item).__name__, item
                    problems += [where + problem for problem in self._property_errors(pointer, key, kind, frozen)]
            return problems[:5]
        if not isinstance(value, (dict, list)):
            return [where + problem for problem in self._value_errors(pointer, type(value).__name__, value)]
        validator = self._validator(pointer)
        return [
            f"{where}{''.join(f'/{p}' for p in error.absolute_path)}: {error.message[:300]}"
            for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
        ][:5]

    def find(self, method: str, path: str) -> Operation | None:
        for operation in self.operations:
            if operation.method == method and operation.pattern.match(path):
                return operation
        return None

    def check_request(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
        form: Mapping[str, str],
        json_body: Any,
    ) -> tuple[Operation | None, list[str]]:
        operation = self.find(method, path)
        if operation is None:
            return None, [f"{method} {path}: no such operation in {self.path.name}"]
        problems: list[str] = []
        query_values: dict[str, list[str]] = {}
        for key, value in query:
            query_values.setdefault(key, []).append(value)
        lowered = {k.lower(): v for k, v in headers.items()}
        segments = _path_values(operation, path)
        for parameter in operation.parameters:
            name, where = parameter["name"], parameter["in"]
            schema = self._deref(parameter.get("schema") or {})
            if where == "query":
                values = query_values.get(name) or query_values.get(f"{name}[]")  # Rails' "types[]=..."
                raw: Any = values if values and schema.get("type") == "array" else (values or [None])[0]
            elif where == "header":
                raw = lowered.get(name.lower())
            elif where == "path":
                raw = segments.get(name)
            else:
                continue
            if raw is None:
                if parameter.get("required"):
                    problems.append(f"{where} parameter {name!r} is required")
                continue
            if schema.get("type") in ("object", "array") and not isinstance(raw, list):
                schema = {"type": "string"}  # see the module docstring
                problems += self._schema_errors(schema, raw, f"{where} {name}")
                continue
            coerced = _coerce(raw, schema, self._deref)
            problems += self._errors(self._parameter_pointer(operation, parameter), coerced, f"{where} {name}")
        problems += self._check_body(operation, lowered.get("content-type", ""), body, form, json_body)
        return operation, problems

    def _parameter_pointer(self, operation: Operation, parameter: dict[str, Any]) -> str:
        own = operation.operation.get("parameters", [])
        for position, candidate in enumerate(own):
            if self._deref(candidate) is parameter:
                return f"{operation.pointer}/parameters/{position}/schema"
        item_pointer = operation.pointer.rsplit("/", 1)[0]
        item = self._deref({"$ref": "#" + item_pointer})
        for position, candidate in enumerate(item.get("parameters", [])):
            if self._deref(candidate) is parameter:
                return f"{item_pointer}/parameters/{position}/schema"
        raise LookupError(parameter["name"])

    def _schema_errors(self, schema: dict[str, Any], value: Any, where: str) -> list[str]:
        validator = self._validator_class(schema, format_checker=FORMATS)
        return [f"{where}: {e.message[:300]}" for e in validator.iter_errors(value)][:5]

    def _check_body(
        self, operation: Operation, content_type: str, body: bytes, form: Mapping[str, str], json_body: Any
    ) -> list[str]:
        request_body = operation.operation.get("requestBody")
        if request_body is None:
            return []
        request_body = self._deref(request_body)
        media = content_type.split(";")[0].strip().lower()
        if not body:
            return ["request body is required"] if request_body.get("required") else []
        content = request_body.get("content", {})
        if media not in content:
            return [f"request body of type {media or '(none)'} is not one of {', '.join(content)}"]
        pointer = f"{operation.pointer}/requestBody/content/{_escape(media)}/schema"
        schema = self._deref(content[media].get("schema") or {})
        if media == "application/x-www-form-urlencoded":
            value: Any = {
                k: _coerce(v, self._deref((schema.get("properties") or {}).get(k, {})), self._deref)
                for k, v in form.items()
            }
        elif media.endswith("json"):
            if json_body is None:
                return ["request body is not valid JSON"]
            value = json_body
        else:
            return []
        if "$ref" in (operation.operation["requestBody"]):
            pointer = operation.operation["requestBody"]["$ref"].lstrip("#") + f"/content/{_escape(media)}/schema"
        if isinstance(schema.get("oneOf"), list):  # read as anyOf: see the module docstring
            branches = [self._errors(f"{pointer}/oneOf/{i}", value, "body") for i in range(len(schema["oneOf"]))]
            return [] if any(not errors for errors in branches) else min(branches, key=len)
        return self._errors(pointer, value, "body")

    def check_response(self, operation: Operation, status: int, content_type: str, body: bytes) -> list[str]:
        responses = operation.operation.get("responses", {})
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
        if key not in responses:
            return []  # undescribed status (or only `default`): see the module docstring
        response = self._deref(responses[key])
        content = response.get("content") or {}
        media = content_type.split(";")[0].strip().lower()
        if not content:
            return []
        if media not in content:
            return [f"answer {status} of type {media or '(none)'} is not one of {', '.join(content)}"]
        if not media.endswith("json"):
            return []
        try:
            value = json.loads(body) if body else None
        except ValueError:
            return [f"answer {status} is not valid JSON"]
        base = f"{operation.pointer}/responses/{key}"
        if "$ref" in responses[key]:
            base = responses[key]["$ref"].lstrip("#")
        return self._errors(f"{base}/content/{_escape(media)}/schema", value, f"answer {status}")


@functools.lru_cache(maxsize=None)
def openapi(*parts: str) -> OpenAPIContract:
    """The description ../shared/api-specs/<parts>, read once per process."""
    return OpenAPIContract(shared_path("api-specs", *parts))


class Contracts:
    """Several descriptions served by one fake (Twilio's 2010-04-01 API and Messaging v1)."""

    def __init__(self, *contracts: OpenAPIContract) -> None:
        self.contracts = contracts

    def check_request(self, method: str, path: str, *rest: Any) -> tuple[Operation | None, list[str]]:
        for contract in self.contracts:
            if contract.find(method, path) is not None:
                return contract.check_request(method, path, *rest)
        names = ", ".join(c.path.name for c in self.contracts)
        return None, [f"{method} {path}: no such operation in {names}"]

    def check_response(self, operation: Operation, status: int, content_type: str, body: bytes) -> list[str]:
        assert operation.owner is not None
        return operation.owner.check_response(operation, status, content_type, body)


_PLAIN_OBJECT_KEYS = {"type", "title", "description", "properties", "required", "example", "examples"}


def _plain_object(schema: Any) -> bool:
    """An object schema whose verdict is the sum of its properties' (no combinators, no extra rules)."""
    return (
        isinstance(schema, dict)
        and schema.get("type") in ("object", None)
        and "properties" in schema
        and all(key in _PLAIN_OBJECT_KEYS or key.startswith("x-") for key in schema)
    )


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _path_values(operation: Operation, path: str) -> dict[str, str]:
    names = re.findall(r"\{([^}]+)\}", operation.template)
    if not names:
        return {}
    regex = "".join(
        "([^/]+)" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", operation.template)
    )
    match = re.search(f"{regex}$", path)
    return dict(zip(names, match.groups(), strict=True)) if match else {}


def _coerce(raw: Any, schema: dict[str, Any], deref: Any) -> Any:
    """A string from a query, header or form, converted to the schema's type as a server would."""
    if isinstance(raw, list):
        items = deref(schema.get("items") or {})
        return [_coerce(v, items, deref) for v in raw]
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    try:
        if "integer" in kinds and re.fullmatch(r"[+-]?\d+", raw):
            return int(raw)
        if "number" in kinds:
            return float(raw)
        if "boolean" in kinds and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
    except (TypeError, ValueError):
        return raw
    return raw
