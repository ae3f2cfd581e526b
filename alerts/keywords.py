"""Read the keyword a citizen texts to Crieur: subscribe, unsubscribe, help, or a free question.

Matching is case- and accent-insensitive and ignores punctuation: "ROUTE41", "route 41", "Route-41.",
"#route41", "ABONNER 41 28", "INFO 41", "arrêt." and "Stop !" are all understood.

Opt-out policy (documented choice):

* A message whose *first word* is a stop word unsubscribes, whatever follows ("STOP SVP",
  "Stop, merci de ne plus m'écrire", even "stop la route est fermée"). Unsubscribing someone who did
  not mean it costs one confirmation SMS that says how to subscribe again; keeping someone who wanted out
  is a breach of their consent and, for carriers, of the STOP convention. Stop words: STOP, ARRET,
  ARRÊT, DESABONNER, DÉSABONNER, DESINSCRIRE, DÉSINSCRIRE, and the English words carriers and Twilio
  treat as opt-out: STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT.
* "stop" anywhere else in a sentence ("pourquoi personne ne dit stop aux camions ?") is a QUESTION.
* STOP always unsubscribes from every territory: a carrier-level STOP blocks the whole number anyway
  (Twilio stops delivering after it), so a partial "STOP 28" would promise something we cannot keep.

Note that Twilio's own opt-out handling matches only a message that is *exactly* one of its keywords;
our first-word rule is broader, so the application must also honour "STOP SVP", which Twilio lets through.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rules.text import fold

__all__ = [
    "CommandKind",
    "CommandError",
    "Command",
    "STOP_WORDS",
    "fold",
    "words",
    "parse_sms",
]

STOP_WORDS: frozenset[str] = frozenset(
    {
        "stop",
        "arret",
        "desabonner",
        "desabonnement",
        "desinscrire",
        "desinscription",
        # Carrier / Twilio opt-out keywords (English).
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "revoke",
        "optout",
    }
)

# "INFO 41" subscribes; "INFO" alone asks for help.
SUBSCRIBE_WORDS: frozenset[str] = frozenset(
    {"abonner", "abonnement", "abonne", "inscrire", "inscription", "info", "infos", "route", "start", "unstop"}
)
HELP_WORDS: frozenset[str] = frozenset({"aide", "help", "info", "infos", "aidez"})
# Courtesy words tolerated around a keyword without turning the message into a question.
FILLER_WORDS: frozenset[str] = frozenset(
    {"svp", "stp", "merci", "bonjour", "bonsoir", "s", "il", "vous", "te", "plait", "moi", "m", "a", "au", "aux"}
)

_TERRITORY = re.compile(r"[0-9]{1,2}|97[0-9]|0?2[ab]", re.ASCII)
_GLUED = re.compile(r"route(?P<code>[0-9]{1,2}|97[0-9]|2[ab])", re.ASCII)
_WORD = re.compile(r"[^\W_]+")


class CommandKind(str, enum.Enum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    HELP = "help"
    QUESTION = "question"


class CommandError(str, enum.Enum):
    UNKNOWN_TERRITORY = "unknown_territory"  # "ABONNER 99"
    MISSING_TERRITORY = "missing_territory"  # "ABONNER" when several territories exist


@dataclass(frozen=True, slots=True)
class Command:
    """What a citizen's SMS asks for.

    On a SUBSCRIBE with an error, nothing must be subscribed: `territories` is then empty, `unknown`
    lists the codes we did not recognise, and `alerts.replies.command_error` explains.
    """

    kind: CommandKind
    territories: tuple[str, ...] = ()
    text: str = ""
    error: CommandError | None = None
    unknown: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def words(text: str) -> list[str]:
    """The folded words of `text`, punctuation, apostrophes and spaces being separators."""
    return _WORD.findall(fold(text))


def _territory_key(code: str) -> str:
    """Compare "1", "01" and "001" as one code; "2A" and "2a" too."""
    code = fold(code).strip()
    if code.isascii() and code.isdigit():
        return str(int(code))
    return code.lstrip("0")


def parse_sms(text: str, known_territories: Collection[str]) -> Command:
    """Classify one inbound SMS. Never raises; anything not understood is a QUESTION.

    A command is a message made only of keywords, territory codes and courtesy words ("merci", "svp");
    anything longer is a question, so "route 957 fermée ?" reaches the routing, not the subscriptions.
    """
    tokens = words(text)
    if not tokens:
        return Command(CommandKind.HELP)
    if tokens[0] in STOP_WORDS:
        return Command(CommandKind.UNSUBSCRIBE)

    codes, rest = _split_territories(tokens)
    meaningful = [t for t in rest if t not in FILLER_WORDS]
    if not codes and meaningful and all(t in HELP_WORDS for t in meaningful):
        return Command(CommandKind.HELP)
    if meaningful and all(t in SUBSCRIBE_WORDS for t in meaningful):
        return _subscribe(codes, known_territories)
    return Command(CommandKind.QUESTION, text=text.strip())


def _split_territories(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Pull territory codes ("41", "route41", "2a") out of the tokens; the other tokens are returned.

    Codes are département-shaped (1-2 digits, 2A/2B, 971-976): "route 957" is a road, not a territory.
    """
    codes: list[str] = []
    rest: list[str] = []
    for token in tokens:
        glued = _GLUED.fullmatch(token)
        if glued:
            codes.append(glued["code"])
            rest.append("route")
        elif _TERRITORY.fullmatch(token):
            codes.append(token)
        else:
            rest.append(token)
    return codes, rest


