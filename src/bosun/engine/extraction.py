"""Extraction after a run: an agent declaring `memory: {extract: {model: ...}}` has a model
read what its run said and did, once the run succeeds, and propose facts to remember. A
mixin of `RunLoop`.

The proposals are not written by the loop: they are the `remember` calls of a child run
(the extractor: the declared model, offered `remember` only, under the parent's policy),
so governance has no side door: a rule can deny, shadow or require approval for a kind
of fact (`tools: [remember]`, `when: args.attribute == "email"`), every call is journaled,
and an approval waits durably like any other. Facts it writes carry the extraction run
and call, and source `extraction` (never trusted: a model's reading, not a system's).

The child is started just before the run's `RunFinished` is committed, keyed
`<run id>:extract`, so a worker that dies in between finds the same child on resume, not
a second one. Nobody waits on it: the parent's answer does not depend on it, and the
parent ending does not cancel it (`stop_children` cancels only children waited on). An
extractor that cannot start (no budget, a bad spec) is logged and the run still succeeds.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from bosun.errors import BosunError
from bosun.spec.context import MemorySpec
from bosun.spec.limits import Limits

if TYPE_CHECKING:
    from bosun.engine.state import RunState
    from bosun.spec.agent import Agent

log = logging.getLogger("bosun.engine.extraction")

INSTRUCTIONS = """You read a finished conversation between a user and an assistant, with
the results of the tools it called, and propose facts worth remembering for later
conversations. Call `remember` once per fact, at most {max_facts} times: a fact about a
thing has a subject (`order:1234`, `user:ada`) and an attribute (`status`, `email`). Propose
only what the conversation states, never guesses. When there is nothing to remember, or
you are done, answer `done`."""
MAX_TEXT = 2000  # characters of one message shown to the extractor
MAX_MESSAGES = 60  # the latest messages shown


def extractor_of(agent: Agent) -> Agent | None:
    """The extraction run's agent for `agent`, or None when it declares no extraction."""
    from bosun.spec.agent import Agent

    spec = agent.memory_spec
    if spec is None or spec.extract is None or spec.extracting:
        return None
    declared = spec.extract
    memory = MemorySpec(
        scope=spec.scope, sources=spec.sources, max_age=spec.max_age, extracting=True
    )
    return Agent(
        name=f"{agent.name}-extract",
        model=declared.model,
        instructions=declared.instructions or INSTRUCTIONS.format(max_facts=declared.max_facts),
        memory=memory,
        policy=agent.policy,
        limits=Limits(max_steps=declared.max_facts + 1, max_tool_calls=declared.max_facts),
        version=agent.version,
    )


def transcript(state: RunState, answer: str | None) -> str:
    """What the extractor reads: the run's messages (each shortened), then its answer."""
    shown: list[dict[str, Any]] = []
    for message in state.messages[-MAX_MESSAGES:]:
        content = message.get("content")
        if not isinstance(content, str) or not content:
            continue
        shown.append({"role": message.get("role"), "content": content[:MAX_TEXT]})
    if answer and (not shown or shown[-1]["content"] != answer[:MAX_TEXT]):
        shown.append({"role": "assistant", "content": answer[:MAX_TEXT]})
    return orjson.dumps({"run": state.run_id, "messages": shown}).decode()


class Extraction:
    """Starting the extractor when the run succeeds (see the module docstring)."""

    agent: Agent
    state: RunState
    spawn: Any  # engine.agent_calls.Spawn | None
    _extractor: Agent | None = None

    async def start_extraction(self, answer: str | None) -> str | None:
        """The extraction run's id, or None when the agent declares none or it cannot start."""
        if self.agent.memory_spec is None or self.spawn is None:
            return None
        if self._extractor is None:
            self._extractor = extractor_of(self.agent)
        extractor = self._extractor
        if extractor is None:
            return None
        key = f"{self.state.run_id}:extract"
        try:
            return await self.spawn(
                extractor.version_id,
                extractor.snapshot(),
                transcript(self.state, answer),
                self.state,
                key,
                extractor.limits,
            )
        except BosunError as exc:  # the answer stands; the facts are lost, and it says so
            log.warning("run %s: extraction could not start: %s", self.state.run_id, exc)
            return None
