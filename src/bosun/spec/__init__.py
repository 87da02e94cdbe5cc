"""Agent, tool and limit definitions, from Python or YAML."""

from bosun.spec.agent import Agent
from bosun.spec.limits import Limits
from bosun.spec.loader import load_agent
from bosun.spec.model import ModelSpec, Pricing, ScriptedToolCall, ScriptedTurn

__all__ = [
    "Agent",
    "Limits",
    "ModelSpec",
    "Pricing",
    "ScriptedToolCall",
    "ScriptedTurn",
    "load_agent",
]
