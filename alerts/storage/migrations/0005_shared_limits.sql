-- What several web and worker processes must share: login throttling, Twilio webhook replays and rate budgets.

-- Failed console logins per (submitted username, client address): each failure past the free ones doubles
-- the wait before the next attempt from that address (an attacker elsewhere cannot lock the user out).
-- Unknown usernames get rows too, so that they answer exactly like known ones.
CREATE TABLE login_failures (
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    delay DOUBLE PRECISION NOT NULL DEFAULT 0,
    next_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_failure_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (username, address)
);
CREATE INDEX login_failures_last ON login_failures (last_failure_at);

-- Webhook deliveries already handled (Twilio MessageSid), kept for a day: a retried webhook is answered once.
CREATE TABLE webhook_replays (
    id TEXT PRIMARY KEY,
    seen_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX webhook_replays_seen ON webhook_replays (seen_at);

-- Shared rate limits (generic cell rate algorithm): one row per budget ("send:mastodon:@crieur41",
-- "questions:address:198.51.100.7"), holding the theoretical arrival time of the next request.
CREATE TABLE rate_budgets (
    name TEXT PRIMARY KEY,
    tat DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_budgets_tat ON rate_budgets (tat);

-- Values that one process computes for all (the hashtag wall's partner posts, a minute at a time).
CREATE TABLE shared_cache (
    name TEXT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    value TEXT NOT NULL DEFAULT ''
);
