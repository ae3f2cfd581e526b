-- Claiming costs the batch, not the backlog: what is queued is read in id order per channel, and what
-- a dead worker left (its lease expired) by lease end, each through an index of only the rows in that
-- state (a sent row leaves both). deliveries_ready (state, due_at) goes: the planners preferred it for the
-- claim and then sorted the whole backlog to find the oldest 500.
DROP INDEX deliveries_ready;
CREATE INDEX deliveries_queued ON deliveries (channel, id) WHERE state = 'queued';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'sending';
