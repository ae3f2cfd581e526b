-- Conversations (issue 17): a question keeps the thread it came in, so that the answer goes back into it,
-- and the group it belongs to (the same road, commune or topic), so that one answer reaches everyone who
-- asked.
-- reply_channel: the configured channel the answer goes through ('' when the asker left no way back);
-- recipient: whom (a phone, an e-mail address, a Messenger PSID; '' for a public reply in a thread);
-- thread / thread_root: the provider's reference of the message answered (Mastodon status id, Bluesky
-- "uri|cid", Facebook comment id, e-mail Message-ID) and of its thread's first message.
ALTER TABLE questions ADD COLUMN reply_channel TEXT NOT NULL DEFAULT '';
ALTER TABLE questions ADD COLUMN recipient TEXT NOT NULL DEFAULT '';
ALTER TABLE questions ADD COLUMN thread TEXT NOT NULL DEFAULT '';
ALTER TABLE questions ADD COLUMN thread_root TEXT NOT NULL DEFAULT '';
ALTER TABLE questions ADD COLUMN group_key TEXT NOT NULL DEFAULT '';
ALTER TABLE questions ADD COLUMN answer_id BIGINT;
ALTER TABLE questions ADD COLUMN answered_at DOUBLE PRECISION;
CREATE INDEX questions_group ON questions (group_key, status);

-- One row per group: its label, the CM it is assigned to.
CREATE TABLE question_groups (
    key TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    assigned_to TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    last_question_at DOUBLE PRECISION NOT NULL
);

-- A CM's answer to a group; each asker it went to has questions.answer_id pointing at it.
CREATE TABLE group_answers (
    id {pk},
    group_key TEXT NOT NULL,
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    initials TEXT NOT NULL,
    recipients INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX group_answers_group ON group_answers (group_key, id);

-- A CM's reusable answers.
CREATE TABLE saved_answers (
    id {pk},
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (owner, title)
);
