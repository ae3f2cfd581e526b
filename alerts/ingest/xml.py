"""Safe, namespace-agnostic XML reading for the XML formats (RSS raw extracts, CAP, DATEX II).

defusedxml refuses DTDs outright: no entity expansion (billion laughs), no external entities (XXE),
no network or file access while parsing. None of the formats we read needs a DTD.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import defusedxml
import defusedxml.ElementTree as DET

from .errors import ParseError

XSI = "http://www.w3.org/2001/XMLSchema-instance"
_LINE = re.compile(r"line (\d+)")


def parse_xml(body: bytes, source: str, *, what: str = "XML") -> ET.Element:
    """The root element of `body`, or ParseError naming the source and the line of the fault."""
    if not body.strip():
        raise ParseError(f"empty document, expected {what}", source=source)
    try:
        return DET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise ParseError(
            f"refused hostile {what}: {type(exc).__name__} (DTDs and entities are not accepted)", source=source
        ) from None
    except ET.ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        raise ParseError(
            f"malformed {what}: {exc.msg if hasattr(exc, 'msg') else exc}", source=source, line=line
        ) from None
    except (ValueError, LookupError) as exc:  # unknown or inconsistent encoding declaration
        raise ParseError(f"unreadable {what}: {exc}", source=source) from None


def local(tag: object) -> str:
    """ "{urn:oasis:...}alert" -> "alert". Comments and processing instructions have no name."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    """Direct children called `name`, whatever their namespace."""
    return (child for child in element if local(child.tag) == name)


def child(element: ET.Element | None, *path: str) -> ET.Element | None:
    """The first element down `path` of local names, or None."""
    current = element
    for name in path:
        if current is None:
            return None
        current = next(children(current, name), None)
    return current


def text(element: ET.Element | None, *path: str) -> str:
    """Stripped text down `path`, "" when absent."""
    found = child(element, *path) if path else element
    if found is None or found.text is None:
        return ""
    return found.text.strip()


def descendants(element: ET.Element, name: str) -> Iterator[ET.Element]:
    """Every element below (and including) `element` called `name`, document order."""
    return (node for node in element.iter() if local(node.tag) == name)


def first_text(element: ET.Element, *names: str) -> str:
    """Text of the first descendant named one of `names` (tried in order) that has text."""
    for name in names:
        for node in descendants(element, name):
            if node.text and node.text.strip():
                return node.text.strip()
    return ""


def xsi_type(element: ET.Element) -> str:
    """xsi:type without its prefix ("sit:WeatherRelatedRoadConditions" -> "WeatherRelatedRoadConditions")."""
    value = element.get(f"{{{XSI}}}type", "")
    return value.rsplit(":", 1)[-1].strip()


def serialise(element: ET.Element) -> str:
    """The element as XML text, for Item.raw."""
    return ET.tostring(element, encoding="unicode")
