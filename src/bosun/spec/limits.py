"""Limits bound every run: no run may spin or spend forever, and each stop says why."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from bosun.spec.where import SpecModel


class Limits(SpecModel):
    """Per-agent limits; a run may tighten them (`Limits.merged`). `None` means unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "limits"

    max_steps: int | None = Field(default=50, ge=1, description="model calls per run")
    max_tokens: int | None = Field(default=None, ge=1, description="input + output tokens")
    max_cost: float | None = Field(default=None, ge=0, description="US dollars")
    max_wall_seconds: float | None = Field(default=3600, gt=0, description="since the run started")
    max_tool_calls: int | None = Field(default=200, ge=1)
    max_repeats: int | None = Field(
        default=5, ge=2, description="same tool with the same arguments this many times in a row"
    )
    max_agent_daily_cost: float | None = Field(
        default=None, ge=0, description="USD per UTC day, summed over all this agent's runs"
    )
    max_tenant_daily_cost: float | None = Field(
        default=None, ge=0, description="USD per UTC day, summed over all the tenant's runs"
    )

    def merged(self, override: Limits | None) -> Limits:
        """The stricter of the two for every limit."""
        if override is None:
            return self
        values = {}
        for name in type(self).model_fields:
            a, b = getattr(self, name), getattr(override, name)
            values[name] = b if a is None else a if b is None else min(a, b)
        return Limits(**values)


class RateLimit(SpecModel):
    """At most `limit` calls per `window_seconds` of the matching tools, counted per
    agent, tool, user or tenant, and shared by every worker on the database."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "rate_limits"

    tools: tuple[str, ...] = Field(default=("*",), description="tool name globs")
    per: Literal["agent", "tool", "user", "tenant"] = "agent"
    limit: int = Field(ge=1)
    window_seconds: float = Field(default=60.0, gt=0)
