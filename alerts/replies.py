"""Every French text a citizen or a webmaster receives from Crieur, in one place.

SMS texts are written in GSM-7-friendly French: é è à ù are in the GSM 03.38 alphabet, but ê â î ô û ç,
typographic apostrophes and « » guillemets are not, and one of them turns the whole SMS into UCS-2 (70
characters a segment instead of 160). Values that come from elsewhere (authority names, titles of
publications) pass through `gsm7()`, which writes them with the nearest GSM-7 characters. Texts aim at one
segment; answers that quote a publication fit in two.

Email texts (the webmaster escalation) are not SMS and keep full French typography.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from alerts.domain import Item
from alerts.keywords import Command, CommandError
from rules.authorities import Authority, Routing, Topic
from rules.escalation import Escalation
from rules.fitting import is_gsm7, to_gsm7

__all__ = [
    "EmailText",
    "STOP_HINT",
    "gsm7",
    "subscribed",
    "already_subscribed",
    "unsubscribed",
    "help_text",
    "command_error",
    "question_received",
    "routed_answer",
    "citizen_answer",
    "escalation_email",
]

STOP_HINT = "Répondez STOP pour vous désabonner."
PARIS = ZoneInfo("Europe/Paris")
# Room left for a quoted title in a two-segment SMS (2 × 153 GSM-7 characters, minus a safety margin for
# the escape characters that count double).
_TWO_SEGMENTS = 300
_MIN_TITLE = 30


def gsm7(text: str) -> str:
    """`text` in GSM-7 only: `rules.fitting.to_gsm7` renders French typography ("ê" → "e", « → "), and a
    character with no rendering (emoji, other scripts) becomes "?" so that a quoted title never turns a
    citizen's reply into UCS-2."""
    return "".join(char if is_gsm7(char) else "?" for char in to_gsm7(text))


# ------------------------------------------------------------------------------------ French grammar


def _de(name: str) -> str:
    """ "de" + name with French contraction: du Conseil, de la Préfecture, de l'État, des communes, d'Orléans."""
    lowered = name.lower()
    if lowered.startswith("le "):
        return "du " + name[3:]
    if lowered.startswith("les "):
        return "des " + name[4:]
    if lowered.startswith(("la ", "l'", "l’", "votre ", "vos ")):
        return "de " + name
    if lowered[:1] in "aeiouyéèêh":
        return "d'" + name
    return "de " + name


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_article(label: str) -> str:
    """ "Les interdictions..." → "les interdictions..." for use inside a sentence."""
    first, _, rest = label.partition(" ")
    if first in ("Les", "Le", "La", "Des") or first.startswith("L'"):
        return first.lower() + (" " + rest if rest else "")
    return label


def _territory_list(codes: Sequence[str], names: Mapping[str, str]) -> str:
    return ", ".join(f"{code} {names[code]}" if code in names else code for code in codes)


# ------------------------------------------------------------------------------------------ SMS texts


def subscribed(territories: Sequence[str], names: Mapping[str, str] = {}) -> str:
    """Confirmation of a new subscription; always says how to stop."""
    return gsm7(f"Abonnement confirmé aux alertes routes : {_territory_list(territories, names)}. {STOP_HINT}")


def subscribed_places(labels: Sequence[str], new: bool = True) -> str:
    """Confirmation of a subscription to communes or roads ("commune de Blois (41)", "route D957 (41)")."""
    lead = "Abonnement confirmé" if new else "Vous étiez déjà abonné"
    return gsm7(f"{lead} : {audience_sentence(labels, whole=False)} {STOP_HINT}")


def audience_sentence(labels: Sequence[str], whole: bool) -> str:
    """Whom a subscription makes one hear from, said the same way by SMS and on the web: "vous recevrez
    les alertes pour commune de Vendôme (41), route D957 (41), et celles qui concernent tout le
    département." (`whole`: the subscription is to whole territories, which says it all)."""
    also = "" if whole else ", et celles qui concernent tout le département"
    return f"vous recevrez les alertes pour {', '.join(labels)}{also}."


def which_commune(names: Sequence[str]) -> str:
    """Several communes of that name in our territories: ask which."""
    return gsm7(
        f"Plusieurs communes portent ce nom : {', '.join(names)}. Précisez le département, "
        f"par exemple ROUTE{names[0].rsplit('(', 1)[-1].rstrip(')')} suivi du nom."
    )


def already_subscribed(territories: Sequence[str], names: Mapping[str, str] = {}) -> str:
    return gsm7(f"Vous étiez déjà abonné aux alertes routes : {_territory_list(territories, names)}. {STOP_HINT}")


def unsubscribed(example_territory: str = "") -> str:
    """Confirmation of STOP; says how to come back, since a stop word at the start of any SMS unsubscribes."""
    again = f" Pour vous réabonner, envoyez ROUTE{example_territory}." if example_territory else ""
    return gsm7(f"Désabonnement confirmé : vous ne recevrez plus nos alertes routes.{again}")


def help_text(territories: Sequence[str], names: Mapping[str, str] = {}) -> str:
    offers = ", ".join(f"ROUTE{code} ({names[code]})" if code in names else f"ROUTE{code}" for code in territories)
    return gsm7(
        f"Alertes routes : envoyez {offers} pour vous abonner, STOP pour vous désabonner, "
        "ou posez votre question par SMS."
    )


def command_error(command: Command, territories: Sequence[str]) -> str:
    """Explain a subscription that could not be made ("Territoire 99 inconnu. Territoires : 41, 28.")."""
    known = ", ".join(territories)
    if command.error is CommandError.UNKNOWN_TERRITORY:
        if len(command.unknown) == 1:
            return gsm7(f"Territoire {command.unknown[0]} inconnu. Territoires : {known}.")
        return gsm7(f"Territoires {', '.join(command.unknown)} inconnus. Territoires : {known}.")
    if command.error is CommandError.MISSING_TERRITORY:
        example = territories[0] if territories else ""
        return gsm7(f"Précisez le territoire, par exemple ROUTE{example}. Territoires : {known}.")
    raise ValueError(f"command has no error to explain: {command!r}")


def question_received(team: str = "l'équipe du Département", publication: Item | None = None) -> str:
    """A question in the operator's own competence (or matching nobody): the team will answer."""
    text = f"Merci, votre question est transmise à {team}, qui vous répondra dès que possible."
    if publication is not None:
        text += " " + _latest(publication, _TWO_SEGMENTS - len(text) - 1)
    return gsm7(text)


def routed_answer(routing: Routing, publication: Item | None) -> str:
    """Answer a question that another authority decides on, naming it and what it has published.

    Without a current publication the answer says so, and that we warned it (when it has a contact to
    warn) or where to ask (when it has none, e.g. "votre mairie").
    """
    authority, topic = routing.authority, routing.topic
    if authority is None or topic is None:
        raise ValueError("routed_answer needs a routing with an authority and a topic")
    verb = "relèvent" if topic.plural else "relève"
    head = f"{_capital(topic.label)} {verb} {_de(authority.name)}."
    if publication is not None:
        return gsm7(f"{head} " + _latest(publication, _TWO_SEGMENTS - len(head) - 1))
    if authority.webmaster is not None:
        tail = (
            f"{_capital(authority.short)} n'a rien publié à ce sujet pour l'instant ; "
            "nous lui avons signalé votre question."
        )
    else:
        tail = f"Renseignez-vous auprès {_de(authority.name)}."
        if authority.site:
            tail += f" {authority.site}"
    return gsm7(f"{head} {tail}")


def citizen_answer(routing: Routing, publication: Item | None, team: str = "l'équipe du Département") -> str:
    """The one SMS a question gets back: routed to another authority, or passed to the team."""
    if routing.in_scope or routing.authority is None:
        return question_received(team, publication)
    return routed_answer(routing, publication)


def _latest(item: Item, budget: int) -> str:
    """'Dernière information : "<title>" <link>', the title shortened to fit `budget` characters."""
    link = item.link
    title = gsm7(" ".join((item.title or item.text).split()))
    fixed = len('Dernière information : "" ') + len(link)
    room = max(_MIN_TITLE, budget - fixed)
    if len(title) > room:
        title = title[: room - 3].rstrip(" ,;:.-") + "..."
    return f'Dernière information : "{title}" {link}'.rstrip()


# ------------------------------------------------------------------------------- webmaster email


@dataclass(frozen=True, slots=True)
class EmailText:
    subject: str
    body: str


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "date inconnue"
    return moment.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def escalation_email(
    escalation: Escalation,
    authority: Authority,
    topic: Topic,
    operator: Authority,
    *,
    ack_url: str,
    their_publication: Item | None = None,
    our_publications: Sequence[Item] = (),
) -> EmailText:
    """The email that warns an authority's webmaster that citizens ask about one of its topics.

    Says how many questions, with a few samples, whether the authority's own feeds say anything current,
    what the operator published meanwhile, and the link that acknowledges receipt (no account needed).
    """
    count = escalation.count
    questions = "1 question" if count == 1 else f"{count} questions"
    subject_topic = _lower_article(topic.label)
    gap = " – aucune information publiée" if their_publication is None else ""
    subject = f"[Crieur] {questions} de citoyens sur {subject_topic}{gap}"

    start = escalation.first_at or escalation.key.window_start
    end = escalation.last_at or start
    lines = [
        "Bonjour,",
        "",
        f"Entre le {_when(start)} et le {_when(end)} (heure de Paris), {_de_count(count)} "
        f"{'a' if count == 1 else 'ont'} interrogé {operator.name} sur un sujet qui relève "
        f"{_de(authority.name)} : {subject_topic}.",
        "",
    ]
    if their_publication is None:
        lines.append(
            "Nous n'avons trouvé aucune information à jour sur ce sujet dans vos publications"
            + (f" (flux suivis : {', '.join(authority.feeds)})" if authority.feeds else "")
            + ". Nous avons indiqué aux citoyens que vous en étiez informés ; une publication de votre part"
            " leur permettrait d'obtenir une réponse."
        )
    else:
        lines.append(
            f"Nous avons répondu aux citoyens avec votre dernière publication : « {their_publication.title} »"
            f" ({_when(their_publication.sent)}) {their_publication.link}".rstrip()
        )
    lines += ["", "Exemples de questions reçues :"]
    lines += [f"  – « {sample} »" for sample in escalation.samples] or ["  (aucune question conservée)"]
    lines += ["", f"Ce que {operator.short} a publié pendant cette période :"]
    if our_publications:
        lines += [f"  – « {item.title} » ({_when(item.sent)}) {item.link}".rstrip() for item in our_publications]
    else:
        lines.append("  rien sur ce sujet.")
    lines += [
        "",
        "Pour nous indiquer que vous avez pris connaissance de ce message, ouvrez ce lien (aucun compte"
        " n'est nécessaire) :",
        f"  {ack_url}",
        "",
        "-- ",
        f"Message automatique de Crieur pour {operator.name}.",
    ]
    return EmailText(subject, "\n".join(lines))


def _de_count(count: int) -> str:
    return "1 citoyen" if count == 1 else f"{count} citoyens"
