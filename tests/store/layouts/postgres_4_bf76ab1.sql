CREATE TABLE IF NOT EXISTS agent_versions (
        version TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )
;;
CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        agent_version TEXT NOT NULL REFERENCES agent_versions(version),
        input TEXT NOT NULL,
        status TEXT NOT NULL,
        tenant TEXT NOT NULL,
        user_id TEXT,
        session TEXT,
        tags JSONB NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        steps INTEGER NOT NULL DEFAULT 0,
        tool_calls INTEGER NOT NULL DEFAULT 0,
        input_tokens BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        cost DOUBLE PRECISION NOT NULL DEFAULT 0,
        reason TEXT,
        output TEXT,
        last_seq INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_expires_at DOUBLE PRECISION,
        cancel_requested BOOLEAN NOT NULL DEFAULT false,
        journal_deleted BOOLEAN NOT NULL DEFAULT false
    )
;;
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, lease_expires_at)
;;
CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at)
;;
CREATE TABLE IF NOT EXISTS events (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        data BYTEA NOT NULL,
        blob TEXT,
        PRIMARY KEY (run_id, seq)
    )
;;
CREATE INDEX IF NOT EXISTS events_by_blob ON events(blob) WHERE blob IS NOT NULL
;;
CREATE TABLE IF NOT EXISTS blobs (
        hash TEXT PRIMARY KEY,
        data BYTEA NOT NULL
    )
;;
CREATE TABLE IF NOT EXISTS approvals (
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
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        on_expiry TEXT NOT NULL,
        escalate_to TEXT,
        decided_by TEXT,
        decided_at DOUBLE PRECISION,
        comment TEXT,
        edited_arguments TEXT,
        replaces TEXT
    )
;;
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals(status, created_at)
;;
CREATE INDEX IF NOT EXISTS approvals_by_run ON approvals(run_id)
;;
CREATE TABLE IF NOT EXISTS kill_switches (
        scope TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        set_by TEXT NOT NULL,
        set_at DOUBLE PRECISION NOT NULL
    )
;;
CREATE TABLE IF NOT EXISTS rate_counters (
        key TEXT PRIMARY KEY,
        window_start DOUBLE PRECISION NOT NULL,
        count INTEGER NOT NULL
    )
;;
CREATE TABLE IF NOT EXISTS audit (
        seq BIGINT PRIMARY KEY,
        ts DOUBLE PRECISION NOT NULL,
        tenant TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )
;;
CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION,
        last_used_at DOUBLE PRECISION
    )
;;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS approves TEXT NOT NULL DEFAULT ''
;;
CREATE TABLE IF NOT EXISTS console_sessions (
        token_hash TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )
;;
CREATE TABLE IF NOT EXISTS findings (
        run_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        at_seq INTEGER NOT NULL,
        detail TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        agent TEXT NOT NULL,
        tenant TEXT NOT NULL,
        PRIMARY KEY (run_id, kind, at_seq)
    )
;;
CREATE INDEX IF NOT EXISTS findings_by_ts ON findings(ts)
