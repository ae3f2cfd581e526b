-- Console. Every post is signed by the person who wrote it: each account has initials (accounts created
-- before they were required get the first two letters of their username), and each audit entry keeps
-- the initials its author had then.

UPDATE users SET initials = UPPER(SUBSTR(username, 1, 2)) WHERE initials = '';

ALTER TABLE audit_log ADD COLUMN initials TEXT NOT NULL DEFAULT '';

-- The newest citizen question each account has seen on its dashboard: newer ones light the console's badge.
ALTER TABLE users ADD COLUMN seen_question_id BIGINT NOT NULL DEFAULT 0;
