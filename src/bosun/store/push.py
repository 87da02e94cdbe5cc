"""A2A push notifications in the store: each task's webhook configs, and the outbox of
deliveries (one row per config and observed task state change).

Why an outbox: a task's state change is observed (and its payload written here) before
anything is sent, so a server that stops between the change and the POST still delivers
it when any server next runs the delivery loop; a delivery is marked `delivered` only
after the webhook answered 2xx, or `failed` after its last retry. Both tables are
tenant-scoped like runs: a config is found by (tenant, task, id), so another tenant's
config does not exist for you. SQL both dialects share (`?` placeholders; `pg()` for
psycopg); each backend's `push.py` runs it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from bosun.spec.vocab import PushStatus

CONFIGS = """CREATE TABLE IF NOT EXISTS a2a_push_configs (
    tenant TEXT NOT NULL,
    task_id TEXT NOT NULL,
    id TEXT NOT NULL,
    agent TEXT NOT NULL,
    url TEXT NOT NULL,
    token TEXT NOT NULL,
    auth_scheme TEXT NOT NULL,
    auth_credentials TEXT NOT NULL,
    created_at {real} NOT NULL,
    last_state TEXT NOT NULL,
    last_seq {bigint} NOT NULL,
    active INTEGER NOT NULL,
    PRIMARY KEY (tenant, task_id, id)
)"""
CONFIGS_INDEX = "CREATE INDEX IF NOT EXISTS a2a_push_configs_active ON a2a_push_configs(active)"
DELIVERIES = """CREATE TABLE IF NOT EXISTS a2a_push_deliveries (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    task_id TEXT NOT NULL,
    config_id TEXT NOT NULL,
    state TEXT NOT NULL,
    seq {bigint} NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_at {real} NOT NULL,
    last_error TEXT,
    created_at {real} NOT NULL,
    finished_at {real}
)"""
DELIVERIES_INDEX = "CREATE INDEX IF NOT EXISTS a2a_push_due ON a2a_push_deliveries(status, next_at)"
DELIVERIES_BY_TASK = (
    "CREATE INDEX IF NOT EXISTS a2a_push_by_task ON a2a_push_deliveries(tenant, task_id)"
)

_CONFIG_COLUMNS = (
    "tenant, task_id, id, agent, url, token, auth_scheme, auth_credentials, created_at,"
    " last_state, last_seq, active"
)
_DELIVERY_COLUMNS = (
    "id, tenant, task_id, config_id, state, seq, body, status, attempts, next_at, last_error,"
    " created_at, finished_at"
)
# A config created again with the same id replaces the old one (its url, credentials) and
# starts observing afresh; its pending deliveries go (they were for the old webhook).
DELETE_CONFIG = "DELETE FROM a2a_push_configs WHERE tenant = ? AND task_id = ? AND id = ?"
DELETE_PENDING = (
    "DELETE FROM a2a_push_deliveries WHERE tenant = ? AND task_id = ? AND config_id = ?"
    " AND status = 'pending'"
)
INSERT_CONFIG = (
    f"INSERT INTO a2a_push_configs({_CONFIG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DELIVERY = (
    f"INSERT INTO a2a_push_deliveries({_DELIVERY_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
READ_CONFIG = (
    f"SELECT {_CONFIG_COLUMNS} FROM a2a_push_configs WHERE tenant = ? AND task_id = ? AND id = ?"
)
TASK_CONFIGS = (
    f"SELECT {_CONFIG_COLUMNS} FROM a2a_push_configs WHERE tenant = ? AND task_id = ?"
    " ORDER BY created_at, id"
)
ACTIVE_CONFIGS = (
    f"SELECT {_CONFIG_COLUMNS} FROM a2a_push_configs WHERE active = 1 ORDER BY created_at LIMIT ?"
)
# Record a state change once: only a config at this or an older journal position, in another
# state, moves on,
# so two servers observing the same change (or one observing it twice) record it once.
ADVANCE = (
    "UPDATE a2a_push_configs SET last_state = ?, last_seq = ?, active = ?"
    " WHERE tenant = ? AND task_id = ? AND id = ? AND last_seq <= ? AND last_state <> ?"
)
# Due, and the oldest pending one of its webhook: a webhook gets its task's states in the
# order they happened (a later state waits while an earlier one is retried).
DUE = (
    f"SELECT {_DELIVERY_COLUMNS} FROM a2a_push_deliveries d WHERE status = 'pending'"
    " AND next_at <= ? AND NOT EXISTS (SELECT 1 FROM a2a_push_deliveries e"
    "  WHERE e.tenant = d.tenant AND e.task_id = d.task_id AND e.config_id = d.config_id"
    "  AND e.status = 'pending'"
    "  AND (e.created_at < d.created_at OR (e.created_at = d.created_at AND e.seq < d.seq)))"
    " ORDER BY next_at LIMIT ?"
)
# Claim a due delivery for `lease` seconds (longer than a POST's timeout): one sender.
CLAIM = (
    "UPDATE a2a_push_deliveries SET next_at = ?, attempts = attempts + 1"
    " WHERE id = ? AND status = 'pending' AND next_at = ?"
)
# The last error stays after a later attempt succeeds: what went wrong before it did.
FINISH = (
    "UPDATE a2a_push_deliveries SET status = ?, next_at = ?, last_error = coalesce(?, last_error),"
    " finished_at = ?"
    " WHERE id = ?"
)
TASK_DELIVERIES = (
    f"SELECT {_DELIVERY_COLUMNS} FROM a2a_push_deliveries WHERE tenant = ? AND task_id = ?"
    " ORDER BY created_at, seq"
)
CONFIG_EXISTS = "SELECT 1 FROM a2a_push_configs WHERE tenant = ? AND task_id = ? AND id = ?"


def ddl_statements(render: Callable[[str], str]) -> list[str]:
    return [
        render(CONFIGS),
        CONFIGS_INDEX,
        render(DELIVERIES),
        DELIVERIES_INDEX,
        DELIVERIES_BY_TASK,
    ]


@dataclass(frozen=True, slots=True)
class PushConfig:
    """A task's webhook (A2A `TaskPushNotificationConfig`), with what was last recorded
    for it: the task state and the run's journal position it was observed at."""

    tenant: str
    task_id: str
    id: str
    agent: str
    url: str
    token: str = ""
    auth_scheme: str = ""
    auth_credentials: str = ""
    created_at: float = 0.0
    last_state: str = ""
    last_seq: int = -1
    active: bool = True

    def row(self) -> tuple:
        return (
            self.tenant, self.task_id, self.id, self.agent, self.url, self.token,
            self.auth_scheme, self.auth_credentials, self.created_at, self.last_state,
            self.last_seq, int(self.active),
        )  # fmt: skip

    @classmethod
    def of(cls, row: tuple) -> PushConfig:
        values = list(row)
        values[11] = bool(values[11])
        return cls(*values)


