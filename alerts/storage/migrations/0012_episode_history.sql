-- Every snow episode, not only each territory's current or last one (table episodes): the episode timeline
-- (alerts.timeline) lets one choose a past episode. At most one open episode per territory.
CREATE TABLE episode_history (
    id {pk},
    territory TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    started_by TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    ended_at DOUBLE PRECISION,
    ended_by TEXT NOT NULL DEFAULT '',
    end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX episode_history_territory ON episode_history (territory, started_at);
CREATE UNIQUE INDEX episode_history_open ON episode_history (territory) WHERE ended_at IS NULL;
-- the episodes already recorded: each territory's current or last one
INSERT INTO episode_history (territory, started_at, started_by, reason, ended_at)
    SELECT territory, started_at, started_by, reason, ended_at FROM episodes WHERE started_at IS NOT NULL;
