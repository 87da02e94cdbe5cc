"""What PostgreSQL failures look like to the rest of the store: messages whose URL has no
password (`redact`), connections the server closed found without a round trip (`usable`),
and the advisory locks and clock the mixins share."""

from __future__ import annotations

import select

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bosun.store.base import (
    TERMINAL_STATUSES,
)

# The database clock, as epoch seconds.
DB_NOW = "extract(epoch from clock_timestamp())::double precision"

# Advisory locks are per database; key them by schema so stores in different
# schemas of one database do not wait for each other.
SCHEMA_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('bosun.schema:' || coalesce(current_schema(), '')))"
)
# Writers of blob references hold this shared; gc holds it exclusively, so gc never
# deletes a blob that a transaction still in flight is about to reference.
BLOBS_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtext('bosun.blobs:' || coalesce(current_schema(), '')))"
BLOBS_EXCLUSIVE = (
    "SELECT pg_advisory_xact_lock(hashtext('bosun.blobs:' || coalesce(current_schema(), '')))"
)


TERMINAL = sorted(TERMINAL_STATUSES)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "<unparseable PostgreSQL URL>"
    user = info.get("user")
    host = info.get("host", "localhost")
    port = info.get("port")
    db = info.get("dbname", "")
    where = f"{host}:{port}" if port else str(host)
    return f"postgresql://{user + '@' if user else ''}{where}/{db}"


def url_password(url: str) -> str | None:
    try:
        return conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return None


def usable(conn: psycopg.AsyncConnection) -> bool:
    """False if the connection is closed, or the server closed it while it sat idle (the
    backend was terminated, the server restarted). Found out without a round trip, from what
    the socket already holds: the server's goodbye message, then the end of the stream."""
    if conn.broken or conn.closed:
        return False
    try:
        poll = select.poll()  # not select(): it cannot watch descriptors past 1023
        poll.register(conn.fileno(), select.POLLIN)
        for _ in range(3):
            if not poll.poll(0):
                return True
            conn.pgconn.consume_input()
    except (psycopg.Error, OSError):
        return False
    return not conn.broken
