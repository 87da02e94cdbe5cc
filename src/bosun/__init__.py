"""Bosun: run AI agents durably, governed and observed.

The everyday surface: `Agent`, `tool`, `Limits`, `Runtime`, and the `bosun` CLI.
"""

from bosun.engine import RunResult, Runtime, Worker
from bosun.errors import BosunError
from bosun.spec import Agent, Limits, ModelSpec, load_agent
from bosun.spec.tool import RetryPolicy, Tool, ToolContext, tool

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "BosunError",
    "Limits",
    "ModelSpec",
    "RetryPolicy",
    "RunResult",
    "Runtime",
    "Tool",
    "ToolContext",
    "Worker",
    "__version__",
    "load_agent",
    "tool",
]
