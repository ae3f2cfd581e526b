-- Subscriptions made on the web, e-mail subscribers, and the consents kept for RGPD (issue 15).
-- subscribers.medium: how a subscriber is reached, "sms" (phone = an E.164 number) or "email" (phone = an
-- e-mail address); a subscriber channel (Twilio, OVHcloud, e-mail) takes the subscribers of its medium.
ALTER TABLE subscribers ADD COLUMN medium TEXT NOT NULL DEFAULT 'sms';
CREATE INDEX subscribers_medium_territory ON subscribers (medium, territory);

-- A subscription asked on the web, waiting for its double opt-in: the code sent by SMS (its SHA-256 only,
-- with the wrong attempts counted) or the link sent by e-mail. `places` is the JSON list of place keys
-- (alerts.places) it will subscribe to, `labels` how to say them.
CREATE TABLE pending_subscriptions (
    id {pk},
    medium TEXT NOT NULL,
    address TEXT NOT NULL,
    places TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '[]',
    code_hash TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    consent_version TEXT NOT NULL,
    consent_text TEXT NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    confirmed_at DOUBLE PRECISION
);
CREATE INDEX pending_subscriptions_address ON pending_subscriptions (address, created_at);

-- The consent a subscriber gave: when, to which text (version and words), on what (medium, and `via`:
-- "web" or "sms"), for which places, from which address (optional); and when it was withdrawn.
CREATE TABLE consents (
    id {pk},
    address TEXT NOT NULL,
    medium TEXT NOT NULL,
    via TEXT NOT NULL,
    places TEXT NOT NULL,
    text_version TEXT NOT NULL,
    text TEXT NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    asked_at DOUBLE PRECISION NOT NULL,
    given_at DOUBLE PRECISION NOT NULL,
    withdrawn_at DOUBLE PRECISION
);
CREATE INDEX consents_address ON consents (address);
