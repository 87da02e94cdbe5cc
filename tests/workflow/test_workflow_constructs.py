"""Each supported construct through a real Runtime on SQLite: what a workflow author relies on."""

from __future__ import annotations

import asyncio
import json
import textwrap

import pytest
import wf_funcs

from bosun import Agent, Runtime, Worker
from bosun.errors import SpecError
from bosun.journal.events import ToolFinished, ToolProposed
from bosun.workflow import build, on_emit
from bosun.workflow.runs import fault_of, view

HEAD = """
document: {dsl: '1.0.3', namespace: test, name: NAME, version: '1.0.0'}
"""


def wf(body: str, name: str = "t", **kw):
    text = HEAD.replace("NAME", name) + textwrap.dedent(body)
    return build(text, "t.yaml", functions=[wf_funcs.double, wf_funcs.charge, wf_funcs.flaky], **kw)


async def run(rt: Runtime, w, data=None):
    return await rt.run(w.agent, json.dumps(data if data is not None else {}))


async def finish(rt: Runtime, *run_ids: str, timeout: float = 20.0) -> None:
    """Serve the queue until the runs have ended (timers are swept by the worker)."""
    stop = asyncio.Event()
    worker = Worker(rt, concurrency=2, poll_interval=0.02)
    serving = asyncio.create_task(worker.serve(stop))
    try:
        async with asyncio.timeout(timeout):
            while True:
                runs = [await rt.get_run(r) for r in run_ids]
                if all(r.status in ("succeeded", "failed") for r in runs):
                    return
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await serving


@pytest.fixture
async def rt(tmp_path):
    wf_funcs.CALLS.clear()
    wf_funcs.FLAKY.clear()
    async with Runtime(str(tmp_path / "wf.db")) as runtime:
        yield runtime


async def test_function_call_is_a_governed_tool_call(rt):
    w = wf("""
    do:
      - twice:
          call: double
          with: {n: '${ .n }'}
      - again:
          call: double
          with: {n: '${ .n }'}
    """)
    result = await run(rt, w, {"n": 3})
    assert result.status == "succeeded" and json.loads(result.output) == {"n": 12}
    events = [e for _, e in await rt.events(result.run_id)]
    kinds = [e.kind for e in events]
    assert kinds.count("policy_decided") == 2  # each action passed the policy
    proposed = [e for e in events if isinstance(e, ToolProposed)]
    assert [p.call_id for p in proposed] == ["/do/0/twice", "/do/1/again"]


async def test_policy_denies_an_action_and_the_workflow_can_catch_it(rt):
    policy = {
        "name": "p",
        "rules": [
            {"name": "no-charges", "tools": ["charge"], "effect": "deny", "reason": "not today"}
        ],
    }
    w = wf(
        """
    do:
      - pay:
          try:
            - charge:
                call: charge
                with: {amount: 5}
          catch:
            errors:
              with: {status: 403}
            as: refused
            do:
              - note:
                  set: {refused: '${ $refused.type }'}
    """,
        policy=policy,
    )
    result = await run(rt, w)
    assert result.status == "succeeded", result.reason
    assert json.loads(result.output) == {
        "refused": "https://serverlessworkflow.io/spec/1.0.0/errors/authorization"
    }
    assert wf_funcs.CALLS == []  # nothing was charged


async def test_for_loops_call_the_same_function_without_the_repeat_limit(rt):
    w = wf("""
    do:
      - each:
          for: {each: x, in: '.xs'}
          do:
            - d:
                call: double
                with: {n: 1}
    """)
    result = await run(rt, w, {"xs": list(range(7))})
    assert result.status == "succeeded", result.reason
    assert len(wf_funcs.CALLS) == 7


async def test_retry_runs_the_call_again_after_a_durable_delay(rt):
    w = wf("""
    do:
      - attempt:
          try:
            - f:
                call: flaky
                with: {name: a, fails: 2}
          catch:
            errors:
              with: {status: 500}
            retry:
              delay: {seconds: 0}
              limit: {attempt: {count: 3}}
    """)
    result = await run(rt, w)
    assert result.status == "succeeded", result.reason
    assert json.loads(result.output) == {"attempts": 3}


async def test_retry_gives_up_after_its_limit_and_the_run_faults(rt):
    w = wf("""
    do:
      - attempt:
          try:
            - f:
                call: flaky
                with: {name: b, fails: 9}
          catch:
            retry:
              limit: {attempt: {count: 2}}
    """)
    result = await run(rt, w)
    assert result.status == "failed"
    error = fault_of(result.reason)
    assert error["status"] == 500 and error["instance"] == "/do/0/attempt/try/0/f"
    assert wf_funcs.FLAKY["b"] == 3  # the first try and two retries


