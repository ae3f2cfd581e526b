-- The outbox: the statements that own the `deliveries` table (see outbox.py for the lifecycle).
-- Every transition names the state it starts from and, once a worker holds the row, that worker: an
-- update that matches no row means the lease was lost, and the caller is told.

-- enqueue --
-- A key already present is left as it is: a second enqueue of the same delivery is a no-op.
INSERT INTO deliveries (key, alert_id, channel, recipient, kind, text, subject, link, reply_to, extra,
                        due_at, created_at, updated_at, priority)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11, $12)
ON CONFLICT (key) DO NOTHING;

-- enqueue_subscribers --
-- One row per subscriber of the territories reached on the channel's medium ("sms", "email"), each once,
-- never to an opted-out one. $1 is the key of the delivery without its recipient
-- (`delivery_key(..., recipient="")`): the key is that prefix followed by the address, as `delivery_key`
-- builds it. $7 is the priority, $8 the medium, $9 the subject, $10 the link, then the territories.
INSERT INTO deliveries (key, alert_id, channel, recipient, kind, text, subject, link, due_at, created_at,
                        updated_at, priority)
SELECT $1 || s.phone, $2, $3, s.phone, $4, $5, $9, $10, $6, $6, $6, $7
FROM (SELECT DISTINCT phone FROM subscribers WHERE medium = $8 AND territory IN ({territories})) s
WHERE NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = s.phone)
ON CONFLICT (key) DO NOTHING;

-- claim_expired --
-- sending under an expired lease: its worker died mid-send, so it is taken again in doubt. Few rows, found
-- through the partial index deliveries_leased, longest expired first.
-- $1 lease end, $2 worker, $3 now, $4 limit, then the channels.
UPDATE deliveries
SET in_doubt = 1, lease_until = $1, worker = $2, attempts = attempts + 1, updated_at = $3
WHERE id IN (SELECT id FROM deliveries
             WHERE state = 'sending' AND lease_until < $3
             {channels}
             AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = deliveries.recipient)
             ORDER BY lease_until LIMIT $4 {lock})
RETURNING *;

-- claim_queued --
-- queued and due, most severe first, then oldest: read in that order from the partial index
-- deliveries_queued (channel, priority DESC, id), so a claim reads about the batch whatever the backlog.
-- A delivery waits while an older version of its alert is still being sent to the same recipient (see
-- `supersede`). Same parameters as claim_expired.
UPDATE deliveries
SET state = 'sending', lease_until = $1, worker = $2, attempts = attempts + 1,
    first_attempt_at = COALESCE(first_attempt_at, $3), updated_at = $3
WHERE id IN (SELECT id FROM deliveries
             WHERE state = 'queued' AND due_at <= $3
             {channels}
             AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = deliveries.recipient)
             AND NOT EXISTS (SELECT 1 FROM deliveries f
                             WHERE f.superseded_by IS NOT NULL AND f.state = 'sending'
                             AND f.recipient = deliveries.recipient AND f.channel = deliveries.channel
                             AND f.id <> deliveries.id)
             ORDER BY priority DESC, id LIMIT $4 {lock})
RETURNING *;

-- supersede --
-- A newer version ($3) of alert $1 is queued on channel $2: what of the old one is still queued is cancelled,
-- and what is being sent is marked, so that the worker checks before sending (`superseded_among`) and the
-- newer version waits for it (`claim`). One statement: a row going back from sending to queued (a retry)
-- meanwhile is cancelled too. $4 why, $5 now.
UPDATE deliveries
SET state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
    last_error = CASE WHEN state = 'queued' THEN $4 ELSE last_error END,
    superseded_by = $3, updated_at = $5
WHERE alert_id = $1 AND channel = $2 AND state IN ('queued', 'sending');

-- withheld_among --
-- Which of these deliveries must not be sent now (asked just before sending), and why: a newer version of
-- their alert replaced them, or their recipient opted out.
SELECT id, CASE WHEN superseded_by IS NOT NULL THEN 'superseded' ELSE 'opt-out' END AS why
FROM deliveries
WHERE id IN ({ids})
  AND (superseded_by IS NOT NULL OR EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = deliveries.recipient));

