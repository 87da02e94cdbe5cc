"""Traces delivered for real: a local Arize Phoenix collector receives them over OTLP (HTTP and
gRPC), and its REST API shows the spans it stored."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from observe_helpers import support_agent

from bosun import Runtime
from bosun.observe.feed import Observer
from bosun.observe.tracing import (
    TraceSink,
    build_tracer_provider,
    otlp_exporter_from_env,
    trace_id_for,
)

pytest.importorskip("phoenix", reason="Phoenix is in the dev extra: pip install -e '.[dev]'")
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory) -> Iterator[dict[str, int]]:
    """A Phoenix server on free ports, its data in a temporary folder."""
    ports = {"http": free_port(), "grpc": free_port()}
    workdir = tmp_path_factory.mktemp("phoenix")
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(ports["http"]),
        "PHOENIX_GRPC_PORT": str(ports["grpc"]),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = open(workdir / "phoenix.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "phoenix.server.main", "serve"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Phoenix exited with {proc.returncode}; see {workdir / 'phoenix.log'}")
            try:
                if httpx.get(f"http://127.0.0.1:{ports['http']}/healthz", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Phoenix not ready after 180 s; see {workdir / 'phoenix.log'}")
            time.sleep(0.5)
        yield ports
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def spans_of_trace(http_port: int, trace_id: int, expected: int) -> list[dict]:
    """Poll Phoenix's REST API until the trace's spans are stored (ingestion is asynchronous)."""
    want = f"{trace_id:032x}"
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(
            f"http://127.0.0.1:{http_port}/v1/projects/default/spans",
            params={"limit": 1000},
            timeout=10,
        )
        response.raise_for_status()
        spans = [s for s in response.json()["data"] if s["context"]["trace_id"] == want]
        if len(spans) >= expected or time.monotonic() > deadline:
            return spans
        time.sleep(0.3)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_phoenix_receives_the_run_trace_over_otlp(
    phoenix, sqlite_path, protocol, monkeypatch
):
    if protocol == "grpc":
        monkeypatch.setenv(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{phoenix['grpc']}"
        )
    else:
        monkeypatch.setenv(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{phoenix['http']}/v1/traces"
        )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    provider = build_tracer_provider(otlp_exporter_from_env())
    async with Runtime(sqlite_path) as rt:
        observer = await Observer(rt.store, [TraceSink(rt.store, provider)]).attach(rt)
        result = await rt.run(support_agent(), "refund 1234", session="conv-1")
        await observer.close()
    provider.shutdown()

    spans = spans_of_trace(phoenix["http"], trace_id_for(result.run_id), expected=6)
    by_name = {s["name"]: s for s in spans}
    assert sorted(by_name) == [
        "chat gpt-4o-mini", "execute_tool lookup", "execute_tool refund", "invoke_agent support",
    ]  # fmt: skip
    assert len(spans) == 6
    root = by_name["invoke_agent support"]
    assert root["parent_id"] is None
    assert all(s["parent_id"] == root["context"]["span_id"] for s in spans if s is not root)
    assert root["attributes"]["gen_ai.conversation.id"] == "conv-1"
    assert root["attributes"]["gen_ai.usage.input_tokens"] == result.input_tokens
    tool = by_name["execute_tool refund"]["attributes"]
    assert tool["gen_ai.tool.name"] == "refund"
    assert tool["bosun.policy.decision"] == "allow"
