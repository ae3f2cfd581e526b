"""The CMs' inbox: questions grouped by what they are about, a CM's answer to a group, saved answers, and
how long citizens waited for a first answer.

The `questions` table stays the desk's (Store.add_question); this module owns `question_groups`,
`group_answers` and `saved_answers`, and the answering of a group: the questions it answers and the
deliveries that carry the answer to each asker are written in one transaction, and a question is
answered by one answer only (a conditional UPDATE), so two CMs answering at once, or one answer sent
twice, reach nobody twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .db import Database
from .outbox import NewDelivery, Outbox

# A question waits for the team while it is "queued" (alerts.citizens.desk); routed ones went to another
# authority ("escalated", or "answered" with that authority's publication).
WAITING = "queued"


def question_state(row: dict[str, Any]) -> str:
    """new / answered / routed, as the inbox shows a question."""
    if not row["in_scope"] and row["authority"]:
        return "routed"
    return "new" if row["status"] == WAITING else "answered"


class Inbox:
    def __init__(self, db: Database, outbox: Outbox):
        self.db = db
        self.outbox = outbox

    async def note_group(self, key: str, label: str, at: float) -> None:
        """The group a new question falls in: created with its label, or its last question's time moved."""
        await self.db.execute(
            "INSERT INTO question_groups (key, label, created_at, last_question_at) VALUES ($1, $2, $3, $3)"
            " ON CONFLICT (key) DO UPDATE SET last_question_at = excluded.last_question_at",
            key,
            label,
            at,
        )

    async def groups(self, limit: int = 100) -> list[dict[str, Any]]:
        """The groups, those with questions waiting first (longest waiting first), then the latest."""
        rows = await self.db.fetch(
            "SELECT g.key, g.label, g.assigned_to, g.last_question_at, COUNT(q.id) AS total,"
            " SUM(CASE WHEN q.status = $2 AND (q.in_scope = 1 OR q.authority = '') THEN 1 ELSE 0 END) AS waiting,"
            " SUM(CASE WHEN q.in_scope = 0 AND q.authority <> '' THEN 1 ELSE 0 END) AS routed,"
            " MIN(CASE WHEN q.status = $2 AND (q.in_scope = 1 OR q.authority = '') THEN q.created_at END)"
            " AS oldest_waiting,"
            " MIN(q.answered_at - q.created_at) AS fastest_answer"
            " FROM question_groups g JOIN questions q ON q.group_key = g.key"
            " GROUP BY g.key, g.label, g.assigned_to, g.last_question_at"
            " ORDER BY CASE WHEN MIN(CASE WHEN q.status = $2 AND (q.in_scope = 1 OR q.authority = '')"
            " THEN q.created_at END) IS NULL THEN 1 ELSE 0 END,"
            " MIN(CASE WHEN q.status = $2 AND (q.in_scope = 1 OR q.authority = '') THEN q.created_at END),"
            " g.last_question_at DESC LIMIT $1",
            limit,
            WAITING,
        )
        for row in rows:
            row["waiting"] = int(row["waiting"] or 0)
            row["routed"] = int(row["routed"] or 0)
            row["answered"] = int(row["total"]) - row["waiting"] - row["routed"]
            row["state"] = "new" if row["waiting"] else ("routed" if row["routed"] == row["total"] else "answered")
        return rows

    async def group(self, key: str) -> dict[str, Any] | None:
        return await self.db.fetchrow("SELECT * FROM question_groups WHERE key = $1", key)

    async def questions(self, key: str, limit: int = 500) -> list[dict[str, Any]]:
        # the state of what last went back to the asker: the CM's answer, else the automatic one
        rows = await self.db.fetch(
            "SELECT q.*, COALESCE(da.state, dq.state, '') AS delivery_state,"
            " COALESCE(da.last_error, dq.last_error, '') AS delivery_error FROM questions q"
            " LEFT JOIN deliveries da ON da.key = 'a' || CAST(q.answer_id AS TEXT) || ':q' || CAST(q.id AS TEXT)"
            " LEFT JOIN deliveries dq ON dq.key = 'q' || CAST(q.id AS TEXT) || ':' || q.reply_channel"
            " WHERE q.group_key = $1 ORDER BY q.id LIMIT $2",
            key,
            limit,
        )
        for row in rows:
            row["state"] = question_state(row)
        return rows

    async def assign(self, key: str, username: str) -> bool:
        return await self.db.execute("UPDATE question_groups SET assigned_to = $2 WHERE key = $1", key, username) > 0

    async def answers(self, key: str) -> list[dict[str, Any]]:
        return await self.db.fetch("SELECT * FROM group_answers WHERE group_key = $1 ORDER BY id", key)

    async def answer(self, answer_id: int) -> dict[str, Any] | None:
        return await self.db.fetchrow("SELECT * FROM group_answers WHERE id = $1", answer_id)

    async def answer_group(
        self,
        key: str,
        text: str,
        *,
        author: str,
        initials: str,
        deliveries_for: Callable[[list[dict[str, Any]], int], list[NewDelivery]],
    ) -> tuple[int, int]:
        """A CM's answer to every question of the group still waiting: each is marked answered by it and
        `deliveries_for(questions, answer_id)` says what goes to their askers (nothing to a question with
        no way back, e.g. the web form without a number). Returns (answer id, questions answered)."""
        now = time.time()
        async with self.db.transaction() as tx:
            answer_id = int(
                await tx.fetchval(
                    "INSERT INTO group_answers (group_key, text, author, initials, created_at)"
                    " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    key,
                    text,
                    author,
                    initials,
                    now,
                )
            )
            # One statement takes the waiting questions: a concurrent answer finds them taken.
            taken = await tx.fetch(
                "UPDATE questions SET status = 'answered', answer_id = $2, answer = $3,"
                " answered_at = COALESCE(answered_at, $4)"
                " WHERE group_key = $1 AND status = $5 AND (in_scope = 1 OR authority = '') RETURNING *",
                key,
                answer_id,
                text,
                now,
                WAITING,
            )
            deliveries = deliveries_for(sorted(taken, key=lambda q: q["id"]), answer_id)
            await self.outbox.enqueue_within(tx, deliveries, now)
            await tx.execute("UPDATE group_answers SET recipients = $2 WHERE id = $1", answer_id, len(deliveries))
        await self.outbox.notify_work()
        return answer_id, len(taken)

    async def mark_published(self, answer_id: int) -> None:
        await self.db.execute("UPDATE group_answers SET published = 1 WHERE id = $1", answer_id)

    async def published_answers(
        self, since: float, territory: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Answers published as questions and answers since `since`, newest first, each with its group's
        label and the first question asked in it. With a `territory`, only the answers to a group holding a
        question of that territory, or of none known (a territory's page shows no other's answers)."""
        where = ""
        if territory is not None:
            where = (
                " AND EXISTS (SELECT 1 FROM questions t WHERE t.group_key = a.group_key"
                " AND (t.territories = '[]' OR t.territories LIKE $3))"
            )
        return await self.db.fetch(
            "SELECT a.*, g.label, (SELECT q.text FROM questions q WHERE q.group_key = a.group_key"
            " ORDER BY q.id LIMIT 1) AS question FROM group_answers a JOIN question_groups g ON g.key = a.group_key"
            f" WHERE a.published = 1 AND a.created_at >= $1{where} ORDER BY a.id DESC LIMIT $2",
            since,
            limit,
            *((f'%"{territory}"%',) if territory is not None else ()),
        )

    # ------------------------------------------------------------------ saved answers

    async def save_answer(self, owner: str, title: str, text: str) -> None:
        await self.db.execute(
            "INSERT INTO saved_answers (owner, title, text, created_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (owner, title) DO UPDATE SET text = excluded.text",
            owner,
            title,
            text,
            time.time(),
        )

    async def saved_answers(self, owner: str) -> list[dict[str, Any]]:
        return await self.db.fetch("SELECT * FROM saved_answers WHERE owner = $1 ORDER BY title", owner)

    async def delete_saved_answer(self, owner: str, answer_id: int) -> bool:
        return await self.db.execute("DELETE FROM saved_answers WHERE owner = $1 AND id = $2", owner, answer_id) > 0

    # ------------------------------------------------------------------ responsiveness

    async def first_answer_times(self, by: str) -> list[dict[str, Any]]:
        """Per `by` ("channel" or "group_key"): questions for the team, how many have had a first answer,
        and the mean and longest seconds it took."""
        if by not in ("channel", "group_key"):
            raise ValueError(f"first_answer_times: by channel or group_key, not {by!r}")
        rows = await self.db.fetch(
            f"SELECT {by} AS name, COUNT(*) AS questions, COUNT(answered_at) AS answered,"
            " AVG(answered_at - created_at) AS mean_seconds, MAX(answered_at - created_at) AS max_seconds"
            f" FROM questions WHERE in_scope = 1 OR authority = '' GROUP BY {by} ORDER BY {by}"
        )
        return [
            {
                "name": r["name"],
                "questions": int(r["questions"]),
                "answered": int(r["answered"]),
                "mean_seconds": float(r["mean_seconds"]) if r["mean_seconds"] is not None else None,
                "max_seconds": float(r["max_seconds"]) if r["max_seconds"] is not None else None,
            }
            for r in rows
        ]