@dataclass(frozen=True, slots=True)
class PushDelivery:
    """One POST owed to a webhook: the task state it reports and the body to send."""

    id: str
    tenant: str
    task_id: str
    config_id: str
    state: str
    seq: int
    body: str
    status: PushStatus = PushStatus.PENDING
    attempts: int = 0
    next_at: float = 0.0
    last_error: str | None = None
    created_at: float = 0.0
    finished_at: float | None = None

    def row(self) -> tuple:
        return (
            self.id, self.tenant, self.task_id, self.config_id, self.state, self.seq,
            self.body, str(self.status), self.attempts, self.next_at, self.last_error,
            self.created_at, self.finished_at,
        )  # fmt: skip

    @classmethod
    def of(cls, row: tuple) -> PushDelivery:
        values = list(row)
        values[7] = PushStatus(values[7])
        return cls(*values)


class PushStore(abc.ABC):
    """A2A push configs and their delivery outbox (see the module docstring)."""

    @abc.abstractmethod
    async def put_push_config(self, config: PushConfig, first: PushDelivery | None) -> None:
        """Create (or replace, by its id) `config`; with `first`, its first delivery too,
        in the same transaction."""

    @abc.abstractmethod
    async def push_config(self, tenant: str, task_id: str, config_id: str) -> PushConfig | None:
        """The config, or None (also for another tenant's)."""

    @abc.abstractmethod
    async def push_configs(self, tenant: str, task_id: str) -> list[PushConfig]:
        """The task's configs, oldest first."""

    @abc.abstractmethod
    async def delete_push_config(self, tenant: str, task_id: str, config_id: str) -> bool:
        """Delete the config and its pending deliveries; False if there was none."""

    @abc.abstractmethod
    async def active_push_configs(self, limit: int) -> list[PushConfig]:
        """Configs whose task has not been seen to end yet (what the observer watches)."""

    @abc.abstractmethod
    async def record_push_state(
        self, config: PushConfig, delivery: PushDelivery, *, active: bool
    ) -> bool:
        """Move `config` to `delivery`'s state and seq and queue `delivery`, in one
        transaction; False (nothing written) if the config is already at or past it."""

    @abc.abstractmethod
    async def due_push_deliveries(self, now: float, limit: int) -> list[PushDelivery]:
        """Pending deliveries whose time has come, oldest first."""

    @abc.abstractmethod
    async def claim_push_delivery(self, delivery: PushDelivery, until: float) -> bool:
        """Take `delivery` until `until` (one sender across servers); counts an attempt."""

    @abc.abstractmethod
    async def finish_push_delivery(
        self, delivery_id: str, status: PushStatus, next_at: float, error: str | None
    ) -> None:
        """Record an attempt's outcome: delivered, failed, or pending again at `next_at`."""

    @abc.abstractmethod
    async def push_deliveries(self, tenant: str, task_id: str) -> list[PushDelivery]:
        """The task's deliveries, oldest first (what the API and tests show)."""
