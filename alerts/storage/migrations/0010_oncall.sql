-- On-call paging (alerts/oncall): one case per thing waiting on a person, paged up its chain until
-- someone acknowledges or decides. `step` is the index in `chain` of the last person paged (-1: none yet);
-- moving it is a conditional UPDATE, so two processes never page the same step twice.

CREATE TABLE oncall_cases (
    subject TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    severity INTEGER NOT NULL DEFAULT 0,
    chain TEXT NOT NULL DEFAULT '[]',
    step INTEGER NOT NULL DEFAULT -1,
    state TEXT NOT NULL DEFAULT 'open',
    opened_at DOUBLE PRECISION NOT NULL,
    next_at DOUBLE PRECISION NOT NULL,
    deadline DOUBLE PRECISION,
    otherwise TEXT NOT NULL DEFAULT '',
    closed_at DOUBLE PRECISION,
    closed_by TEXT NOT NULL DEFAULT '',
    how TEXT NOT NULL DEFAULT ''
);
CREATE INDEX oncall_cases_state ON oncall_cases (state, next_at);
