"""The bodies of the memory tools (`bosun.spec.memory_tools`), run by the loop after the
call passed governance like any other: a mixin of `RunLoop`.

Provenance comes from the run, never from the model's say-so alone: the fact records the
run and the call that wrote it, and its `source` is trusted only when it names a tool this
run called whose results are trusted (the latest such call is recorded as where it was
read); anything else is the model's own statement (`model`, untrusted)."""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any

from bosun.engine.state import CallState, RunState
from bosun.errors import BosunError
from bosun.memory.service import Memory, run_scopes
from bosun.spec.agent import Agent
from bosun.spec.memory_tools import NAMES as MEMORY_TOOLS
from bosun.tools.execute import ToolOutcome


class MemorySteps:
    agent: Agent
    state: RunState
    lineage: tuple[str, ...]
    memory: Memory | None
    tools: dict[str, Any]

    @cached_property
    def memory_tools(self) -> frozenset[str]:
        """The memory tools among the agent's (none unless it enabled memory)."""
        if self.agent.memory_spec is None:
            return frozenset()
        return frozenset(MEMORY_TOOLS) & frozenset(self.tools)

    async def use_memory(self, call: CallState, kwargs: dict[str, Any]) -> ToolOutcome:
        started = time.perf_counter()
        try:
            result = await self._memory_call(call, kwargs)
        except BosunError as exc:
            return ToolOutcome(False, error_type="memory", message=str(exc), fault="call")
        return ToolOutcome(True, result, duration_ms=(time.perf_counter() - started) * 1000)

    async def _memory_call(self, call: CallState, kwargs: dict[str, Any]) -> dict[str, Any]:
        spec, state, memory = self.agent.memory_spec, self.state, self.memory
        if spec is None or memory is None:
            raise BosunError("memory is not enabled for this agent (`memory: true`)")
        scopes = run_scopes(state.tenant, state.user, self.agent.name, self.lineage[-1])
        if call.tool == "recall":
            found = await memory.recall.search(
                tenant=state.tenant,
                scopes=list(dict.fromkeys(scopes.values())),
                query=kwargs["query"],
                limit=min(int(kwargs.get("limit") or spec.recall_limit), 50),
                sources=spec.sources,
                max_age=spec.max_age,
            )
            return {"memories": [r.shown() for r in found]}
        if call.tool == "forget":
            fact = await memory.facts.get(state.tenant, kwargs["memory_id"])
            if (fact.scope, fact.scope_id) not in scopes.values():
                raise BosunError(f"memory {fact.id} is not in this run's scopes")
            actor = f"run {state.run_id} ({self.agent.name}), call {call.call_id}"
            await memory.forget(state.tenant, fact.id, actor=actor, reason=kwargs.get("reason", ""))
            return {"forgotten": fact.id}
        scope = kwargs.get("scope") or spec.scope
        if scope not in scopes:
            raise BosunError(f"scope {scope!r}: write one of {', '.join(scopes)}")
        source, trusted, read_in = self._provenance(kwargs.get("source") or "")
        valid = kwargs.get("valid_for_seconds")
        written = await memory.facts.remember(
            tenant=state.tenant,
            scope=scopes[scope][0],
            scope_id=scopes[scope][1],
            value=kwargs["value"],
            subject=kwargs.get("subject") or "",
            attribute=kwargs.get("attribute") or "",
            source=source,
            trusted=trusted,
            run_id=state.run_id,
            call_id=read_in or call.call_id,
            valid_until=time.time() + float(valid) if valid else None,
        )
        out = {"memory_id": written.fact.id, "status": written.status, "source": source}
        if written.replaced:
            out["superseded"] = list(written.replaced)
        return out

    def _provenance(self, named: str) -> tuple[str, bool, str | None]:
        """(source, trusted, the call it was read in) for a `remember` naming `named`."""
        tool = self.tools.get(named) if named else None
        if tool is None or named in ("remember", "recall", "forget"):
            return "model", False, None
        last = None
        for message in self.state.messages:
            for c in message.get("tool_calls") or ():
                if c["function"]["name"] == named:
                    last = c["id"]
        if last is None:  # named a tool it never called: the model's own word
            return "model", False, None
        return named, bool(getattr(tool, "trusted", True)), last
