"""DBOS on the shared workload: a durable workflow loop with a SQLite system database.

`@DBOS.workflow()` calls a `@DBOS.step()` "model" (instant scripted: a tool call while steps
remain, then a final answer) and a `@DBOS.step()` "tool" (trivial), N and N - 1 times: DBOS
checkpoints each step's output in the system database before the workflow goes on.

    python bench/peer_dbos.py --dir /tmp/b --runs 5 --steps 50 --profile matched
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import sqlalchemy as sa
from common import (
    PROFILES,
    Clock,
    db_bytes,
    emit,
    fresh,
    measures,
    read_settings,
    storage_lengths,
    summarize,
    worker_args,
)
from dbos import DBOS, SetWorkflowID


@DBOS.step()
def model(turn: int, steps: int) -> dict[str, Any]:
    if turn < steps - 1:
        return {"tool_calls": [{"id": f"call_{turn}", "name": "add", "arguments": {"n": turn}}]}
    return {"content": "done"}


@DBOS.step()
def add(n: int) -> int:
    return n + 1


@DBOS.workflow()
def agent(task: str, steps: int) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": task}]
    turn = 0
    while True:
        answer = model(turn, steps)
        turn += 1
        messages.append({"role": "assistant", **answer})
        if not answer.get("tool_calls"):
            return answer["content"]
        for call in answer["tool_calls"]:
            result = add(**call["arguments"])
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": str(result)})


def install_pragmas(profile: str) -> None:
    """Apply the profile's pragmas to every SQLite connection DBOS's engine opens."""
    pragmas = PROFILES[profile]
    if pragmas is None:
        return

    @sa.event.listens_for(sa.engine.Engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        level = dbapi_conn.isolation_level
        dbapi_conn.isolation_level = None  # journal_mode cannot change inside a transaction
        dbapi_conn.execute(f"PRAGMA journal_mode={pragmas['journal_mode']}")
        dbapi_conn.execute(f"PRAGMA synchronous={pragmas['synchronous']}")
        dbapi_conn.isolation_level = level


def launch(path: str) -> dict[str, Any]:
    dbos = DBOS(
        config={"name": "bench", "system_database_url": f"sqlite:///{path}", "log_level": "WARNING"}
    )
    DBOS.launch()
    with dbos._sys_db.engine.connect() as conn:  # read the settings in effect
        return read_settings(conn.connection.dbapi_connection)


def one_run(steps: int) -> Clock:
    with Clock(steps) as clock, SetWorkflowID(uuid.uuid4().hex):
        out = agent("go", steps)
    if out != "done":
        raise SystemExit(f"dbos run ended badly: {out!r}")
    return clock


def main() -> None:
    args = worker_args("DBOS (SQLite system database) per-step overhead and storage")
    install_pragmas(args.profile)
    steps = args.steps
    result: dict[str, Any] = {"framework": "dbos", "profile": args.profile, "steps": steps}

    if measures(args, "time"):
        path = fresh(os.path.join(args.dir, "dbos_time.db"))
        result["settings"] = launch(path)
        one_run(steps)  # warm-up
        clocks = [one_run(steps) for _ in range(args.runs)]
        DBOS.destroy()
        result["runs"] = args.runs
        result.update(summarize([c.wall for c in clocks], [c.cpu for c in clocks]))

    if measures(args, "storage"):
        storage: dict[str, float] = {}
        for n in storage_lengths(args):
            path = fresh(os.path.join(args.dir, f"dbos_storage_{n}.db"))
            settings = launch(path)
            result.setdefault("settings", settings)
            before = db_bytes(path)
            one_run(n)
            after = db_bytes(path)
            DBOS.destroy()
            storage[str(n)] = (after - before) / n
        result["bytes_per_step"] = storage

    emit(result)


if __name__ == "__main__":
    main()
