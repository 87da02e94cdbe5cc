"""API keys: `bosun_<id>_<secret>`. The store keeps the SHA-256 of the secret, never the key.

A key carries a tenant and a role. Four roles work inside their tenant, one manages the
platform:

    viewer    read runs, events, approvals, agents, kill switches and costs of its tenant
    operator  + submit, cancel, pause and roll back runs; set and clear its tenant's kill switch
    approver  + approve and deny its tenant's approvals
    admin     everything above, plus its own tenant's keys (never a platform key)
    platform  everything admin does in its own tenant, plus keys of every tenant, the list of
              tenants, platform-wide kill switches (global, agent:X, tool:X, tenant:X) and
              /metrics

Management crosses tenants, data never does: even a platform key sees only its own tenant's
runs, approvals, events and costs (another tenant's answer 404, like everyone else's).

A policy rule may name who must decide (`approver_role: supervisor`). An approver key decides
the plain `approver` approvals and those whose role it was created with
(`bosun keys create --role approver --approves supervisor`); an admin or platform key decides
any of its tenant's (it could create such a key anyway, and the audit trail names it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from bosun.errors import BosunError
from bosun.journal.audit import AuditEntry
from bosun.store.base import ApiKey, Store

ROLES = ("viewer", "operator", "approver", "admin", "platform")

# Permissions: read, operate, approve, admin (its tenant's keys), platform (every tenant's).
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "operate"}),
    "approver": frozenset({"read", "approve"}),
    "admin": frozenset({"read", "operate", "approve", "admin"}),
    "platform": frozenset({"read", "operate", "approve", "admin", "platform"}),
}


def roles_granting(permission: str) -> str:
    """The roles that hold `permission`, for error messages: "operator, admin or platform"."""
    roles = [r for r in ROLES if permission in PERMISSIONS[r]]
    return ", ".join(roles[:-1]) + " or " + roles[-1] if len(roles) > 1 else roles[0]


_KEY = re.compile(r"^bosun_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_APPROVAL_ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


DEFAULT_APPROVER = "approver"  # the approval role of a rule that names none


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, tenant and role (and the key's name, for audit)."""

    key_id: str
    tenant: str
    role: str
    name: str
    approves: frozenset[str] = frozenset()  # approval roles beyond the default `approver`

    @classmethod
    def of(cls, key: ApiKey) -> Principal:
        return cls(key.id, key.tenant, key.role, key.name, frozenset(key.approves))

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}({self.name})"

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    def may_decide(self, approval_role: str) -> bool:
        """Whether this caller may approve or deny an approval (of its own tenant: callers
        check the tenant first) that asks for `approval_role`."""
        if not self.can("approve"):
            return False
        return (
            self.can("admin") or approval_role == DEFAULT_APPROVER or approval_role in self.approves
        )

    def manages(self, tenant: str) -> bool:
        """Whether this caller may create, list and revoke `tenant`'s keys."""
        return self.can("platform") or (self.can("admin") and tenant == self.tenant)

    def may_see_switch(self, scope: str) -> bool:
        """Every key sees the platform-wide switches; a tenant's own only its tenant."""
        kind, _, name = scope.partition(":")
        return kind != "tenant" or name == self.tenant or self.can("platform")

    def may_set_switch(self, scope: str) -> bool:
        """Operators set their own tenant's switch; every other scope stops other tenants
        too (global, agent:X, tool:X, tenant:<another>) and needs a platform key."""
        return self.can("platform") or (self.can("operate") and scope == f"tenant:{self.tenant}")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    match = _KEY.match(text.strip())
    return (match.group(1), match.group(2)) if match else None


def check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise BosunError(
            f"tenant {tenant!r}: use 1-64 letters, digits, '.', '-' or '_', starting with a"
            " letter or digit"
        )
    return tenant


async def create_key(
    store: Store,
    *,
    tenant: str,
    role: str,
    name: str,
    approves: tuple[str, ...] = (),
    by: str = "cli",
) -> tuple[ApiKey, str]:
    """Create a key; returns its record and the full key text (shown once, never stored)."""
    if role not in ROLES:
        raise BosunError(f"role {role!r}: use one of {', '.join(ROLES)}")
    check_tenant(tenant)
    approves = tuple(dict.fromkeys(r.strip() for r in approves if r.strip()))
    for approval_role in approves:
        if not _APPROVAL_ROLE.match(approval_role):
            raise BosunError(
                f"approval role {approval_role!r}: use 1-64 letters, digits, '.', '-' or '_'"
            )
    if approves and not PERMISSIONS[role] >= {"approve"}:
        raise BosunError(
            f"a {role} key cannot approve anything: give --approves to an"
            f" {roles_granting('approve')} key"
        )
    name = name.strip() or role
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = ApiKey(
        id=key_id,
        tenant=tenant,
        role=role,
        name=name[:100],
        hash=hash_secret(secret),
        created_at=time.time(),
        approves=approves,
    )
    await store.create_api_key(record)
    await store.append_audit(
        [
            AuditEntry(
                record.created_at,
                by,
                "api_key_created",
                key_id,
                {"role": role, "name": record.name, "approves": list(approves)},
                tenant,
            )
        ]
    )
    return record, f"bosun_{key_id}_{secret}"


async def revoke_key(store: Store, key_id: str, *, by: str = "cli") -> bool:
    key = await store.get_api_key(key_id)
    if key is None:
        return False
    now = time.time()
    if not await store.revoke_api_key(key_id, now=now):
        return False
    await store.append_audit([AuditEntry(now, by, "api_key_revoked", key_id, {}, key.tenant)])
    return True


async def verify_key(store: Store, text: str) -> tuple[ApiKey | None, str]:
    """The live key `text` names, or (None, why not)."""
    parsed = parse_key(text)
    if parsed is None:
        return None, "malformed key"
    key_id, secret = parsed
    key = await store.get_api_key(key_id)
    if key is None:
        return None, f"unknown key {key_id}"
    if not hmac.compare_digest(key.hash, hash_secret(secret)):
        return None, f"wrong secret for key {key_id}"
    if key.revoked_at is not None:
        return None, f"key {key_id} is revoked"
    return key, ""


async def ensure_first_admin(store: Store) -> str | None:
    """On a database with no keys at all, create the first key and return it (once).

    It is a platform key (tenant `default`): a new install needs one key that can create the
    keys of its tenants, and only the platform role may."""
    if await store.list_api_keys():
        return None
    _, text = await create_key(
        store, tenant="default", role="platform", name="first admin", by="bosun serve"
    )
    return text


@dataclass(frozen=True, slots=True)
class TenantSummary:
    """A tenant as the platform sees it: it exists once a key or a run names it."""

    tenant: str
    keys: int  # live keys
    revoked_keys: int
    runs: int


async def tenants(store: Store) -> list[TenantSummary]:
    """Every tenant seen in keys or runs, by name, with its key and run counts."""
    live: dict[str, int] = {}
    revoked: dict[str, int] = {}
    for key in await store.list_api_keys():
        counts = live if key.revoked_at is None else revoked
        counts[key.tenant] = counts.get(key.tenant, 0) + 1
    runs = await store.runs_by_tenant()
    return [
        TenantSummary(t, live.get(t, 0), revoked.get(t, 0), runs.get(t, 0))
        for t in sorted(live.keys() | revoked.keys() | runs.keys())
    ]