-- renew --
-- "Held by $2" is written `CASE WHEN state = 'sending' THEN worker END = $2` here and in mark_sent, so that
-- the rows are found through the ids (the primary key) and never through an index that has `state`: during a
-- fan-out such an index holds one dead entry per row already sent until VACUUM, and PostgreSQL, trusting
-- `state = 'sending'` to be selective, read them all (after 19,000 SMS, a mark_sent of 200 rows read 19,000
-- entries and took 85 ms instead of 3).
-- Returns the ids renewed: a row that another worker took meanwhile (this one's lease had lapsed) is not.
-- {lock} skips the rows locked by another statement (PostgreSQL), above all this worker's own mark_sent
-- on another connection, which is recording them as sent: waiting for one another's rows, locked in
-- different orders, the two statements deadlocked, and PostgreSQL ended one after a second's wait (seen
-- every 10 to 40 s in a fan-out by 3 processes; a lost renewal let leases lapse). Outbox.renew asks again
-- for the rows skipped that were still this worker's.
UPDATE deliveries SET lease_until = $1
WHERE id IN (SELECT id FROM deliveries
             WHERE id IN ({ids}) AND CASE WHEN state = 'sending' THEN worker END = $2 {lock})
RETURNING id;

-- held --
-- Which of these deliveries ($2...) `worker` ($1) holds, as last committed (no lock taken or waited for).
SELECT id FROM deliveries WHERE id IN ({ids}) AND CASE WHEN state = 'sending' THEN worker END = $1;

-- mark_sent --
-- A batch in one statement. $1 a JSON array of [id, provider id, provider status], $2 worker, $3 now;
-- {elements} reads the array (json_each / json_array_elements). Returns the ids this worker still held,
-- and has now recorded as sent.
UPDATE deliveries
SET state = 'sent', provider_id = v.pid, provider_status = v.pstatus, sent_at = $3, updated_at = $3,
    lease_until = NULL, last_error = ''
FROM (SELECT CAST(value ->> 0 AS BIGINT) AS did, value ->> 1 AS pid, value ->> 2 AS pstatus
      FROM {elements}) AS v
WHERE id = v.did AND CASE WHEN state = 'sending' THEN worker END = $2
RETURNING id;

-- mark_retry --
-- $1 id, $2 worker, $3 due at, $4 error, $5 now, $6 in doubt.
UPDATE deliveries
SET state = 'queued', due_at = $3, last_error = $4, lease_until = NULL, updated_at = $5, in_doubt = $6
WHERE id = $1 AND state = 'sending' AND worker = $2;

-- mark_ended --
-- failed, dead or cancelled. $1 id, $2 worker, $3 state, $4 error, $5 now.
UPDATE deliveries
SET state = $3, last_error = $4, lease_until = NULL, updated_at = $5
WHERE id = $1 AND state = 'sending' AND worker = $2;

-- mark_in_doubt --
-- A send cancelled under way (its worker was cancelled, not stopped): the provider may have accepted it, so
-- whoever sends it next asks first. $1 id, $2 worker.
UPDATE deliveries SET in_doubt = 1
WHERE id = $1 AND CASE WHEN state = 'sending' THEN worker END = $2;

-- release --
-- A worker stopping gives back its leases, and the attempts they counted: all of them, or with {only} those
-- of the deliveries $3... (the in-doubt flag stays: a send cut short asks the provider first).
UPDATE deliveries
SET state = 'queued', lease_until = NULL, attempts = attempts - 1, updated_at = $2
WHERE state = 'sending' AND worker = $1 {only};

-- cancel_queued_for --
-- Opt-out: what is still queued for the number is cancelled ($2 says why).
UPDATE deliveries SET state = 'cancelled', last_error = $2, updated_at = $3
WHERE recipient = $1 AND state = 'queued';

-- erase_recipient --
-- RGPD erasure: the number and the texts sent to it are forgotten; what was queued is cancelled.
UPDATE deliveries
SET recipient = 'effacé', text = '', state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END
WHERE recipient = $1;

-- messages_to --
SELECT alert_id, channel, state, text, sent_at FROM deliveries WHERE recipient = $1 ORDER BY id;

-- set_provider_status --
-- A provider's later word on a sent delivery (Twilio status callback: delivered, failed...).
UPDATE deliveries
SET provider_status = $2, last_error = CASE WHEN $3 = '' THEN last_error ELSE $3 END, updated_at = $4
WHERE key = $1;

