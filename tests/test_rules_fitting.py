"""Per-channel counting, SMS encodings and segments, Bluesky facets, templates and shortening."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from alerts.domain import Alert, MsgType, Road, Severity
from channels.base import Limits
from rules.fitting import (
    FittingError,
    bluesky_facets,
    grapheme_length,
    is_gsm7,
    mastodon_length,
    sms_measure,
    to_gsm7,
    x_length,
)
from rules.templates import TemplateRenderError, Templates

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "loir-et-cher"
X = Limits(counting="x", max_length=280)
MASTODON = Limits(counting="chars", max_length=500)
BLUESKY = Limits(counting="graphemes", max_length=300)
SMS1 = Limits(counting="sms", max_segments=1)
LONG_URL = "https://www.departement41.fr/infos-routes/viabilite-hivernale/2013/01/20/rd957-blois-vendome"


# -- X ------------------------------------------------------------------------------------------------


def test_x_weights():
    assert x_length("Neige à Blois") == 13  # Latin-1 letters weigh 1
    assert x_length("’—") == 2  # 8217, 8212: in the weight-1 ranges
    assert x_length("…") == 2  # 8230 is not
    assert x_length("€") == 2  # 8364: outside them
    assert x_length("雪") == 2
    assert x_length("❄") == 2
    assert x_length("🌨️") == 2  # emoji + variation selector: one emoji
    assert x_length("👨‍👩‍👧") == 2  # ZWJ sequence: one emoji
    assert x_length("🇫🇷") == 2


def test_x_urls_count_23():
    assert x_length(LONG_URL) == 23
    assert x_length(f"Infos : {LONG_URL} #route41") == 8 + 23 + 9
    assert x_length("voir https://a.fr et www.loir-et-cher.gouv.fr.") == 5 + 23 + 4 + 23 + 1
    assert x_length("sur cg41.fr/routes, pas contact@cg41.fr ni M.Durand") == 4 + 23 + 6 + len(
        "contact@cg41.fr ni M.Durand"
    )
    # ".dupont" is a top-level domain in twitter-text's list: X links "M.Dupont" and weighs it 23.
    assert x_length("ni M.Dupont") == 3 + 23
    assert mastodon_length("sur cg41.fr") == 11  # Mastodon only links URLs with a scheme


def test_mastodon_and_bluesky_counts():
    assert mastodon_length(f"Neige ❄ {LONG_URL}") == 8 + 23
    assert grapheme_length(f"Neige ❄ {LONG_URL}") == 8 + len(LONG_URL)
    assert grapheme_length("Vendôme 👨‍👩‍👧") == 9
    assert grapheme_length("e\u0301") == 1  # e + combining acute: one grapheme


# -- Bluesky facets -----------------------------------------------------------------------------------


def test_bluesky_facets_use_utf8_byte_offsets():
    text = f"Vendôme ❄️ #route41 #neige. {LONG_URL} #Châteaudun"
    facets = bluesky_facets(text)
    raw = text.encode("utf-8")

    def span(facet):
        return raw[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode("utf-8")

    assert [span(f) for f in facets] == ["#route41", "#neige", LONG_URL, "#Châteaudun"]
    assert facets[0]["index"] == {"byteStart": 16, "byteEnd": 24}  # ô is 2 bytes, ❄️ is 6
    assert facets[0]["features"] == [{"$type": "app.bsky.richtext.facet#tag", "tag": "route41"}]
    assert facets[2]["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": LONG_URL}]
    assert facets[3]["features"][0]["tag"] == "Châteaudun"


def test_bluesky_facets_ignore_fragments_and_numbers():
    facets = bluesky_facets("https://a.fr/page#section et #41 et C#")
    assert [f["features"][0]["$type"] for f in facets] == ["app.bsky.richtext.facet#link"]


# -- SMS ----------------------------------------------------------------------------------------------


def test_gsm7_text():
    m = sms_measure("Neige sur la RD 957 à Blois")
    assert (m.encoding, m.length, m.segments) == ("GSM-7", 27, 1)
    assert is_gsm7("éèàùÉ")


def test_ucs2_text_exact_segments():
    m = sms_measure("Fête … verglas")
    assert (m.encoding, m.length, m.segments) == ("UCS-2", 14, 1)
    base = "Fête de la neige, verglas sur les routes départementales du Loir-et-Cher ; prudence."
    assert sms_measure(base[:70]).segments == 1
    assert sms_measure(base[:71]).segments == 2
    long = base * 2
    assert sms_measure(long[:134]).segments == 2  # 2 × 67
    assert sms_measure(long[:135]).segments == 3


def test_gsm7_segments_and_extension_characters():
    assert sms_measure("a" * 160).segments == 1
    assert sms_measure("a" * 161).segments == 2
    assert sms_measure("a" * 306).segments == 2
    assert sms_measure("a" * 307).segments == 3
    assert sms_measure("€").length == 2
    assert sms_measure("€" * 80).segments == 1
    assert sms_measure("€" * 81).segments == 2
    for char in "^{}\\[~]|€\x0c":
        assert sms_measure(char).length == 2, char
    # 306 septets would be 2 parts of 153, but an escape pair is never split across parts
    m = sms_measure("a" * 152 + "€" * 77)
    assert (m.length, m.segments) == (306, 3)


def test_ucs2_never_splits_a_surrogate_pair():
    m = sms_measure("a" * 66 + "😀" * 34)
    assert (m.encoding, m.length, m.segments) == ("UCS-2", 134, 3)


def test_cedilla_lowercase_is_not_gsm7():
    assert sms_measure("Ça glisse").encoding == "GSM-7"
    assert sms_measure("ça glisse").encoding == "UCS-2"


def test_transliteration_to_gsm7():
    text = "Fête … verglas « l’été » – œuvre ÊTRE, maïs, ça\u00a0!"
    converted = to_gsm7(text)
    assert converted == 'Fete ... verglas " l\'été " - oeuvre ETRE, mais, ca !'
    assert is_gsm7(converted)
    assert to_gsm7("Neige ❄") == "Neige ❄"  # no equivalent: kept, message stays UCS-2


# -- templates and fitting ----------------------------------------------------------------------------

TEMPLATES = {
    "alerte": "{{ title }}\n{{ text }}\n{% if link %}{{ link }}\n{% endif %}{{ hashtags_text }} {{ signature }}",
    "sms": "{{ title }} : {{ text }} {{ signature }}",
    "typo": "{{ titre }}",
}


def alert(text: str, **fields) -> Alert:
    defaults = dict(
        title="Neige sur la RD 957",
        text=text,
        territories=("41", "28"),
        hashtags=("#route41", "#route28"),
        channels=("x",),
        link=LONG_URL,
        severity=Severity.MODERATE,
    )
    return Alert(**{**defaults, **fields})


BODY = (
    "Chaussée glissante entre Blois et Vendôme, plaques de verglas fréquentes. Les équipes de déneigement "
    "sont en intervention depuis 4 h du matin sur l'ensemble des routes départementales. Réduisez votre "
    "vitesse, respectez les distances de sécurité et ne doublez pas les engins de salage. Les transports "
    "scolaires sont suspendus pour la journée dans tout le département. Informations : 02 54 58 41 41."
)


def test_short_message_untouched():
    rendered = Templates(TEMPLATES).render(alert("Prudence."), "x", X, "alerte", "— JD")
    assert rendered.text == f"Neige sur la RD 957\nPrudence.\n{LONG_URL}\n#route41 #route28 — JD"
    assert rendered.length == 20 + 10 + 24 + 22 and not rendered.shortened
    assert (rendered.segments, rendered.encoding, rendered.facets) == (1, None, ())


@pytest.mark.parametrize(
    "kind, limits", [("x", X), ("mastodon", Limits(counting="chars", max_length=200)), ("bluesky", BLUESKY)]
)
def test_shortening_keeps_fixed_parts(kind, limits):
    templates = Templates(TEMPLATES)
    rendered = templates.render(alert(BODY + " " + BODY), kind, limits, "alerte", "— JD")
    assert rendered.shortened and rendered.length <= limits.max_length
    title, body, link, tail = rendered.text.split("\n")
    assert title == "Neige sur la RD 957" and link == LONG_URL and tail == "#route41 #route28 — JD"
    assert body.endswith("…")
    kept = body[:-1]
    assert (BODY + " " + BODY).startswith(kept)
    assert (BODY + " " + BODY)[len(kept)] in " ,."  # cut at a word boundary
    # as long as possible: one more word would not fit
    assert limits.max_length - rendered.length < 30


def test_shortening_never_cuts_a_link_or_hashtag_in_the_body():
    templates = Templates({"t": "{{ text }}"})
    body = f"Déviation par la RD 766, détails {LONG_URL} ou #déviation41 et la suite"

    def cut(limit: int) -> str:
        return templates.render(alert(body), "web", Limits(counting="none", max_length=limit), "t").text

    end_of_link = body.index(LONG_URL) + len(LONG_URL)
    assert cut(end_of_link + 1) == f"Déviation par la RD 766, détails {LONG_URL}…"
    for limit in range(body.index(LONG_URL) + 1, end_of_link + 1):  # the link does not fit: cut before it
        assert cut(limit) == "Déviation par la RD 766, détails…"
    end_of_tag = body.index("#déviation41") + len("#déviation41")
    assert cut(end_of_tag) == f"Déviation par la RD 766, détails {LONG_URL} ou…"
    assert cut(end_of_tag + 1) == f"Déviation par la RD 766, détails {LONG_URL} ou #déviation41…"


def test_fixed_parts_too_long_is_a_clear_error():
    with pytest.raises(
        FittingError, match=r"template 'alerte' on x: the message without its text is .* over the limit of 280 \(x\)"
    ):
        Templates(TEMPLATES).render(alert(BODY, title="Neige " * 60), "x", X, "alerte", "— JD")


def test_sms_gsm7_option_saves_segments():
    text = "Fête de la neige annulée : la vigilance orange est maintenue jusqu’à demain matin, prudence."
    templates = Templates(TEMPLATES)
    plain = templates.render(alert(text, title="Vigilance"), "sms", Limits(counting="sms"), "sms", "— JD")
    assert (plain.encoding, plain.segments) == ("UCS-2", 2)
    fitted = templates.render(alert(text, title="Vigilance"), "sms", Limits(counting="sms"), "sms", "— JD", gsm7=True)
    assert (fitted.encoding, fitted.segments) == ("GSM-7", 1)
    assert fitted.text.endswith("demain matin, prudence. - JD") and "Fete" in fitted.text


def test_sms_shortened_to_one_segment_with_three_dots():
    rendered = Templates(TEMPLATES).render(alert(BODY, title="Routes"), "sms", SMS1, "sms", "— JD", gsm7=True)
    assert (rendered.encoding, rendered.segments) == ("GSM-7", 1) and rendered.length <= 160
    assert rendered.text.startswith("Routes : Chaussée glissante entre Blois et Vendome,") and rendered.text.endswith(
        "... - JD"
    )


def test_bluesky_render_has_facets():
    rendered = Templates(TEMPLATES).render(alert("Prudence à Vendôme."), "bluesky", BLUESKY, "alerte", "— JD")
    tags = [f["features"][0].get("tag") for f in rendered.facets]
    assert tags == [None, "route41", "route28"]
    raw = rendered.text.encode("utf-8")
    start, end = rendered.facets[1]["index"]["byteStart"], rendered.facets[1]["index"]["byteEnd"]
    assert raw[start:end] == b"#route41"


def test_template_errors():
    templates = Templates(TEMPLATES)
    with pytest.raises(TemplateRenderError, match="template 'typo'.*titre"):
        templates.render(alert("x"), "x", X, "typo")
    sandboxed = Templates({"evil": "{{ title.__class__.__mro__[1].__subclasses__() }}"})
    with pytest.raises(TemplateRenderError):
        sandboxed.render(alert("x"), "x", X, "evil")


def test_example_templates_render_in_french():
    templates = Templates(EXAMPLES / "templates")
    assert templates.names() == {"alerte", "alerte-sms", "mise-a-jour", "fin-alerte"}
    assert templates.check() == []
    base = alert(
        "Chaussée glissante, plaques de verglas.",
        roads=(Road("D", "957"),),
        expires=datetime(2013, 1, 20, 17, tzinfo=timezone.utc),
    )
    x = templates.render(base, "x", X, "alerte", "— JD")
    assert x.text == (
        f"Neige sur la RD 957\nChaussée glissante, plaques de verglas.\nRoutes : RD 957\n{LONG_URL}\n#route41 #route28 — JD"
    )
    sms = templates.render(base, "twilio", SMS1, "alerte-sms", "— JD", gsm7=True)
    assert sms.text == f"Neige sur la RD 957 : Chaussée glissante, plaques de verglas. {LONG_URL} - JD"
    assert sms.encoding == "GSM-7"
    update = templates.render(alert("Dégagée.", msg_type=MsgType.UPDATE), "mastodon", MASTODON, "mise-a-jour")
    assert update.text.startswith("MISE À JOUR – Neige sur la RD 957\nDégagée.")
    end = templates.render(alert("Fin de l'épisode."), "mastodon", MASTODON, "fin-alerte")
    assert end.text.startswith("FIN D'ALERTE – Neige sur la RD 957")


def test_broken_template_reported_with_line(tmp_path):
    (tmp_path / "ok.j2").write_text("{{ title }}\n")
    (tmp_path / "bad.j2").write_text("{{ title }}\n{% if link %}\n{{ link }}\n")
    (error,) = Templates(tmp_path).check()
    assert error.file == str(tmp_path / "bad.j2") and error.line == 3 and "template syntax" in error.message
