"""Paging the on-call person for what waits on one, and their answers by SMS.

An alert pending approval, a citizen's question in the Département's competence left in the team's queue,
an escalation no webmaster acknowledged, or a source failing while a snow episode is on opens a *case*
(table oncall_cases). After the rota's delay for its kind and
severity the first person of the chain (CM on call → back-up → head of communication) is paged by SMS and
email, through the outbox like any delivery (keys `page:...`: exactly once); with no acknowledgement the
next person is paged after the next delay, and so on. The case closes when someone decides (console or
SMS) or acknowledges ("VU 12"); a rule's `approve: {within, otherwise}` decides for them at the deadline.

SMS answers, from the rota's numbers only, each signed with the person's PIN:
    OUI 12 4821   approve alert 12          NON 12 4821   reject it          VU 12 4821   I am on it
    VU Q7 4821    I am on question 7 (answered in the console)
    VU E3 4821    I am on escalation 3 (a webmaster who has not acknowledged: call the authority)
They go through `Crieur.approve` / `Crieur.reject`, the console's one transition, and every step is in the
audit log with who, how and when. A page about an alert also carries a signed link to a phone-sized page
where the person paged decides without logging in (alerts.oncall.links). Wrong PINs are counted per number
in the database (a shared rate budget), so every process refuses a number that guessed too often.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from alerts.citizens.base import NO_ALERT
from alerts.domain import Alert, AlertStatus, Severity
from alerts.errors import NotAwaitingApproval
from alerts.phones import mask
from alerts.seams import ConsoleService
from alerts.shared_limits import Rate, SharedRate
from alerts.storage import NewDelivery, Store
from alerts.storage.db import Database
from alerts.web import accounts

from . import links
from .rota import Person, Rota, paris
from .swaps import swaps

log = logging.getLogger("crieur.oncall")

COMMAND = re.compile(r"^\s*(OUI|NON|VU)\s+([QE]?)\s*(\d{1,12})(?:\s+(\S+))?\s*[.!]*\s*$", re.IGNORECASE)
PREFIXES = {"Q": "question", "E": "escalation"}  # "VU Q7", "VU E3": what is not an alert
LABELS = {"question": "La question", "escalation": "L'escalade"}
# Wrong PINs allowed per number: 5 at once, then one more every 12 minutes (5 an hour); past that every answer
# from the number is refused, right PIN or not, by every process (budget "oncall-pin:<number>").
PIN_RATE = Rate.per(5, 3600.0)
POLICY_WORDS = {"publish": "publiée", "discard": "rejetée", "escalate": "transmise à la direction"}


def page_key(subject: str, step: int, channel: str, recipient: str) -> str:
    return f"page:{subject}:{step}:{channel}:{recipient}"


@dataclass(frozen=True, slots=True)
class Waiting:
    """Something waiting on a person: an alert pending approval, or a citizen's question in the
    Département's competence still in the team's queue."""

    subject: str  # "alert:12", "question:7"
    kind: str  # "alert", "question": the rota's paging delays are per kind (and severity)
    severity: Severity
    alert: Alert | None = None
    row: dict[str, Any] | None = None  # the question, escalation or source state

    @classmethod
    def of_alert(cls, alert: Alert) -> "Waiting":
        return cls(f"alert:{alert.id}", "alert", alert.severity, alert=alert)

    @classmethod
    def of_question(cls, row: dict[str, Any]) -> "Waiting":
        return cls(f"question:{row['id']}", "question", Severity.UNKNOWN, row=row)

    @classmethod
    def of_source(cls, name: str, state: dict[str, Any]) -> "Waiting":
        """A source failing during a snow episode; one case per run of failures (since its last success)."""
        return cls(
            f"source:{name}:{state.get('last_success') or 'jamais'}",
            "source",
            Severity.UNKNOWN,
            row={"name": name, **state},
        )

    @classmethod
    def of_escalation(cls, row: dict[str, Any]) -> "Waiting":
        """An escalation sent to an authority's webmaster and not acknowledged yet."""
        return cls(f"escalation:{row['id']}", "escalation", Severity.UNKNOWN, row=row)


