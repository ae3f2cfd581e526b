"""SMS keywords: subscriptions, STOP in every spelling, help, questions, and the replies they get."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.keywords import STOP_WORDS, CommandError, CommandKind, parse_sms
from alerts.replies import (
    STOP_HINT,
    already_subscribed,
    command_error,
    help_text,
    subscribed,
    unsubscribed,
)
from rules.fitting import sms_measure

KNOWN = ("41", "28")
NAMES = {"41": "Loir-et-Cher", "28": "Eure-et-Loir"}


@pytest.mark.parametrize(
    "text, territories",
    [
        ("ROUTE41", ("41",)),
        ("route41", ("41",)),
        ("route 41", ("41",)),
        ("Route-41.", ("41",)),
        ("#route41", ("41",)),
        ("  RoUtE 41 !", ("41",)),
        ("ABONNER 41", ("41",)),
        ("abonner 41 28", ("41", "28")),
        ("ABONNER 41, 28 svp", ("41", "28")),
        ("INFO 41", ("41",)),
        ("info28", ()),  # glued only for ROUTE: a question
        ("ROUTE41 ROUTE28", ("41", "28")),
        ("Abonner route 28 merci", ("28",)),
        ("S'ABONNER 41", ("41",)),
    ],
)
def test_subscribe_spellings(text: str, territories: tuple[str, ...]) -> None:
    command = parse_sms(text, KNOWN)
    if not territories:
        assert command.kind is CommandKind.QUESTION
        return
    assert command.kind is CommandKind.SUBSCRIBE
    assert command.ok
    assert command.territories == territories


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "Stop",
        "STOP SVP",
        "stop.",
        "Stop !",
        "ARRET",
        "ARRÊT",
        "arrêt.",
        "Arrêt svp",
        "DESABONNER",
        "DÉSABONNER",
        "désabonner",
        "désinscrire",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "quit",
        "Stop, merci de ne plus m'écrire",
        "stop la route est fermée",
        "« STOP »",
        "ＳＴＯＰ",
        "ARRE\u0302T",  # full-width letters; decomposed circumflex
    ],
)
def test_stop_spellings_unsubscribe(text: str) -> None:
    assert parse_sms(text, KNOWN).kind is CommandKind.UNSUBSCRIBE


@pytest.mark.parametrize(
    "text",
    [
        "Pourquoi personne ne dit stop aux camions sur la D957 ?",
        "La route est à l'arrêt depuis 2 heures",
        "Les poids lourds sont-ils interdits ?",
        "arrête de neiger ?",  # "arrete" is not "arret"
        "stopper les camions svp",
        "route 957 fermée ?",
        "merci",
    ],
)
def test_sentences_are_questions(text: str) -> None:
    command = parse_sms(text, KNOWN)
    assert command.kind is CommandKind.QUESTION
    assert command.text == text.strip()


@pytest.mark.parametrize("text", ["AIDE", "aide", "HELP", "Info", "INFO ?", "infos", "aide svp", "", "  ", "?"])
def test_help(text: str) -> None:
    assert parse_sms(text, KNOWN).kind is CommandKind.HELP


def test_unknown_territory_is_an_error_and_subscribes_nothing() -> None:
    command = parse_sms("ABONNER 41 99", KNOWN)
    assert command.kind is CommandKind.SUBSCRIBE
    assert command.error is CommandError.UNKNOWN_TERRITORY
    assert command.unknown == ("99",)
    assert command.territories == ()
    assert command_error(command, KNOWN) == "Territoire 99 inconnu. Territoires : 41, 28."
    several = parse_sms("route 99 2a", KNOWN)
    assert command_error(several, KNOWN) == "Territoires 99, 2A inconnus. Territoires : 41, 28."


def test_subscribe_without_territory() -> None:
    assert parse_sms("ABONNER", KNOWN).error is CommandError.MISSING_TERRITORY
    assert "ROUTE41" in command_error(parse_sms("ABONNER", KNOWN), KNOWN)
    # With a single territory there is nothing to choose.
    assert parse_sms("abonner", ("41",)).territories == ("41",)


def test_corsica_and_overseas_codes() -> None:
    assert parse_sms("ROUTE2A", ("2A", "2B")).territories == ("2A",)
    assert parse_sms("abonner 974", ("974",)).territories == ("974",)


# ------------------------------------------------------------------------------------------ fuzz

_ACCENTS = {"e": "eéèêë", "a": "aàâ", "i": "iîï", "o": "oô", "u": "uùû"}
_STOP_SPELLINGS = sorted(STOP_WORDS | {"arrêt", "désabonner", "désinscrire"})
_PUNCT = " \t\n.,;:!?¡¿-'\"«»()[]*#…’"


@st.composite
def stop_messages(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(_STOP_SPELLINGS))
    letters = []
    for char in word:
        base = unicodedata.normalize("NFD", char)[0]
        if base in _ACCENTS and draw(st.booleans()):
            char = draw(st.sampled_from(_ACCENTS[base]))
        letters.append(char.upper() if draw(st.booleans()) else char)
    spelled = "".join(letters)
    if draw(st.booleans()):
        spelled = unicodedata.normalize("NFD", spelled)
    lead = draw(st.text(alphabet=_PUNCT, max_size=3))
    separator = draw(st.text(alphabet=_PUNCT, min_size=1, max_size=3))
    tail = draw(st.text(max_size=60))
    return lead + spelled + (separator + tail if draw(st.booleans()) else "")


@settings(max_examples=300, deadline=None)
@given(stop_messages())
def test_first_word_stop_always_unsubscribes(text: str) -> None:
    assert parse_sms(text, KNOWN).kind is CommandKind.UNSUBSCRIBE


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.lists(st.text(max_size=4), max_size=4))
def test_parse_never_raises(text: str, territories: list[str]) -> None:
    command = parse_sms(text, territories)
    assert command.kind in CommandKind
    if command.kind is CommandKind.SUBSCRIBE and command.ok:
        assert set(command.territories) <= set(territories)


# ---------------------------------------------------------------------------------------- replies


def test_subscription_replies_say_how_to_stop() -> None:
    for text in (subscribed(["41"], NAMES), already_subscribed(["41", "28"], NAMES)):
        assert text.endswith(STOP_HINT)
        assert "41 Loir-et-Cher" in text
    assert "ROUTE41" in unsubscribed("41")


@pytest.mark.parametrize(
    "text",
    [
        subscribed(["41", "28"], NAMES),
        already_subscribed(["41", "28"], NAMES),
        unsubscribed("41"),
        help_text(["41", "28"], NAMES),
        command_error(parse_sms("ABONNER 99 12", KNOWN), KNOWN),
        command_error(parse_sms("ABONNER", KNOWN), KNOWN),
    ],
)
def test_command_replies_fit_one_gsm7_segment(text: str) -> None:
    measured = sms_measure(text)
    assert measured.encoding == "GSM-7", text
    assert measured.segments == 1, (measured, text)


def test_names_from_outside_are_rendered_in_gsm7() -> None:
    text = subscribed(["2A"], {"2A": "Corse-du-Sud « Aiacciu » – côte"})
    assert sms_measure(text).encoding == "GSM-7"
    assert "cote" in text
