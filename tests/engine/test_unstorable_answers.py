"""A model answer the journal cannot store must never make a worker loop on paid calls.

The probe: a NUL byte (PostgreSQL) or a lone surrogate (any store) in a model answer failed
the append; the worker re-claimed the run at once, 557 model calls in 10 s, `max_cost`
never applied. Such text is stored safely (U+FFFD), an answer that still cannot be stored
fails the step with its cost counted, and a run that makes every attempt fail parks.
"""

from __future__ import annotations

import pytest

from bosun import Agent, Runtime, Worker, tool
from bosun.errors import BosunError
from bosun.journal.events import ModelResponded, RunNeedsAttention, RunResumed, ToolFinished
from bosun.models.base import ModelProvider, ModelRequest, ModelResponse, ToolCall, Usage

BAD = "a\x00b\ud800c"  # a NUL and an unpaired surrogate half
CLEAN = "a\ufffdb\ufffdc"


@tool(effect="read", idempotent=True)
def echo(text: str) -> dict:
    """Gives the text back, with a bad character of its own."""
    return {"echo": text, "extra": "x\x00y"}


def agent(*turns: dict, **options) -> Agent:
    return Agent(
        name="storer",
        model={"provider": "scripted", "turns": list(turns)},
        tools=[echo],
        **options,
    )


async def drain(rt: Runtime) -> None:
    await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)


async def test_nul_and_lone_surrogates_from_a_model_are_stored_as_replacement_characters(db_url):
    arguments = '{"text": "' + BAD.replace("\x00", "") + '"}'
    answers = [
        ModelResponse(content=BAD, tool_calls=(ToolCall("c\ud800", "echo", arguments),)),
        ModelResponse(content=f"done {BAD}"),
    ]
    async with CountingRuntime(db_url, answer=answers) as rt:
        run_id = await rt.submit(agent({"content": "unused"}), "store this")
        await drain(rt)
        result = await rt.result(run_id)
        events = await rt.events(run_id)
        run = await rt.get_run(run_id)
    assert result.status == "succeeded", result.reason
    assert result.output == f"done {CLEAN}" and run.output == result.output
    answered = [e for _, e in events if isinstance(e, ModelResponded)]
    assert [a.content for a in answered] == [CLEAN, f"done {CLEAN}"]
    [finished] = [e for _, e in events if isinstance(e, ToolFinished)]
    assert finished.call_id == "c\ufffd"
    assert finished.result == {"echo": "ab\ufffdc", "extra": "x\ufffdy"}
    assert not [e for _, e in events if isinstance(e, RunResumed)]  # stored at the first try


class Counting:
    """A provider adapter that counts its calls and returns what the test gives it."""

    def __init__(self, inner: ModelProvider, answer=None, error: Exception | None = None):
        self.inner, self.provider, self.model = inner, inner.provider, inner.model
        self.answers = answer if isinstance(answer, list) else [answer] if answer else []
        self.error, self.calls = error, 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.answers:
            return self.answers[min(request.turn, len(self.answers) - 1)]
        return await self.inner.complete(request)


class CountingRuntime(Runtime):
    def __init__(self, *args, answer=None, error=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.counting: Counting | None = None
        self.answer, self.error = answer, error

    def provider_for(self, agent: Agent) -> ModelProvider:
        if self.counting is None:
            self.counting = Counting(super().provider_for(agent), self.answer, self.error)
        return self.counting


async def test_an_answer_that_cannot_be_stored_fails_the_step_once_with_its_cost_counted(db_url):
    # An adapter bug: content that is not text at all. The journal cannot encode it.
    answer = ModelResponse(content=b"\x00binary", usage=Usage(1000, 500), model="scripted")
    async with CountingRuntime(db_url, answer=answer) as rt:
        run_id = await rt.submit(agent({"content": "never used"}), "hello")
        await drain(rt)
        result = await rt.result(run_id)
        events = await rt.events(run_id)
        calls = rt.counting.calls
    assert calls == 1  # no re-claim, no second paid call
    assert result.status == "failed" and "could not be stored" in result.reason
    [answered] = [e for _, e in events if isinstance(e, ModelResponded)]
    assert answered.content is None
    assert (answered.input_tokens, answered.output_tokens) == (1000, 500)
    assert result.cost == pytest.approx(answered.cost) and answered.cost > 0


async def test_a_run_that_fails_every_attempt_parks_after_a_bounded_number_of_resumes(db_url):
    async with CountingRuntime(db_url, error=RuntimeError("adapter bug")) as rt:
        run_id = await rt.submit(agent({"content": "never"}), "hello")
        await drain(rt)
        run = await rt.get_run(run_id)
        events = await rt.events(run_id)
        calls = rt.counting.calls
    assert run.status == "needs_attention"
    assert "tried 6 times in a row without progress" in run.reason
    assert "--retry" in run.reason
    assert calls == 5  # five attempts, then it parks; never a loop
    [parked] = [e for _, e in events if isinstance(e, RunNeedsAttention)]
    assert parked.call_id is None


async def test_a_parked_crash_loop_goes_on_after_resolve_retry(sqlite_path):
    async with CountingRuntime(sqlite_path, error=RuntimeError("adapter bug")) as rt:
        run_id = await rt.submit(agent({"content": "fixed"}), "hello")
        await drain(rt)
        rt.counting.error = None  # the operator fixed the cause
        await rt.resolve(run_id, by="ops", retry=True)
        await drain(rt)
        result = await rt.result(run_id)
    assert result.status == "succeeded" and result.output == "fixed"


async def test_a_run_input_with_a_nul_or_a_lone_surrogate_is_refused_clearly(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        for text in ("a\x00b", "a\ud800b"):
            with pytest.raises(BosunError, match="input contains"):
                await rt.submit(agent({"content": "x"}), text)
        with pytest.raises(BosunError, match="tag 'order'"):
            await rt.submit(agent({"content": "x"}), "ok", tags={"order": "1\x00"})
        assert await rt.store.list_runs() == []