class OnCall:
    """The pager: `tick()` moves every case on (the service calls it every `interval`; tests call it with
    an injected clock), `handle_sms()` takes the on-call person's answers."""

    def __init__(self, crieur: ConsoleService, rota: Rota, *, clock: Callable[[], float] = time.time):
        self.crieur = crieur
        self.rota = rota
        self.clock = clock
        self._stop = asyncio.Event()

    @property
    def store(self) -> Store:
        return self.crieur.store

    @property
    def db(self) -> Database:
        return self.crieur.store.db

    # ------------------------------------------------------------------------------------ the loop

    async def run(self, interval: float = 30.0) -> None:
        while not self._stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("on-call tick failed; trying again in %.0f s", interval)
            try:
                await asyncio.wait_for(self._stop.wait(), interval)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()

    async def tick(self) -> None:
        now = self.clock()
        waiting = {
            w.subject: w
            for w in map(Waiting.of_alert, await self.store.alerts((AlertStatus.PENDING_APPROVAL,), limit=500))
        }
        for row in await self.store.questions(status="queued", limit=500):
            if row["in_scope"]:
                waiting[f"question:{row['id']}"] = Waiting.of_question(row)
        for row in await self.store.escalations(limit=500):
            if row["state"] == "sent":
                waiting[f"escalation:{row['id']}"] = Waiting.of_escalation(row)
        if await self.store.active_episodes():
            for name, state in (await self.store.source_states()).items():
                if state.get("last_status") == "error" and int(state.get("consecutive_failures") or 0) > 0:
                    failing = Waiting.of_source(name, state)
                    waiting[failing.subject] = failing
        for item in waiting.values():
            await self._open(item, now)
        for case in await self.db.fetch(
            "SELECT * FROM oncall_cases WHERE state IN ('open', 'acknowledged', 'unanswered') ORDER BY opened_at"
        ):
            found = waiting.get(case["subject"])
            if found is None:  # decided or answered elsewhere (the console), or the source answers again
                how = "rétablie" if case["kind"] == "source" else "console"
                await self._close(case["subject"], "decided", "", how, now, only_from=case["state"])
                log.info("case %s closed: no longer waiting", case["subject"])
                continue
            if (
                found.alert is not None
                and case["deadline"] is not None
                and now >= case["deadline"]
                and case["otherwise"]
            ):
                await self._deadline(case, found.alert, now)
            elif case["state"] == "open" and now >= case["next_at"]:
                await self._advance(case, found, now)

    # ------------------------------------------------------------------------------------ cases

    async def _open(self, waiting: Waiting, now: float) -> None:
        delays = self.rota.delays(waiting.kind, waiting.severity)
        within, otherwise = self._policy(waiting.alert) if waiting.alert is not None else (0, "")
        chain = [p.id for p in await self.chain(datetime.fromtimestamp(now, timezone.utc))]
        added = await self.db.execute(
            "INSERT INTO oncall_cases (subject, kind, severity, chain, opened_at, next_at, deadline, otherwise)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (subject) DO NOTHING",
            waiting.subject,
            waiting.kind,
            int(waiting.severity),
            json.dumps(chain),
            now,
            now + delays.after,
            now + within if within else None,
            otherwise,
        )
        if added:
            what = "en attente de validation" if waiting.alert is not None else "question de citoyen en attente"
            await self._audit(
                now,
                "crieur",
                "oncall-open",
                waiting.subject,
                f"{what} ; astreinte : {' → '.join(chain)}"
                + (f" ; sans réponse en {within // 60} min : {otherwise}" if within else ""),
            )

    async def chain(self, moment: datetime) -> list[Person]:
        """Who is paged at `moment`: the rota file's chain, or a swap's entered in the console."""
        return self.rota.chain(moment, [s.shift() for s in await swaps(self.db, moment.timestamp())])

    def _policy(self, alert: Alert) -> tuple[int, str]:
        """The approval deadline of the rule that made the alert (seconds, what then), or (0, "")."""
        rules = getattr(self.crieur, "rules", None)
        try:
            engine = rules.engine if rules is not None else None
        except RuntimeError:
            engine = None
        for rule in getattr(engine, "rules", ()):
            if rule.name == alert.rule:
                return rule.then.approve_within, rule.then.approve_otherwise
        return 0, ""

    async def _advance(self, case: dict[str, Any], waiting: Waiting, now: float) -> None:
        """Page the next person of the chain; past its end, the case is marked unanswered."""
        chain = json.loads(case["chain"])
        step = int(case["step"]) + 1
        delays = self.rota.delays(case["kind"], waiting.severity)
        if step >= len(chain):
            if await self.db.execute(
                "UPDATE oncall_cases SET state = 'unanswered' WHERE subject = $1 AND state = 'open' AND step = $2",
                case["subject"],
                case["step"],
            ):
                await self._audit(
                    now,
                    "crieur",
                    "oncall-unanswered",
                    case["subject"],
                    "personne n'a répondu : cela attend dans la console",
                )
            return
        moved = await self.db.execute(
            "UPDATE oncall_cases SET step = $2, next_at = $3 WHERE subject = $1 AND step = $4 AND state = 'open'",
            case["subject"],
            step,
            now + delays.next,
            case["step"],
        )
        if moved:  # this process won the step: it pages
            await self._page(case["subject"], step, self.rota.people[chain[step]], waiting, case, now)

    async def _page(
        self, subject: str, step: int, person: Person, waiting: Waiting, case: dict[str, Any], now: float
    ) -> None:
        sms_channel, email_channel = self._channels()
        if waiting.alert is not None:
            sms, subject_line, mail = self._page_texts(waiting.alert, case, person, now)
        elif waiting.kind == "escalation":
            sms, subject_line, mail = self._escalation_texts(waiting.row or {}, case)
        elif waiting.kind == "source":
            sms, subject_line, mail = self._source_texts(waiting.row or {}, case)
        else:
            sms, subject_line, mail = self._question_texts(waiting.row or {}, case)
        deliveries = []
        if sms_channel:
            deliveries.append(
                NewDelivery(
                    key=page_key(subject, step, sms_channel, person.phone),
                    alert_id=NO_ALERT,
                    channel=sms_channel,
                    recipient=person.phone,
                    kind="Page",
                    text=sms,
                    extra=json.dumps({"page": subject, "person": person.id}),
                )
            )
        if email_channel:
            deliveries.append(
                NewDelivery(
                    key=page_key(subject, step, email_channel, person.email),
                    alert_id=NO_ALERT,
                    channel=email_channel,
                    recipient=person.email,
                    kind="Page",
                    text=mail,
                    subject=subject_line,
                    extra=json.dumps({"page": subject, "person": person.id}),
                )
            )
        await self.store.enqueue(deliveries)
        how = " et ".join(x for x, c in (("SMS", sms_channel), ("e-mail", email_channel)) if c) or "aucun canal"
        await self._audit(
            now,
            "crieur",
            "oncall-page",
            subject,
            f"{person.id} ({person.name}) appelé·e par {how}, rang {step + 1} de la chaîne",
        )
        log.info("%s: paged %s (step %d)", subject, person.id, step + 1)

    def _channels(self) -> tuple[str, str]:
        config = self.crieur.config
        channels = self.crieur.channels
        sms = self.rota.channels.get("sms") or config.sms_channel
        email = self.rota.channels.get("email") or config.email_channel
        return (sms if sms in channels else "", email if email in channels else "")

    def _page_texts(self, alert: Alert, case: dict[str, Any], person: Person, now: float) -> tuple[str, str, str]:
        since = paris(datetime.fromtimestamp(case["opened_at"], timezone.utc))
        where = ", ".join(alert.territories)
        what = f"{alert.title}" + (f" ({where})" if where else "")
        deadline = ""
        if case["deadline"] is not None and case["otherwise"]:
            at = paris(datetime.fromtimestamp(case["deadline"], timezone.utc))
            deadline = f" Sans décision à {at[-5:]}, elle sera {POLICY_WORDS[case['otherwise']]}."
        sms = (
            f"Crieur astreinte : l'alerte {alert.id} attend une validation depuis {since[-5:]} : {what}."
            f"{deadline} Répondez OUI {alert.id} <code> pour la publier, NON {alert.id} <code> pour la "
            f"rejeter, VU {alert.id} <code> pour la prendre en charge."
        )
        console = f"{self.crieur.config.public_url.rstrip('/')}/console"
        link = links.link_url(self.crieur.config, int(alert.id or 0), person.id, now)
        if link:
            sms += f" Ou : {link}"
        mail = (
            f"L'alerte {alert.id} attend une validation depuis {since} (heure de Paris).\n\n"
            f"{alert.title}\n{alert.text}\n\nTerritoires : {where or '-'}\nRègle : {alert.rule or '-'}\n"
            f"{deadline.strip()}\n\n"
            + (
                f"Décider depuis votre téléphone, sans vous connecter (lien personnel, valable "
                f"{links.LINK_TTL_MINUTES} minutes) : {link}\n"
                if link
                else ""
            )
            + f"Décider dans la console : {console}\n"
            f"ou par SMS au numéro de Crieur : OUI {alert.id} <code> / NON {alert.id} <code> / "
            f"VU {alert.id} <code>.\n"
        )
        return sms, f"[Astreinte] Alerte {alert.id} à valider : {alert.title}"[:200], mail

    def _question_texts(self, question: dict[str, Any], case: dict[str, Any]) -> tuple[str, str, str]:
        since = paris(datetime.fromtimestamp(case["opened_at"], timezone.utc))
        qid = question.get("id")
        text = " ".join(str(question.get("text", "")).split())
        short = text if len(text) <= 140 else text[:139] + "…"
        console = f"{self.crieur.config.public_url.rstrip('/')}/console"
        sms = (
            f"Crieur astreinte : question d'un citoyen ({question.get('channel', '')}) en attente depuis "
            f"{since[-5:]} : « {short} ». Répondez VU Q{qid} <code> pour la prendre en charge, puis "
            f"dans la console."
        )
        mail = (
            f"Une question de citoyen attend une réponse du Département depuis {since} (heure de Paris).\n\n"
            f"« {text} »\n\nCanal : {question.get('channel', '')}\nRépondre dans la console : {console}\n"
            f"Prendre en charge par SMS : VU Q{qid} <code>.\n"
        )
        return sms, f"[Astreinte] Question de citoyen en attente (Q{qid})", mail

    def _escalation_texts(self, row: dict[str, Any], case: dict[str, Any]) -> tuple[str, str, str]:
        since = paris(datetime.fromtimestamp(case["opened_at"], timezone.utc))
        eid = row.get("id")
        what = (
            f"l'escalade E{eid} vers {row.get('authority', '')} ({row.get('topic', '')}, "
            f"{row.get('question_count', 0)} question(s))"
        )
        sms = (
            f"Crieur astreinte : {what} n'est pas accusée depuis {since[-5:]}. Appelez l'autorité ; "
            f"répondez VU E{eid} <code> pour la prendre en charge."
        )
        mail = (
            f"{what[0].upper()}{what[1:]} n'a pas été accusée par son webmestre depuis {since} (heure de "
            f"Paris). Appelez l'autorité pour qu'elle publie ; prise en charge par SMS : VU E{eid} <code>.\n"
        )
        return sms, f"[Astreinte] Escalade E{eid} non accusée : {row.get('authority', '')}", mail

    def _source_texts(self, state: dict[str, Any], case: dict[str, Any]) -> tuple[str, str, str]:
        since = paris(datetime.fromtimestamp(case["opened_at"], timezone.utc))
        error = " ".join(str(state.get("last_error", "")).split())[:120]
        what = f"la source {state.get('name')} ne répond plus ({state.get('consecutive_failures')} échecs"
        sms = (
            f"Crieur astreinte : {what}, depuis {since[-5:]}) pendant l'épisode neigeux : {error}. "
            "Vérifiez-la ; les appels cessent quand elle répond."
        )
        mail = (
            f"Pendant l'épisode neigeux, {what} depuis {since}, heure de Paris).\nDernière erreur : {error}\n"
            f"État des sources dans la console : {self.crieur.config.public_url.rstrip('/')}/console\n"
        )
        return sms, f"[Astreinte] Source en panne : {state.get('name')}", mail

    async def _deadline(self, case: dict[str, Any], alert: Alert, now: float) -> None:
        """Nobody decided in time: the rule's `otherwise` decides."""
        otherwise, subject, alert_id = case["otherwise"], case["subject"], int(alert.id or 0)
        by = f"règle:{alert.rule}"
        if otherwise == "escalate":
            # Page the head of communication now (the last of the chain), once.
            chain = json.loads(case["chain"])
            last = len(chain) - 1
            if not await self.db.execute(
                "UPDATE oncall_cases SET deadline = NULL, state = 'open', step = $2, "
                "next_at = $3 WHERE subject = $1 AND deadline IS NOT NULL",
                subject,
                last,
                now + self.rota.delays(case["kind"], alert.severity).next,
            ):
                return
            await self._audit(now, by, "oncall-deadline", subject, "délai de validation dépassé : escalade")
            if int(case["step"]) < last:
                await self._page(subject, last, self.rota.people[chain[last]], Waiting.of_alert(alert), case, now)
            return
        try:
            if otherwise == "publish":
                await self.crieur.approve(alert_id, by=by)
            else:
                await self.crieur.reject(alert_id, by=by)
        except NotAwaitingApproval:
            return  # someone decided meanwhile
        action = "approve" if otherwise == "publish" else "reject"
        await self._audit(
            now,
            by,
            action,
            subject,
            f"délai de validation dépassé : {POLICY_WORDS[otherwise]} automatiquement (approve.otherwise de la règle)",
        )
        await self._close(subject, "decided", by, "policy", now)

    async def _close(
        self, subject: str, state: str, by: str, how: str, now: float, only_from: str | None = None
    ) -> bool:
        sql = (
            "UPDATE oncall_cases SET state = $2, closed_at = $3, closed_by = $4, how = $5 WHERE subject = $1 "
            "AND state IN ('open', 'acknowledged', 'unanswered')"
        )
        args: list[Any] = [subject, state, now, by, how]
        if only_from is not None:
            sql += " AND state = $6"
            args.append(only_from)
        return await self.db.execute(sql, *args) > 0

    async def cases(self) -> list[dict[str, Any]]:
        return await self.db.fetch("SELECT * FROM oncall_cases ORDER BY opened_at")

    # ------------------------------------------------------------------------------------ SMS answers

    def knows(self, phone: str) -> bool:
        return self.rota.by_phone(phone) is not None

    async def handle_sms(self, phone: str, body: str) -> str | None:
        """The reply to an on-call answer from a rota number, or None when the SMS is not one (it then
        goes to the citizens' desk like any other)."""
        person = self.rota.by_phone(phone)
        match = COMMAND.match(body or "")
        if person is None or match is None:
            return None
        now = self.clock()
        word, prefix = match.group(1).upper(), match.group(2).upper()
        alert_id, given = int(match.group(3)), match.group(4) or ""
        kind = PREFIXES.get(prefix, "alert")
        who = f"astreinte:{person.id}"
        ref = f"{prefix}{alert_id}"
        if not given:
            return f"Ajoutez votre code : {word} {ref} <code>."
        pin = person.pin()
        right = bool(pin) and hmac.compare_digest(given.encode(), pin.encode())
        pins, budget = SharedRate(self.db, self.clock), f"oncall-pin:{phone}"
        locked = await pins.wait(budget, PIN_RATE)
        if not right or locked > 0:
            if locked > 0:
                minutes = max(1, round(locked / 60))
                why = "trop d'essais"
                reply = f"Trop d'essais : réessayez dans {minutes} min ou passez par la console."
            else:
                await pins.try_take(budget, PIN_RATE)
                why = "code incorrect" if pin else f"aucun code défini ({person.pin_env or 'pin_env'})"
                reply = "Code incorrect : rien n'a été fait."
            await self._audit(
                now, who, "oncall-sms-refused", f"{kind}:{alert_id}", f"{word} par SMS depuis {mask(phone)} : {why}"
            )
            log.warning("on-call SMS from %s refused: %s", mask(phone), why)
            return reply
        if kind != "alert":
            return await self._take_over(word, kind, prefix, alert_id, person, phone, now)
        if word != "VU":
            return await self.decide(alert_id, person, word == "OUI", how="sms", detail=f"par SMS depuis {mask(phone)}")
        subject = f"alert:{alert_id}"
        alert = await self.store.alert(alert_id)
        if alert is None:
            return f"Alerte {alert_id} introuvable."
        if alert.status is not AlertStatus.PENDING_APPROVAL:
            return f"L'alerte {alert_id} n'attend plus de validation ({status_fr(alert.status)})."
        await self.acknowledge(subject, person, how="sms", detail=f"prise en charge par SMS depuis {mask(phone)}")
        return f"Alerte {alert_id} prise en charge : plus personne d'autre n'est appelé."

    async def acknowledge(self, subject: str, person: Person, *, how: str, detail: str) -> bool:
        """`person` takes the case over: nobody else is paged (VU by SMS, or the signed link's button).
        False when the case was not waiting for anyone."""
        taken = await self.db.execute(
            "UPDATE oncall_cases SET state = 'acknowledged', closed_by = $2, how = $3 "
            "WHERE subject = $1 AND state IN ('open', 'unanswered')",
            subject,
            person.id,
            how,
        )
        if taken:
            await self._audit(self.clock(), f"astreinte:{person.id}", "oncall-ack", subject, detail)
        return taken > 0

    async def decide(self, alert_id: int, person: Person, approve: bool, *, how: str, detail: str) -> str:
        """A rota person's decision on a held alert (SMS "OUI 12" / "NON 12", or the signed link), through
        the console's one transition, audited as `astreinte:<person>` with how; the reply to show them."""
        now, who, subject, later = self.clock(), f"astreinte:{person.id}", f"alert:{alert_id}", ""
        if await self.store.alert(alert_id) is None:
            return f"Alerte {alert_id} introuvable."
        try:
            if approve:
                decided = await self.crieur.approve(alert_id, by=who)
                if decided.status is AlertStatus.SCHEDULED and decided.publish_at is not None:
                    later = f"validée : elle partira {paris(decided.publish_at)}"
            else:
                await self.crieur.reject(alert_id, by=who)
        except NotAwaitingApproval:
            current = await self.store.alert(alert_id)
            status = current.status if current is not None else AlertStatus.ENDED
            return f"L'alerte {alert_id} n'attend plus de validation ({status_fr(status)})."
        await self._audit(now, who, "approve" if approve else "reject", subject, detail)
        await self._close(subject, "decided", person.id, how, now)
        return f"Alerte {alert_id} {later or ('publiée' if approve else 'rejetée')}."

    async def _take_over(
        self, word: str, kind: str, prefix: str, number: int, person: Person, phone: str, now: float
    ) -> str:
        """VU Q7 / VU E3: the on-call person takes a question or an escalation over."""
        ref = f"{prefix}{number}"
        if word != "VU":
            return f"{LABELS[kind]} {ref} se prend en charge (VU {ref} <code>) puis se traite dans la console."
        detail = f"prise en charge par SMS depuis {mask(phone)}"
        if not await self.acknowledge(f"{kind}:{number}", person, how="sms", detail=detail):
            return f"{LABELS[kind]} {ref} n'attend personne."
        return f"{LABELS[kind].split()[-1].capitalize()} {ref} prise en charge : plus personne d'autre n'est appelé."

    async def _audit(self, now: float, username: str, action: str, target: str, detail: str) -> None:
        await accounts.audit(self.store, username, action, target, detail, at=now)


def status_fr(status: AlertStatus) -> str:
    return {
        AlertStatus.PUBLISHED: "publiée",
        AlertStatus.REJECTED: "rejetée",
        AlertStatus.ENDED: "terminée",
        AlertStatus.EXPIRED: "expirée",
        AlertStatus.PENDING_APPROVAL: "en attente",
        AlertStatus.SCHEDULED: "programmée",
    }[status]
