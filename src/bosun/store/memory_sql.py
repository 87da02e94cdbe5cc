"""The memory layer's tables (`bosun.memory`), for both dialects: session marks (forks and
clears), long-term facts, their lexical index and their embeddings.

Kept in the store layer because the layout and its migrations are the store's; the code
that reads and writes them is `bosun.memory`'s. A session's conversation has no table: it
is rebuilt from the journal of the session's runs (`bosun.memory.sessions`); the marks only
say where a fork starts and where a clear cuts.
"""

from __future__ import annotations

from bosun.store import ddl

# Append-only: a fork (`kind` fork: `source` is the session it continues, up to `source_at`)
# or a clear (everything before `at` is out of the conversation). Never updated, so the
# conversation a run saw is the same when it resumes.
SESSION_MARKS = """CREATE TABLE IF NOT EXISTS session_marks (
    tenant TEXT NOT NULL,
    session TEXT NOT NULL,
    kind TEXT NOT NULL,
    at {real} NOT NULL,
    source TEXT,
    source_at {real},
    actor TEXT NOT NULL DEFAULT ''
)"""
SESSION_MARKS_INDEX = (
    "CREATE INDEX IF NOT EXISTS session_marks_by_session ON session_marks(tenant, session, at)"
)
RUNS_BY_SESSION = (
    "CREATE INDEX IF NOT EXISTS runs_by_session ON runs(tenant, session, created_at)"
    " WHERE session IS NOT NULL"
)

# One fact. `num` is the integer key the lexical and vector indexes use; `id` the public one.
# Scope: (`scope`, `scope_id`) is tenant/-, user/<id>, agent/<name>, team/<root run id>.
# Provenance: the run and call that wrote it, the system it came from (`source`), whether
# that source is trusted, when it was observed, until when it holds (`valid_until`).
_MEMORIES = """CREATE TABLE IF NOT EXISTS memories (
    num {key},
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    trusted {bool} NOT NULL,
    run_id TEXT,
    call_id TEXT,
    observed_at {real} NOT NULL,
    valid_until {real},
    superseded_by TEXT,
    created_at {real} NOT NULL{extra}
)"""
MEMORIES_INDEX = (
    "CREATE INDEX IF NOT EXISTS memories_by_key"
    " ON memories(tenant, scope, scope_id, subject, attribute)"
)
# Embeddings, one per fact and embedding model (float32 bytes); deleted with the fact.
MEMORY_VECTORS = """CREATE TABLE IF NOT EXISTS memory_vectors (
    num {bigint} PRIMARY KEY,
    tenant TEXT NOT NULL,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector {bytes} NOT NULL
)"""
MEMORY_VECTORS_INDEX = (
    "CREATE INDEX IF NOT EXISTS memory_vectors_by_tenant ON memory_vectors(tenant)"
)

# SQLite: FTS5 keyed by `memories.num` (rowid); the memory layer writes and deletes its rows
# with the fact's, in one transaction.
SQLITE_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5("
    "subject, attribute, value, tokenize = 'porter unicode61')"
)
# PostgreSQL: a generated tsvector and its GIN index (deleted with the row itself).
_PG_TSV = (
    ",\n    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english',"
    " subject || ' ' || attribute || ' ' || value)) STORED"
)
PG_FTS_INDEX = "CREATE INDEX IF NOT EXISTS memories_tsv ON memories USING GIN (tsv)"


def statements(dialect: ddl.Dialect) -> list[str]:
    """Every statement of the memory tables, in order, for `dialect`."""
    if dialect == "sqlite":
        memories = _MEMORIES.format(
            key="INTEGER PRIMARY KEY", bool="INTEGER", real="REAL", extra=""
        )
        fts = [SQLITE_FTS]
    else:
        memories = _MEMORIES.format(
            key="BIGSERIAL PRIMARY KEY", bool="BOOLEAN", real="DOUBLE PRECISION", extra=_PG_TSV
        )
        fts = [PG_FTS_INDEX]
    return [
        ddl.render(SESSION_MARKS, dialect),
        SESSION_MARKS_INDEX,
        RUNS_BY_SESSION,
        memories,
        MEMORIES_INDEX,
        *fts,
        ddl.render(MEMORY_VECTORS, dialect),
        MEMORY_VECTORS_INDEX,
    ]
