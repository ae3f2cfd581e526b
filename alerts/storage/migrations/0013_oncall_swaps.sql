-- On-call swaps entered in the console (/console/astreinte): for a dated period, another CM on call (and
-- back-up) than the rota file says, without editing it. They come before every shift of the file; a
-- cancelled one keeps its row (cancelled_at) for the record.
CREATE TABLE oncall_swaps (
    id {pk},
    starts_at DOUBLE PRECISION NOT NULL,
    ends_at DOUBLE PRECISION NOT NULL,
    cm TEXT NOT NULL,
    backup TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    cancelled_at DOUBLE PRECISION
);
CREATE INDEX oncall_swaps_ends ON oncall_swaps (ends_at);
