"""Typed journal events and their compact encoding."""

from bosun.journal.codec import decode_event, encode_event
from bosun.journal.events import (
    Event,
    LimitReached,
    ModelFailed,
    ModelRequested,
    ModelResponded,
    RunFinished,
    RunNeedsAttention,
    RunPaused,
    RunResumed,
    RunStarted,
    ToolFailed,
    ToolFinished,
    ToolProposed,
    ToolStarted,
)

__all__ = [
    "Event",
    "LimitReached",
    "ModelFailed",
    "ModelRequested",
    "ModelResponded",
    "RunFinished",
    "RunNeedsAttention",
    "RunPaused",
    "RunResumed",
    "RunStarted",
    "ToolFailed",
    "ToolFinished",
    "ToolProposed",
    "ToolStarted",
    "decode_event",
    "encode_event",
]
