"""The A2A push configs and their outbox, on SQLite and PostgreSQL: tenant-scoped configs,
a state change recorded once (however many observers), one sender per delivery, and a
deleted config's pending deliveries gone with it."""

from __future__ import annotations

import time

from bosun.spec.vocab import PushStatus
from bosun.store import open_store
from bosun.store.push import PushConfig, PushDelivery


def _config(tenant: str = "acme", id: str = "c1") -> PushConfig:
    return PushConfig(
        tenant=tenant, task_id="run_1", id=id, agent="echo", url="https://hooks.example/x",
        token="t", auth_scheme="Bearer", auth_credentials="secret", created_at=time.time(),
    )  # fmt: skip


def _delivery(state: str, seq: int, id: str, config: str = "c1") -> PushDelivery:
    now = time.time()
    return PushDelivery(
        id=id, tenant="acme", task_id="run_1", config_id=config, state=state, seq=seq,
        body="{}", next_at=now, created_at=now,
    )  # fmt: skip


async def test_configs_are_per_tenant_and_a_change_is_recorded_once(db_url):
    store = open_store(db_url)
    await store.open()
    try:
        await store.put_push_config(_config(), None)
        assert await store.push_config("globex", "run_1", "c1") is None
        assert [c.id for c in await store.push_configs("globex", "run_1")] == []
        got = await store.push_config("acme", "run_1", "c1")
        assert got is not None and got.auth_credentials == "secret" and got.active

        config = got
        assert await store.record_push_state(config, _delivery("WORKING", 3, "d1"), active=True)
        # A second observer of the same change, or a stale one, records nothing.
        assert not await store.record_push_state(config, _delivery("WORKING", 3, "d2"), active=True)
        assert not await store.record_push_state(
            config, _delivery("SUBMITTED", 1, "d3"), active=True
        )
        assert await store.record_push_state(config, _delivery("COMPLETED", 7, "d4"), active=False)
        assert [d.id for d in await store.push_deliveries("acme", "run_1")] == ["d1", "d4"]
        assert await store.active_push_configs(10) == []  # its task ended

        # In order per webhook: the later state waits while the earlier one is owed.
        due = await store.due_push_deliveries(time.time() + 1, 10)
        assert [d.id for d in due] == ["d1"]
        assert await store.claim_push_delivery(due[0], time.time() + 30)
        assert not await store.claim_push_delivery(due[0], time.time() + 30)  # one sender
        await store.finish_push_delivery("d1", PushStatus.PENDING, time.time() + 60, "HTTP 503")
        assert await store.due_push_deliveries(time.time() + 1, 10) == []  # d1 is retried first
        await store.finish_push_delivery("d1", PushStatus.DELIVERED, 0.0, None)
        d1 = (await store.push_deliveries("acme", "run_1"))[0]
        assert (d1.status, d1.attempts, d1.last_error) == (PushStatus.DELIVERED, 1, "HTTP 503")
        assert [d.id for d in await store.due_push_deliveries(time.time() + 1, 10)] == ["d4"]

        assert not await store.delete_push_config("globex", "run_1", "c1")
        assert await store.delete_push_config("acme", "run_1", "c1")
        assert not await store.delete_push_config("acme", "run_1", "c1")
        left = await store.push_deliveries("acme", "run_1")
        assert [(d.id, d.status) for d in left] == [("d1", PushStatus.DELIVERED)]  # d4 went
    finally:
        await store.close()
