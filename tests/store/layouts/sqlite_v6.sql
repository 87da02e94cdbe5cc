CREATE TABLE agent_versions (
    version TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL
)
;;
CREATE TABLE runs (
    no INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    agent TEXT NOT NULL,
    agent_version TEXT NOT NULL REFERENCES agent_versions(version),
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    tenant TEXT NOT NULL,
    user_id TEXT,
    session TEXT,
    tags TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    steps INTEGER NOT NULL DEFAULT 0,
    tool_calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    reason TEXT,
    output TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    journal_deleted INTEGER NOT NULL DEFAULT 0,
    pause_requested INTEGER NOT NULL DEFAULT 0,
    audited_seq INTEGER NOT NULL DEFAULT 0,  -- the journal up to here is in the audit chain
    claims INTEGER NOT NULL DEFAULT 0,  -- claims in a row that found the journal unchanged
    claimed_seq INTEGER NOT NULL DEFAULT 0  -- the journal's last seq at the latest claim
)
;;
CREATE INDEX runs_by_status ON runs(status, lease_expires_at)
;;
CREATE INDEX runs_by_created ON runs(created_at)
;;
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    blob TEXT
)
;;
CREATE UNIQUE INDEX events_by_run ON events(run, seq)
;;
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    data BLOB NOT NULL
)
;;
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    role TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    on_expiry TEXT NOT NULL,
    escalate_to TEXT,
    decided_by TEXT,
    decided_at REAL,
    comment TEXT,
    edited_arguments TEXT,
    replaces TEXT
)
;;
CREATE INDEX approvals_by_status ON approvals(status, created_at)
;;
CREATE INDEX approvals_by_run ON approvals(run_id)
;;
CREATE TABLE kill_switches (
    scope TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at REAL NOT NULL
)
;;
CREATE TABLE breakers (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    opened_at REAL,
    probe_until REAL
)
;;
CREATE TABLE rate_counters (
    key TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    count INTEGER NOT NULL
)
;;
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL,
    approves TEXT NOT NULL DEFAULT ''
)
;;
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
)
;;
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    tenant TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)
;;
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    count INTEGER NOT NULL,
    ts REAL NOT NULL
)
