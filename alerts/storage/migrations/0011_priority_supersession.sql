-- Priority and supersession of deliveries (issue 15).
-- priority: the alert's severity (0 unknown .. 4 extreme); severe alerts are claimed before information.
-- superseded_by: set on a delivery that was already being sent when a newer version of its alert came; the
-- newer version's delivery to the same recipient waits until this one is finished, so that nobody receives
-- the old text after the new one.
ALTER TABLE deliveries ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN superseded_by BIGINT;
-- The claim reads queued rows in (priority, id) order per channel (replaces 0009's (channel, id) index).
DROP INDEX deliveries_queued;
CREATE INDEX deliveries_queued ON deliveries (channel, priority DESC, id) WHERE state = 'queued';
CREATE INDEX deliveries_superseded_in_flight ON deliveries (recipient, channel)
    WHERE superseded_by IS NOT NULL AND state = 'sending';