def territory_command(codes: Sequence[str], known_territories: Collection[str]) -> Command:
    """A SUBSCRIBE to these territory codes as written ("041", "2a"), checked against the known ones."""
    return _subscribe(list(codes), known_territories)


def _subscribe(codes: list[str], known_territories: Collection[str]) -> Command:
    known = {_territory_key(code): code for code in known_territories}
    if not codes:
        if len(known) == 1:
            return Command(CommandKind.SUBSCRIBE, territories=tuple(known.values()))
        return Command(CommandKind.SUBSCRIBE, error=CommandError.MISSING_TERRITORY)
    chosen: list[str] = []
    unknown: list[str] = []
    for code in codes:
        key = _territory_key(code)
        if key in known:
            if known[key] not in chosen:
                chosen.append(known[key])
        elif code.upper() not in unknown:
            unknown.append(code.upper())
    if unknown:
        return Command(CommandKind.SUBSCRIBE, error=CommandError.UNKNOWN_TERRITORY, unknown=tuple(unknown))
    return Command(CommandKind.SUBSCRIBE, territories=tuple(chosen))


# "D957", "RD957", "d 957", "N10": a road a citizen subscribes to (départementales and nationales).
_ROAD = re.compile(r"r?(?P<kind>[dn])(?P<number>[0-9]{1,4}[a-z]?)", re.ASCII)
_ROAD_PREFIX = {"d": "D", "rd": "D", "n": "N", "rn": "N"}
_POLITE_WORDS = frozenset({"svp", "stp", "merci", "bonjour", "bonsoir"})


@dataclass(frozen=True, slots=True)
class PlaceRequest:
    """A subscription to places ("ROUTE41 BLOIS", "ABONNER D957", "INFO 41 VENDOME D957"): territory codes
    as written, roads ("D957") and the words of a commune name, still to be resolved (alerts.places)."""

    codes: tuple[str, ...]
    roads: tuple[str, ...]
    commune: str


def parse_place_request(text: str) -> PlaceRequest | None:
    """A subscription keyword followed by roads or a commune name; None for anything else (a territory
    subscription, STOP, a question), which `parse_sms` classifies. The caller treats a commune name it
    cannot find as a question: "ROUTE 41 fermée ?" is not a commune."""
    tokens = words(text)
    if not tokens or (tokens[0] not in SUBSCRIBE_WORDS and not _GLUED.fullmatch(tokens[0])):
        return None
    codes, rest = _split_territories(tokens)
    if rest and rest[0] in SUBSCRIBE_WORDS:
        rest = rest[1:]
    roads: list[str] = []
    name: list[str] = []
    i = 0
    while i < len(rest):
        token = rest[i]
        road = _ROAD.fullmatch(token)
        if road:
            roads.append(f"{road['kind'].upper()}{road['number'].upper()}")
        elif token in _ROAD_PREFIX and i + 1 < len(rest) and re.fullmatch(r"[0-9]{1,4}[a-z]?", rest[i + 1]):
            roads.append(f"{_ROAD_PREFIX[token]}{rest[i + 1].upper()}")
            i += 1
        elif token not in _POLITE_WORDS:
            name.append(token)
        i += 1
    if not roads and not name:
        return None
    return PlaceRequest(tuple(codes), tuple(dict.fromkeys(roads)), " ".join(name))
