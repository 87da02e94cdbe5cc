"""The database fails under a running Bosun: nothing is lost, nothing is done twice, and
everything recovers by itself once the database is back.

Outages are real and driven from the test at known points, never raced with sleeps:

- PostgreSQL: Bosun connects as a database user of its own, with its own
  `application_name`, so the test can terminate exactly Bosun's connections
  (`pg_terminate_backend`) and refuse its new ones (`ALTER ROLE ... NOLOGIN`) while
  other users of the database carry on.
- SQLite: `PRAGMA max_page_count` on the store's own connection caps the file at its
  current size, so every write that needs a new page fails with SQLITE_FULL ("database
  or disk is full"), as on a full disk; raising it again is freeing space.

Each cut happens while every run is provably inside a tool call (it waits at a gate in
`agents/outage_tools.py`), and results come back while the database is down. The tool is
irreversible and not idempotent: an effect recorded twice, or a run parked because its
result was lost, fails the test.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from bosun import Runtime
from bosun.engine.worker import Worker
from bosun.errors import StoreUnavailable
from bosun.journal.events import RunResumed, RunStarted, ToolFinished
from bosun.spec.refs import load_module
from bosun.store.base import RUNNING, RunRecord, RunSummary
from bosun.store.postgres import PostgresStore
from bosun.store.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from server_helpers import start_server, submit, wait_for

TOOLS = Path(__file__).parent / "agents" / "outage_tools.py"
tools = load_module(str(TOOLS))  # the very module the server loads the agent from
GATES = tools.GATES
AGENT = f"{TOOLS}:transfers"
RUNS = 4
ENDED = {"succeeded", "failed", "needs_attention", "cancelled", "killed", "limit_exceeded"}
DEADLINE = 60.0  # a bound on waiting, never part of an assertion


@pytest.fixture
def gates(tmp_path) -> Iterator[None]:
    GATES.reset()
    tools.EFFECTS = tmp_path / "effects.jsonl"
    yield
    GATES.open(*range(1, tools.STEPS + 1))  # no tool thread is left waiting


def wait_ready(c: httpx.Client, check: Callable[[dict], bool], what: str) -> httpx.Response:
    """Poll /readyz until `check` holds for its body."""
    deadline = time.monotonic() + DEADLINE
    while True:
        r = c.get("/readyz")
        if check(r.json()):
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"readiness never showed {what}; last: {r.status_code} {r.text}")
        time.sleep(0.02)


def assert_each_transfer_ran_once(runs: list[str]) -> None:
    done = Counter((e["run_id"], e["step"]) for e in tools.executions())
    assert done == Counter({(r, s): 1 for r in runs for s in range(1, tools.STEPS + 1)})


# -- PostgreSQL ---------------------------------------------------------------------------


@dataclass
class BosunRole:
    """A database user only Bosun's connections use (in the test schema of `pg_url`)."""

    admin_url: str  # the test database as its owner: to cut and restore Bosun's access
    url: str  # what Bosun connects with
    role: str
    password: str
    application_name: str
    schema: str

    def _admin(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def terminate(self) -> int:
        """Kill every backend Bosun has open, and wait until they are gone (as after a
        restart, the server has closed each connection); how many there were."""
        rows = self._admin(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND application_name = %s",
            (self.application_name,),
        )
        assert all(gone for (gone,) in rows), "a backend outlived pg_terminate_backend"
        return len(rows)

    def lease_of(self, run_id: str) -> tuple[str | None, float | None]:
        (row,) = self._admin(
            f'SELECT lease_owner, lease_expires_at FROM "{self.schema}".runs WHERE id = %s',
            (run_id,),
        )
        return row

    def refuse_logins(self) -> None:
        self._admin(f'ALTER ROLE "{self.role}" NOLOGIN')

    def allow_logins(self) -> None:
        self._admin(f'ALTER ROLE "{self.role}" LOGIN')


@pytest.fixture
def bosun_role(pg_url) -> Iterator[BosunRole]:
    info = conninfo_to_dict(pg_url)
    schema = info["options"].partition("search_path=")[2]
    suffix = uuid.uuid4().hex[:10]
    role = BosunRole(
        admin_url=pg_url,
        url="",
        role=f"bosun_outage_{suffix}",
        password=f"pw-{uuid.uuid4().hex}",
        application_name=f"bosun-outage-{suffix}",
        schema=schema,
    )
    role._admin(f"CREATE ROLE \"{role.role}\" LOGIN PASSWORD '{role.password}'")
    role._admin(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{role.role}"')
    host, port, db = info.get("host", "127.0.0.1"), info.get("port", "5432"), info["dbname"]
    role.url = (
        f"postgresql://{role.role}:{role.password}@{host}:{port}/{db}"
        f"?options=-csearch_path%3D{schema}&application_name={role.application_name}"
    )
    yield role
    role.allow_logins()
    role.terminate()
    role._admin(f'DROP OWNED BY "{role.role}" CASCADE')
    role._admin(f'DROP ROLE "{role.role}"')


def test_bosun_serve_rides_out_postgres_outages_and_runs_every_transfer_once(
    bosun_role, gates, caplog
):
    caplog.set_level(logging.INFO, logger="bosun")
    running, stop = start_server(
        bosun_role.url, agents=[AGENT], lease_seconds=1.5, poll_interval=0.05
    )
    state = running.app.state.bosun
    bodies: list[str] = []
    try:
        with running.admin() as c:
            runs = [submit(c, "transfers", f"pay supplier {i}") for i in range(RUNS)]

            # 1. Every connection of Bosun's is terminated while each run is in its first
            # transfer: the results come back over fresh connections.
            GATES.wait_arrived(1, RUNS)
            assert bosun_role.terminate() >= 2  # the shared connection and the writer's
            GATES.open(1)

            # 2. The database is gone while each run is in its second transfer: the worker
            # backs off, readiness is degraded, writes are refused with 503, and the results
            # wait in the writer until the database is back.
            GATES.wait_arrived(2, RUNS)
            bosun_role.refuse_logins()
            assert bosun_role.terminate() >= 2
            down = wait_ready(
                c,
                lambda r: r["status"] == "degraded" and r["workers"] == "backing_off",
                "a worker backing off",
            )
            refused = c.post("/api/runs", json={"agent": "transfers", "input": "in the outage"})
            GATES.open(2)
            GATES.wait_left(2, RUNS)
            waiting = wait_ready(
                c,
                lambda r: (
                    r["store"]["retrying"] == RUNS and r["worker"]["store_errors"]["heartbeat"] >= 1
                ),
                "every result waiting in the writer, and a failed heartbeat",
            )
            bodies += [down.text, refused.text, waiting.text]
            bosun_role.allow_logins()
            back = wait_ready(c, lambda r: r["status"] == "ok", "recovery")

            # 3. Terminated once more, inside the third transfer.
            GATES.wait_arrived(3, RUNS)
            assert bosun_role.terminate() >= 2
            GATES.open(3)
            ended = [wait_for(c, run_id, ENDED, timeout=DEADLINE) for run_id in runs]

            # A run accepted after the outage runs like any other.
            late = submit(c, "transfers", "after the outage")
            ended.append(wait_for(c, late, ENDED, timeout=DEADLINE))
            listed = c.get("/api/runs", params={"limit": 100}).json()
            metrics = c.get("/metrics").text
            final = c.get("/readyz")
        worker_alive = not state.worker_task.done()
    finally:
        GATES.open(1, 2, 3)
        stop()

    assert [r["status"] for r in ended] == ["succeeded"] * (RUNS + 1), ended
    assert_each_transfer_ran_once([*runs, late])
    assert len(listed["runs"]) == RUNS + 1  # the refused submission created nothing

    assert down.status_code == 503
    assert down.json()["database"].startswith("unreachable: StoreUnavailable")
    assert "not permitted to log in" in down.json()["worker"]["last_error"]
    assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
    assert "database cannot be used right now" in refused.json()["detail"]
    assert waiting.status_code == 503 and waiting.json()["writes"] == "failing"
    assert back.status_code == 200 and back.json()["store"]["failing_since"] is None
    assert final.status_code == 200 and final.json()["workers"] == "ok"

    health = state.worker.health
    assert worker_alive and health.restarts == 0 and health.state == "stopped"  # by stop()
    assert health.poll_errors >= 2 and state.worker.store_errors["heartbeat"] >= 1
    polls = next(line for line in metrics.splitlines() if 'where="poll"' in line)
    assert polls.startswith("bosun_worker_store_errors_total") and float(polls.split()[-1]) >= 2

    # Logged once per outage, with a summary when it ended: not once per failed poll.
    failed = [r for r in caplog.records if "the database failed; backing off" in r.message]
    recovered = [r for r in caplog.records if "the database answers again" in r.message]
    assert 1 <= len(failed) < health.poll_errors and len(recovered) == len(failed)
    assert any("is failing" in r.message for r in caplog.records if r.name == "bosun.store")
    assert any("works again" in r.message for r in caplog.records if r.name == "bosun.store")
    for text in [caplog.text, *bodies]:
        assert bosun_role.password not in text


async def pg_store(url: str, **options) -> PostgresStore:
    store = PostgresStore(url, **options)
    await store.open()
    return store


def leased_run(run_id: str, owner: str = "w1", input: str = "hello") -> RunRecord:
    return RunRecord(
        id=run_id,
        agent="support",
        agent_version="support-v1",
        input=input,
        spec={"name": "support", "model": {"provider": "scripted"}},
        status=RUNNING,
        lease_owner=owner,
        lease_expires_at=time.time() + 60,
    )


def started(input: str = "hello") -> RunStarted:
    return RunStarted(ts=1.0, agent="support", agent_version="support-v1", input=input)


def result(call_id: str, size: int = 0) -> ToolFinished:
    return ToolFinished(
        ts=2.0, call_id=call_id, tool="transfer", result={"r": "x" * size}, duration_ms=1.0
    )


def running_summary() -> RunSummary:
    return RunSummary(RUNNING, 1, 1, 0, 0, 0.0)


async def test_postgres_calls_fail_fast_while_the_database_is_gone_and_work_once_it_is_back(
    bosun_role,
):
    store = await pg_store(bosun_role.url, write_retry_seconds=0.5)
    try:
        await store.create_run(leased_run("r1"), [started()])
        assert bosun_role.terminate() >= 2
        assert (await store.get_run("r1")).id == "r1"  # a dead idle connection is replaced

        bosun_role.refuse_logins()
        bosun_role.terminate()
        began = time.monotonic()
        with pytest.raises(StoreUnavailable) as read:
            await store.get_run("r1")
        with pytest.raises(StoreUnavailable) as append:
            await store.append(
                "r1", [result("c1")], first_seq=2, owner="w1", summary=running_summary()
            )
        assert time.monotonic() - began < 10  # failed, not hung
        assert store.health.failing and "not permitted to log in" in store.health.last_error
        for message in (str(read.value), str(append.value), store.health.last_error):
            assert bosun_role.password not in message
            assert f"postgresql://{bosun_role.role}@" in message or "could not" in message

        bosun_role.allow_logins()
        assert (await store.get_run("r1")).last_seq == 1  # the failed append wrote nothing
        await store.append("r1", [result("c1")], first_seq=2, owner="w1", summary=running_summary())
        assert [seq for seq, _ in await store.events("r1")] == [1, 2]
        assert not store.health.failing
    finally:
        bosun_role.allow_logins()
        await store.close()


async def test_postgres_appends_wait_out_an_outage_in_one_batch_and_are_written_once(bosun_role):
    store = await pg_store(bosun_role.url)
    try:
        for i in range(3):
            await store.create_run(leased_run(f"r{i}"), [started()])
        bosun_role.refuse_logins()
        bosun_role.terminate()
        appends = [
            asyncio.create_task(
                store.append(
                    f"r{i}", [result(f"c{i}")], first_seq=2, owner="w1", summary=running_summary()
                )
            )
            for i in range(3)
        ]
        deadline = time.monotonic() + DEADLINE
        while store.health.retrying < 3:  # all three wait in the writer, none has failed
            assert time.monotonic() < deadline and not any(a.done() for a in appends)
            await asyncio.sleep(0.01)
        commits = store.commits
        bosun_role.allow_logins()
        await asyncio.wait_for(asyncio.gather(*appends), DEADLINE)
        assert store.commits - commits <= 2  # the waiting appends went in together
        for i in range(3):
            assert [type(e) for _, e in await store.events(f"r{i}")] == [RunStarted, ToolFinished]
        assert store.health.retrying == 0 and not store.health.failing
    finally:
        bosun_role.allow_logins()
        await store.close()


async def test_postgres_appends_never_hang_when_the_writer_task_has_died(pg_url):
    store = await pg_store(pg_url)
    try:
        await store.create_run(leased_run("r1"), [started()])
        store._writer.cancel()  # as if something had killed the writer
        await asyncio.sleep(0)
        appended = store.append(
            "r1", [result("c1")], first_seq=2, owner="w1", summary=running_summary()
        )
        await asyncio.wait_for(appended, 10)
        assert [seq for seq, _ in await store.events("r1")] == [1, 2]
    finally:
        await store.close()


# -- SQLite ---------------------------------------------------------------------------------

UNLIMITED = 1073741823  # SQLite's default max_page_count


def cap_at_current_size(conn) -> None:
    """Writes that need a new page now fail with SQLITE_FULL, as on a full disk."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")


async def test_sqlite_full_disk_fails_the_call_and_the_store_works_once_space_is_back(
    sqlite_path,
):
    store = SqliteStore(sqlite_path, write_retry_seconds=0.3)
    await store.open()
    try:
        await store.create_run(leased_run("r1"), [started()])
        cap_at_current_size(store.conn)
        big = "x" * 64 * 1024
        with pytest.raises(StoreUnavailable, match="database or disk is full"):
            await store.create_run(leased_run("r2", input=big), [started(big)])
        with pytest.raises(StoreUnavailable, match="database or disk is full"):
            await store.append(
                "r1", [result("c1", 64 * 1024)], first_seq=2, owner="w1", summary=running_summary()
            )
        assert store.health.failing and store.health.retrying == 0
        assert await store.get_run("r2") is None
        assert [seq for seq, _ in await store.events("r1")] == [1]

        store.conn.execute(f"PRAGMA max_page_count = {UNLIMITED}")
        await store.create_run(leased_run("r2", input=big), [started(big)])
        commits = store.commits
        await asyncio.gather(
            *(
                store.append(
                    run_id,
                    [result("c1", 64 * 1024)],
                    first_seq=2,
                    owner="w1",
                    summary=running_summary(),
                )
                for run_id in ("r1", "r2")
            )
        )
        assert store.commits == commits + 1  # group commit works as before
        assert [seq for seq, _ in await store.events("r1")] == [1, 2]
        assert not store.health.failing
    finally:
        store.conn.execute(f"PRAGMA max_page_count = {UNLIMITED}")
        await store.close()


def test_bosun_serve_on_a_full_sqlite_disk_answers_503_then_runs_every_transfer_once(
    tmp_path, gates, caplog
):
    caplog.set_level(logging.INFO, logger="bosun")
    running, stop = start_server(str(tmp_path / "bosun.db"), agents=[AGENT], poll_interval=0.05)
    state = running.app.state.bosun
    store = state.runtime.store
    loop = state.worker_task.get_loop()

    def on_server(fn: Callable[[], object]) -> object:
        """Run `fn` on the server's event loop (the store's connection belongs to it)."""

        async def call() -> object:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(10)

    try:
        with running.admin() as c:
            runs = [submit(c, "transfers", f"pay supplier {i}") for i in range(RUNS)]
            GATES.wait_arrived(1, RUNS)
            on_server(lambda: cap_at_current_size(store.conn))  # the disk is full

            refused = c.post("/api/runs", json={"agent": "transfers", "input": "x" * 65536})
            GATES.open(1)
            GATES.wait_left(1, RUNS)
            down = wait_ready(
                c, lambda r: r["store"]["retrying"] == RUNS, "every result waiting for space"
            )
            on_server(lambda: store.conn.execute(f"PRAGMA max_page_count = {UNLIMITED}"))
            back = wait_ready(c, lambda r: r["status"] == "ok", "recovery")

            GATES.open(2, 3)
            ended = [wait_for(c, run_id, ENDED, timeout=DEADLINE) for run_id in runs]
            late = submit(c, "transfers", "after the outage")
            ended.append(wait_for(c, late, ENDED, timeout=DEADLINE))
        worker_alive = not state.worker_task.done()
    finally:
        GATES.open(1, 2, 3)
        on_server(lambda: store.conn.execute(f"PRAGMA max_page_count = {UNLIMITED}"))
        stop()

    assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
    assert "database or disk is full" in refused.json()["detail"]
    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "degraded" and body["writes"] == "failing"
    assert body["database"] == "ok"  # reads still work: only writes that need space fail
    assert "database or disk is full" in body["store"]["last_error"]
    assert back.status_code == 200 and back.json()["writes"] == "ok"

    assert [r["status"] for r in ended] == ["succeeded"] * (RUNS + 1), ended
    assert_each_transfer_ran_once([*runs, late])
    assert worker_alive and state.worker.health.restarts == 0
    assert store.health.failures >= RUNS  # every failed write was counted...
    logged = [r for r in caplog.records if r.name == "bosun.store" and "is failing" in r.message]
    assert len(logged) == 1  # ...and the outage logged once
    assert any("works again" in r.message for r in caplog.records if r.name == "bosun.store")


# -- the worker loop itself --------------------------------------------------------------


async def test_a_run_whose_step_failed_on_the_store_is_handed_back_and_resumed_here(
    bosun_role, gates
):
    """The database stays away longer than the store retries a result: the run's drive
    fails, and so does giving its lease back. The worker hands the run back itself once the
    database answers (the lease would hold it for ten minutes), claims it again, and
    resumes it from its journal: the idempotent call runs again under the same key."""
    store = PostgresStore(bosun_role.url, write_retry_seconds=0.3)
    async with Runtime(store, lease_seconds=600) as rt:
        worker = Worker(rt, poll_interval=0.02)
        stop = asyncio.Event()
        serving = asyncio.create_task(worker.supervise(stop))
        run_id = await rt.submit(tools.syncs, "sync order 7")
        await asyncio.to_thread(GATES.wait_arrived, 1, 1)
        bosun_role.refuse_logins()
        bosun_role.terminate()
        GATES.open(1)
        deadline = time.monotonic() + DEADLINE
        while not (worker.health.run_errors and worker.health.state == "backing_off"):
            assert time.monotonic() < deadline, worker.health
            await asyncio.sleep(0.01)
        assert (await asyncio.to_thread(bosun_role.lease_of, run_id))[0] == rt.owner
        bosun_role.allow_logins()
        result = await rt.wait(run_id, timeout=DEADLINE)
        events = [e for _, e in await rt.events(run_id)]
        stop.set()
        await serving

    assert result.status == "succeeded"
    assert [type(e) for e in events].count(RunResumed) == 1
    calls = tools.executions()
    assert [c["attempt"] for c in calls] == [1, 2] and calls[0]["key"] == calls[1]["key"]
    assert worker.health.run_errors == 1 and worker.health.restarts == 0


class DiesOnce(Worker):
    """A worker whose loop crashes the first time, as a bug in it would."""

    crashed = False

    async def serve(self, stop=None, *, exit_when_idle=False) -> None:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("a bug in the worker loop")
        await super().serve(stop, exit_when_idle=exit_when_idle)


async def test_a_worker_loop_that_dies_is_restarted_logged_and_counted(sqlite_path, caplog, gates):
    GATES.open(1, 2, 3)
    async with Runtime(sqlite_path) as rt:
        run_id = await rt.submit(tools.transfers, "pay supplier")
        worker = DiesOnce(rt, poll_interval=0.01)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.supervise(stop))
        result = await rt.wait(run_id, timeout=DEADLINE)
        stop.set()
        await asyncio.wait_for(task, DEADLINE)
    assert result.status == "succeeded"
    assert worker.health.restarts == 1
    assert any("starting it again (restart 1)" in r.message for r in caplog.records)