async def test_raise_is_caught_by_type(rt):
    w = wf("""
    do:
      - guarded:
          try:
            - boom:
                raise:
                  error:
                    type: https://example.com/errors/too-big
                    status: 422
                    title: '${ "too big: \\(.n)" }'
          catch:
            errors:
              with: {type: https://example.com/errors/too-big}
            do:
              - handled:
                  set: {handled: '${ $error.title }'}
    """)
    result = await run(rt, w, {"n": 9})
    assert json.loads(result.output) == {"handled": "too big: 9"}


async def test_fork_runs_branches_and_joins_their_outputs(rt):
    w = wf("""
    do:
      - both:
          fork:
            branches:
              - left:
                  call: double
                  with: {n: 1}
              - right:
                  do:
                    - r1:
                        call: double
                        with: {n: 10}
                    - r2:
                        call: double
                        with: {n: '${ .n }'}
    """)
    result = await run(rt, w)
    assert json.loads(result.output) == [{"n": 2}, {"n": 40}]
    events = [e for _, e in await rt.events(result.run_id)]
    first_turn = [e.call_id for e in events if isinstance(e, ToolProposed) and e.step == 0]
    assert len(first_turn) == 2  # both branches' first actions in one turn


async def test_wait_is_a_durable_timer_a_worker_wakes(rt):
    w = wf("""
    do:
      - pause:
          wait: {milliseconds: 50}
      - after:
          set: {done: true}
    """)
    result = await run(rt, w)
    assert result.status == "waiting"
    await finish(rt, result.run_id)
    assert (await rt.result(result.run_id)).output == '{"done":true}'


async def test_listen_waits_for_the_event_and_escalates_on_timeout(rt):
    w = wf("""
    do:
      - approval:
          try:
            - wait_for_it:
                listen:
                  to:
                    one:
                      with: {type: com.example.approved}
                timeout:
                  after: {milliseconds: 100}
          catch:
            errors:
              with: {type: https://serverlessworkflow.io/spec/1.0.0/errors/timeout}
            do:
              - escalate:
                  set: {escalated: true}
    """)
    first = await run(rt, w)
    await rt.signal(first.run_id, "com.example.approved", {"by": "ana"})
    second = await run(rt, w)  # nobody answers this one
    await finish(rt, first.run_id, second.run_id)
    assert json.loads((await rt.result(first.run_id)).output) == [{"by": "ana"}]
    assert json.loads((await rt.result(second.run_id)).output) == {"escalated": True}


async def test_listen_all_waits_for_every_event(rt):
    w = wf("""
    do:
      - both:
          listen:
            to:
              all:
                - with: {type: a.done}
                - with: {type: b.done}
    """)
    result = await run(rt, w)
    await rt.signal(result.run_id, "b.done", 2)
    assert (await rt.get_run(result.run_id)).status == "waiting"
    await rt.signal(result.run_id, "a.done", 1)
    await finish(rt, result.run_id)
    assert json.loads((await rt.result(result.run_id)).output) == [1, 2]


async def test_emit_is_journaled_and_given_to_listeners(rt):
    seen = []
    on_emit(rt, lambda run_id, event: seen.append((run_id, event)))
    w = wf("""
    do:
      - tell:
          emit:
            event:
              with: {type: com.example.done, source: https://example.com, data: {x: '${ .x }'}}
    """)
    result = await run(rt, w, {"x": 1})
    assert len(seen) == 1
    run_id, event = seen[0]
    assert run_id == result.run_id and event["id"] == f"{result.run_id}:/do/0/tell"
    assert event["data"] == {"x": 1} and event["type"] == "com.example.done"
    finished = [e for _, e in await rt.events(result.run_id) if isinstance(e, ToolFinished)]
    assert finished[0].result == event  # the journal holds it


async def test_http_calls_are_governed_by_method(rt, http_base):
    policy = {
        "name": "p",
        "rules": [
            {"name": "no-writes", "tools": ["http_send"], "effect": "deny", "reason": "read only"}
        ],
    }
    w = wf(
        f"""
    do:
      - get:
          call: http
          with:
            method: get
            endpoint: {http_base}/v2/pet/1
      - post:
          call: http
          with:
            method: post
            endpoint: {http_base}/v2/pet
            body: {{name: x}}
    """,
        policy=policy,
    )
    result = await run(rt, w)
    assert result.status == "failed"
    assert fault_of(result.reason)["status"] == 403
    from wf_http import Handler

    assert Handler.calls == ["GET /v2/pet/1"]  # the POST never left


async def test_agent_call_starts_a_child_run(rt):
    child = Agent(
        name="helper",
        model={"provider": "scripted", "turns": [{"content": "drafted"}]},
    )
    w = wf(
        """
    do:
      - ask:
          call: agent
          with: {agent: helper, input: '${ "order " + .id }'}
    """,
        agents=[child],
    )
    result = await run(rt, w, {"id": "7"})
    output = json.loads(result.output)
    assert output["answer"] == "drafted"
    kid = await rt.get_run(output["run_id"])
    assert kid.parent_id == result.run_id and kid.input == "order 7"


