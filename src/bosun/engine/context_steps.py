"""The loop's context step: what a model call is sent when the context does not fit
(`bosun.memory.context`), journaled as `ContextFitted` with the call. A mixin of `RunLoop`,
like `CallSteps`: the loop only asks `fits` (cheap) and calls `fit_context` when it is not.

The summary model (`context.summarize_with`) is built once per loop, at its first use, and
called outside governance like the agent's own model (it takes no action); its tokens and
cost count in the run's totals and limits through the event."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from bosun.errors import ModelError
from bosun.journal.events import Event
from bosun.memory.context import SUMMARY_PROMPT, ContextFitter, transcript
from bosun.models.base import ModelProvider, ModelRequest
from bosun.models.pricing import PriceTable
from bosun.models.registry import build_provider
from bosun.spec.agent import Agent


class ContextSteps:
    agent: Agent
    prices: Any
    store: Any
    provider: Any
    system: list[dict[str, Any]]
    session: list[dict[str, Any]]
    state: Any
    _summarizer: ModelProvider | None = None

    tool_schemas: list[dict[str, Any]]

    def record(self, event: Event) -> None:
        raise NotImplementedError  # `RunLoop.record`

    @cached_property
    def fitter(self) -> ContextFitter:
        """The run's context budget (made at its first model call): its model's window (or the declared one), less the system
        prompt and the tool schemas it always sends."""
        spec = self.agent.context_spec
        window = self.agent.model_spec.context_window
        return ContextFitter.of(spec, window, self.system, self.tool_schemas)

    async def fit_context(self, step: int) -> list[dict[str, Any]]:
        """The messages to send for this step, and their `ContextFitted` recorded."""
        state = self.state
        declared = self.agent.context_spec.summarize_with
        fitted = await self.fitter.fit(
            step=step,
            system=self.system,
            session=self.session,
            messages=state.messages,
            run_input=state.input,
            summary=state.context_summary,
            covers=state.summary_covers,
            summaries=state.summaries,
            summarize=self._summarize if declared is not None else None,
        )
        self.record(fitted.event)
        return fitted.messages

    @cached_property
    def budgeted(self) -> bool:
        """Whether the model is a route that chooses context budgets (`budgets:`)."""
        return bool(getattr(getattr(self, "provider", None), "budgeted", False))

    async def fit_to(self, budget: int) -> list[dict[str, Any]]:
        """The messages fitted to a budget a route chose (`ContextFitted` recorded, as for
        the agent's own budget): the agent's context policy with that budget."""
        fitters = self.__dict__.setdefault("_budget_fitters", {})
        fitter = fitters.get(budget)
        if fitter is None:
            spec = self.agent.context_spec.model_copy(update={"budget": budget})
            window = self.agent.model_spec.context_window
            fitter = fitters[budget] = ContextFitter.of(
                spec, window, self.system, self.tool_schemas
            )
        state = self.state
        if fitter.fits(self.session, state.messages):
            return self.system + self.session + state.messages
        declared = self.agent.context_spec.summarize_with
        fitted = await fitter.fit(
            step=state.steps,
            system=self.system,
            session=self.session,
            messages=state.messages,
            run_input=state.input,
            summary=state.context_summary,
            covers=state.summary_covers,
            summaries=state.summaries,
            summarize=self._summarize if declared is not None else None,
        )
        self.record(fitted.event)
        if state.media:
            from bosun.engine.media import expand

            return await expand(self.store, state.tenant, fitted.messages)
        return fitted.messages

    async def _summarize(
        self, messages: list[dict[str, Any]], previous: str | None, turn: int
    ) -> tuple[str, int, int, float, str]:
        spec = self.agent.context_spec.summarize_with
        assert spec is not None
        if self._summarizer is None:
            self._summarizer = build_provider(spec)
        request = ModelRequest(
            messages=[
                {"role": "system", "content": SUMMARY_PROMPT},
                {"role": "user", "content": transcript(messages, previous)},
            ],
            tools=[],
            turn=turn,
            run_id=self.state.run_id,
        )
        try:
            response = await self._summarizer.complete(request)
        except ModelError as exc:  # no summary: the older turns are dropped, and it says so
            return f"(the earlier conversation could not be summarised: {exc})", 0, 0, 0.0, ""
        prices: PriceTable = self.prices
        model = response.model or spec.name
        cost = prices.cost(model, response.usage, spec.pricing)
        usage = response.usage
        return response.content or "", usage.input_tokens, usage.output_tokens, cost, model
