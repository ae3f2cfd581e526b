-- Crieur schema, shared by SQLite and PostgreSQL.
-- {pk} becomes the dialect's auto-increment primary key. Times are Unix seconds (DOUBLE PRECISION),
-- lists and records are JSON text, so that one SQL text serves both databases.

CREATE TABLE sources (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT '{}',
    updated_at DOUBLE PRECISION
);

CREATE TABLE items (
    id {pk},
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL,
    msg_type TEXT NOT NULL DEFAULT 'Alert',
    sent DOUBLE PRECISION,
    expires DOUBLE PRECISION,
    title TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    UNIQUE (source, external_id)
);

-- Every version received, with the raw document, for audit.
CREATE TABLE item_versions (
    id {pk},
    item_id BIGINT NOT NULL REFERENCES items(id),
    version TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL,
    raw TEXT NOT NULL DEFAULT '',
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX item_versions_item ON item_versions (item_id);

CREATE TABLE alerts (
    id {pk},
    status TEXT NOT NULL,
    msg_type TEXT NOT NULL DEFAULT 'Alert',
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    territories TEXT NOT NULL DEFAULT '[]',
    hashtags TEXT NOT NULL DEFAULT '[]',
    channels TEXT NOT NULL DEFAULT '[]',
    severity INTEGER NOT NULL DEFAULT 0,
    rule TEXT NOT NULL DEFAULT '',
    item_key TEXT NOT NULL DEFAULT '',
    link TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}',
    expires DOUBLE PRECISION,
    supersedes BIGINT,
    created_by TEXT NOT NULL DEFAULT '',
    dedup TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX alerts_item_key ON alerts (item_key);
CREATE INDEX alerts_dedup ON alerts (dedup, created_at);
CREATE INDEX alerts_status ON alerts (status, updated_at);

-- The outbox: one row per alert x channel x recipient; `key` makes a second enqueue a no-op.
CREATE TABLE deliveries (
    id {pk},
    key TEXT NOT NULL UNIQUE,
    alert_id BIGINT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'Alert',
    text TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    link TEXT NOT NULL DEFAULT '',
    reply_to TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    in_doubt INTEGER NOT NULL DEFAULT 0,
    due_at DOUBLE PRECISION NOT NULL,
    lease_until DOUBLE PRECISION,
    worker TEXT NOT NULL DEFAULT '',
    first_attempt_at DOUBLE PRECISION,
    last_error TEXT NOT NULL DEFAULT '',
    provider_id TEXT NOT NULL DEFAULT '',
    provider_status TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX deliveries_ready ON deliveries (state, due_at);
CREATE INDEX deliveries_alert ON deliveries (alert_id, channel, state);
CREATE INDEX deliveries_recipient ON deliveries (recipient, state);

CREATE TABLE subscribers (
    phone TEXT NOT NULL,
    territory TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (phone, territory)
);
CREATE INDEX subscribers_territory ON subscribers (territory);

-- Numbers that must receive nothing: STOP, or a provider saying the number is invalid or unsubscribed.
CREATE TABLE opt_outs (
    phone TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE questions (
    id {pk},
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    territories TEXT NOT NULL DEFAULT '[]',
    authority TEXT NOT NULL DEFAULT '',
    topic TEXT NOT NULL DEFAULT '',
    in_scope INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'new',
    answer TEXT NOT NULL DEFAULT '',
    escalation_id BIGINT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX questions_status ON questions (status, created_at);

CREATE TABLE escalations (
    id {pk},
    authority TEXT NOT NULL,
    topic TEXT NOT NULL,
    window_start DOUBLE PRECISION NOT NULL,
    question_count INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'open',
    created_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    acknowledged_at DOUBLE PRECISION,
    last_question_at DOUBLE PRECISION,
    UNIQUE (authority, topic, window_start)
);

CREATE TABLE episodes (
    territory TEXT PRIMARY KEY,
    active INTEGER NOT NULL DEFAULT 0,
    started_at DOUBLE PRECISION,
    started_by TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    ended_at DOUBLE PRECISION
);
