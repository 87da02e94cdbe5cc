"""Events per second from NATS JetStream to durably created runs (issue 16), on SQLite and
PostgreSQL, against the broker alone (the same messages pulled and acked, no runs).

    .venv/bin/python bench/triggers.py [--messages 2000] [--postgres URL] [--nats URL]

Each round publishes N messages on a fresh subject, then times one queue trigger's consumer
from its start until all N runs are created (each run's first events committed, its
delivery linked, its message acked). No worker drives the runs (this measures the
trigger, not the agent), so `max_in_flight` is set above N. Needs NATS at 127.0.0.1:4222
(and PostgreSQL at 127.0.0.1:5432/test for its row; skipped when unreachable). ~20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bosun.engine.runtime import Runtime
from bosun.triggers.runner import Triggers

ECHO = Path(__file__).resolve().parents[1] / "tests" / "triggers" / "echo.yaml"


async def publish(js, subject: str, n: int) -> None:
    acks = [js.publish(subject, f'{{"text": "event {i}"}}'.encode()) for i in range(n)]
    for start in range(0, n, 500):
        await asyncio.gather(*acks[start : start + 500])


async def raw(nats_url: str, n: int) -> float:
    """The broker alone: pull and ack N messages, batch 64 (as the trigger pulls)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    subject = f"bench.raw.{uuid.uuid4().hex[:8]}"
    stream = "BENCH_" + uuid.uuid4().hex[:8].upper()
    await js.add_stream(name=stream, subjects=[subject])
    await publish(js, subject, n)
    sub = await js.pull_subscribe(subject, durable="bench", stream=stream)
    start = time.perf_counter()
    done = 0
    while done < n:
        msgs = await sub.fetch(batch=64, timeout=5)
        await asyncio.gather(*(m.ack() for m in msgs))
        done += len(msgs)
    elapsed = time.perf_counter() - start
    await js.delete_stream(stream)
    await nc.close()
    return n / elapsed


async def to_runs(db: str, nats_url: str, n: int, folder: Path) -> float:
    name = f"bench-{uuid.uuid4().hex[:6]}"
    subject = f"bench.runs.{uuid.uuid4().hex[:8]}"
    path = folder / f"{name}.yaml"
    path.write_text(
        f"triggers:\n  - name: {name}\n    target: {ECHO}\n    input: .text\n"
        f"    queue: {{subject: {subject}, url: '{nats_url}', max_in_flight: {n + 10}}}\n"
    )
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = "BOSUN_" + name.replace("-", "_").upper()
    await js.add_stream(name=stream, subjects=[subject, f"{subject}.dead"])
    await publish(js, subject, n)
    async with Runtime(db) as rt:
        triggers = Triggers.load(rt, str(path))
        stop = asyncio.Event()
        start = time.perf_counter()
        await triggers.start(stop)
        while True:
            rows = await rt.store.triggers(name)
            if rows and rows[0].started >= n:
                break
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        stop.set()
        await triggers.stop()
        assert len(await rt.store.list_runs(tag=("bosun.trigger", name), limit=n + 1)) == n
    await js.delete_stream(stream)
    await nc.close()
    return n / elapsed


def postgres_schema(url: str) -> tuple[str, str] | None:
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            schema = "bench_" + uuid.uuid4().hex[:8]
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:
        print(f"PostgreSQL not reachable ({exc}): its row is skipped")
        return None
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--nats", default=os.environ.get("BOSUN_TEST_NATS_URL", "nats://127.0.0.1:4222")
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BOSUN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    n = args.messages
    broker = await raw(args.nats, n)
    rows = [("NATS pull + ack, no runs (the broker alone)", broker)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows.append(
            (
                "NATS -> runs, SQLite (WAL, synchronous=NORMAL)",
                await to_runs(str(folder / "b.db"), args.nats, n, folder),
            )
        )
        pg = postgres_schema(args.postgres)
        if pg is not None:
            url, schema = pg
            try:
                rows.append(("NATS -> runs, PostgreSQL", await to_runs(url, args.nats, n, folder)))
            finally:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(
        f"\n{n} messages each; events per second (higher is better), and the share of the broker's rate"
    )
    print(f"{'path':<50} {'events/s':>10} {'vs broker':>10}")
    for label, rate in rows:
        print(f"{label:<50} {rate:>10,.0f} {rate / broker:>10.2f}")


if __name__ == "__main__":
    asyncio.run(main())
