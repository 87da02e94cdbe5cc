"""Bosun: run AI agents durably, governed and observed.

The everyday surface: `Agent`, `tool`, `Limits`, `Runtime`, and the `bosun` CLI.
"""

from bosun.engine import RunResult, Runtime, Worker
from bosun.errors import (
    BosunError,
    BudgetExhausted,
    EditRefused,
    FactNotFound,
    InputMappingFailed,
    InvalidAnswer,
    LeaseLost,
    ModelError,
    NewerDatabase,
    Replayed,
    ResultNotFound,
    RunAlreadyFinished,
    RunNotFound,
    SourceUnavailable,
    SpecError,
    StoreError,
    StoreUnavailable,
    ToolNotFound,
    UnstorableEvent,
)
from bosun.spec import Agent, Limits, ModelSpec, load_agent
from bosun.spec.agent_tool import agent_tool
from bosun.spec.handoff import handoff
from bosun.spec.media import Media
from bosun.spec.tool import RetryPolicy, Tool, ToolContext, tool
from bosun.spec.wait import Wait
from bosun.store.base import ApprovalConflict

__version__ = "0.1.0"

# Every exception a caller may catch is importable from here; all subclass BosunError.
__all__ = [
    "Agent",
    "ApprovalConflict",
    "BosunError",
    "BudgetExhausted",
    "EditRefused",
    "FactNotFound",
    "InputMappingFailed",
    "InvalidAnswer",
    "LeaseLost",
    "Limits",
    "Media",
    "ModelError",
    "ModelSpec",
    "NewerDatabase",
    "Replayed",
    "ResultNotFound",
    "RetryPolicy",
    "RunAlreadyFinished",
    "RunNotFound",
    "RunResult",
    "Runtime",
    "SourceUnavailable",
    "SpecError",
    "StoreError",
    "StoreUnavailable",
    "Tool",
    "ToolContext",
    "ToolNotFound",
    "UnstorableEvent",
    "Wait",
    "Worker",
    "__version__",
    "agent_tool",
    "handoff",
    "load_agent",
    "tool",
]