async def test_human_task_checks_the_answer_against_its_form(rt):
    from bosun.workflow import tasks

    w = wf("""
    do:
      - approve:
          call: human
          with:
            title: Approve
            form:
              type: object
              required: [ok]
              properties: {ok: {type: boolean}}
    """)
    result = await run(rt, w)
    [task] = await tasks.pending(rt.store, result.run_id)
    assert task.title == "Approve" and task.fields()[0]["kind"] == "boolean"
    with pytest.raises(tasks.InvalidAnswer, match="ok"):
        await tasks.answer(rt, result.run_id, "approve", {"ok": "yes"})
    assert (await rt.get_run(result.run_id)).status == "waiting"  # nothing delivered
    await tasks.answer(rt, result.run_id, "approve", {"ok": True})
    await finish(rt, result.run_id)
    assert json.loads((await rt.result(result.run_id)).output) == {"ok": True}


async def test_context_export_and_input_schema(rt):
    w = wf("""
    input:
      schema:
        format: json
        document: {type: object, required: [n]}
    do:
      - keep:
          set: {a: 1}
          export: {as: '${ {kept: .a} }'}
      - use:
          set: {b: '${ $context.kept + 1 }'}
    """)
    good = await run(rt, w, {"n": 1})
    assert json.loads(good.output) == {"b": 2}
    bad = await run(rt, w, {"m": 1})
    assert bad.status == "failed" and fault_of(bad.reason)["type"].endswith("/validation")


async def test_workflow_versions_are_pinned(rt):
    old = wf("do:\n  - a:\n      set: {v: 1}\n")
    new = wf("do:\n  - a:\n      set: {v: 2}\n")
    assert old.agent.version_id != new.agent.version_id
    run_id = await rt.submit(old.agent, "{}")
    assert (await rt.get_run(run_id)).agent_version == old.agent.version_id
    rt.register(new.agent)  # the file changed; the queued run keeps the version it started with
    async with Runtime(rt.store.url) as other:  # another process: only the pinned snapshot
        await finish(other, run_id)
        assert (await other.result(run_id)).output == '{"v":1}'


def test_validation_errors_name_file_line_and_field():
    text = HEAD.replace("NAME", "bad") + textwrap.dedent("""
    do:
      - first:
          set: {a: 1}
      - second:
          wait: soon
    """)
    with pytest.raises(SpecError) as exc:
        build(text, "flows/bad.yaml")
    message = str(exc.value)
    assert message.startswith("flows/bad.yaml, line 8, `do[1].second.wait`: 'soon'")
    with pytest.raises(SpecError, match=r"line 5, `do\[0\].f.call`.*names no function"):
        build(HEAD.replace("NAME", "x") + "do:\n  - f:\n      call: nothere\n", "x.yaml")
    with pytest.raises(SpecError, match="not supported"):
        build(
            HEAD.replace("NAME", "x") + "do:\n  - f:\n      call: grpc\n      with:\n"
            '        proto: {endpoint: "https://example.com/p.proto"}\n        service: {name: s, host: h}\n'
            "        method: m\n",
            "x.yaml",
        )


async def test_mcp_call_goes_through_the_mcp_client_layer(rt):
    w = wf(
        """
    do:
      - now:
          call: mcp
          with:
            method: tools/call
            parameters:
              name: get_current_time
              arguments: {timezone: Europe/Lisbon}
            transport:
              stdio:
                command: mcp-server-time
                arguments: ["--local-timezone", "UTC"]
    """.replace("test, name: t,", "test, name: t,")
    )
    assert w.agent.tool_map["get_current_time"].effect == "irreversible"  # untrusted server
    result = await run(rt, w)
    assert result.status == "succeeded", result.reason
    assert "Europe/Lisbon" in result.output


async def test_the_graph_marks_the_path_and_the_fault(rt):
    from bosun.workflow import graph

    w = wf("""
    do:
      - first:
          set: {a: 1}
      - check:
          switch:
            - bad:
                when: ${ .a == 1 }
                then: boom
            - good:
                then: fine
      - fine:
          set: {ok: true}
          then: end
      - boom:
          raise:
            error: {type: https://example.com/bad, status: 400, title: bad}
    """)
    result = await run(rt, w)
    seen = view(w.agent, result.run_id, await rt.events(result.run_id))
    drawing = graph.svg(w.document, seen)
    assert seen.path == ["/do/0/first", "/do/1/check", "/do/3/boom"]
    assert 'data-pointer="/do/3/boom" data-state="failed"' in drawing
    assert 'data-pointer="/do/2/fine" data-state="idle"' in drawing
    assert "<script" not in drawing and "style=" not in drawing