-- set_provider_status_by_id --
-- The same, for a provider whose receipt names only its own message id ($1, as kept in provider_id).
UPDATE deliveries
SET provider_status = $2, last_error = CASE WHEN $3 = '' THEN last_error ELSE $3 END, updated_at = $4
WHERE provider_id = $1 AND provider_id <> ''
RETURNING recipient;

-- latest_receipts --
-- The provider's last word on the latest messages sent to a number ($1), newest first, $2 of them.
SELECT provider_status FROM deliveries
WHERE recipient = $1 AND state = 'sent' AND provider_status <> '' ORDER BY sent_at DESC LIMIT $2;

-- receipts --
-- Per alert and channel, how many sent messages the provider says were delivered or not ($1 alert or NULL).
SELECT alert_id, channel, provider_status, COUNT(*) AS n FROM deliveries
WHERE state = 'sent' AND (CAST($1 AS BIGINT) IS NULL OR alert_id = $1)
GROUP BY alert_id, channel, provider_status;

-- recipients --
-- Per recipient of one alert ($1): the delivery's state, the provider's receipt and its reason, and why the
-- number was put aside (opt_outs), if it was. $2 the view: 'all', 'delivered', 'failed' (the send failed
-- or the receipt says not delivered) or 'aside'; $3 limit.
SELECT d.channel, d.recipient, d.state, d.provider_status, d.last_error, d.attempts, d.updated_at,
       COALESCE(o.reason, '') AS aside
FROM deliveries d LEFT JOIN opt_outs o ON o.phone = d.recipient
WHERE d.alert_id = $1
  AND ($2 = 'all'
       OR ($2 = 'delivered' AND d.provider_status = 'delivered')
       OR ($2 = 'failed' AND (d.state IN ('failed', 'dead') OR d.provider_status IN ('undelivered', 'failed')))
       OR ($2 = 'aside' AND o.reason IN ('undeliverable', 'invalid', 'unsubscribe')))
ORDER BY d.channel, d.id LIMIT $3;

-- recipient_counts --
-- How many recipients of one alert ($1) each view of `recipients` holds.
SELECT COUNT(*) AS total,
       SUM(CASE WHEN d.provider_status = 'delivered' THEN 1 ELSE 0 END) AS delivered,
       SUM(CASE WHEN d.state IN ('failed', 'dead') OR d.provider_status IN ('undelivered', 'failed')
                THEN 1 ELSE 0 END) AS failed,
       SUM(CASE WHEN o.reason IN ('undeliverable', 'invalid', 'unsubscribe') THEN 1 ELSE 0 END) AS aside
FROM deliveries d LEFT JOIN opt_outs o ON o.phone = d.recipient
WHERE d.alert_id = $1;

-- by_key --
SELECT * FROM deliveries WHERE key = $1;

-- list --
-- $1 alert id or NULL, $2 state or NULL, $3 limit.
SELECT * FROM deliveries
WHERE (CAST($1 AS BIGINT) IS NULL OR alert_id = $1) AND (CAST($2 AS TEXT) IS NULL OR state = $2)
ORDER BY id LIMIT $3;

-- progress --
-- $1 one minute ago; per alert, channel and state.
SELECT alert_id, channel, state, COUNT(*) AS n, SUM(CASE WHEN sent_at >= $1 THEN 1 ELSE 0 END) AS recent,
       MIN(first_attempt_at) AS started, MAX(sent_at) AS last_sent
FROM deliveries WHERE (CAST($2 AS BIGINT) IS NULL OR alert_id = $2)
GROUP BY alert_id, channel, state ORDER BY alert_id, channel;

-- backlog --
-- The deliveries not finished, by channel and state, and the oldest queued one's creation time: read through
-- the partial indexes deliveries_queued and deliveries_leased, so that a scrape of /metrics costs the backlog,
-- not the history (counting every delivery by state took 300 ms on SQLite after 1,000,000 deliveries, in the
-- database thread the worker shares).
SELECT channel, 'queued' AS state, COUNT(*) AS n, MIN(created_at) AS oldest
FROM deliveries WHERE state = 'queued' GROUP BY channel
UNION ALL
SELECT channel, 'sending' AS state, COUNT(*) AS n, NULL AS oldest
FROM deliveries WHERE state = 'sending' GROUP BY channel;
