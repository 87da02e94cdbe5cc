"""What a remote A2A agent's skills and tasks become in Bosun: tool definitions (one per
skill, pinned with the agent's version) and call results (plain JSON the model reads).

A task that ended or asked for input settles the call's wait with a *remote outcome*
(`engine/waits.py`, `REMOTE_OUTCOME`): the result the model sees, or a failure (`failed`:
error type and message, journaled as `ToolFailed`), and the progress the watcher saw while
the run was parked (journaled as coalesced `ToolProgress` before the result).

`input-required` is a structured result, not a failure and not a wait for a person: the
remote agent asks its caller, and the caller is the model, which answers by calling the
tool again with the task's id (`task_id`), continuing the same remote task. Whether a
person must see that answer first is the operator's choice, as for any call: a policy rule
on the tool (`require_approval`) parks the answer for approval like any other call.
"""

from __future__ import annotations

from typing import Any

import orjson

from bosun.spec.a2a_remote import PARAMETERS
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.vocab import Effect

COMPLETED = "completed"
INPUT_REQUIRED = "input-required"
FAILED_STATES = {"failed", "rejected", "canceled", "auth-required"}
ENDED_STATES = {COMPLETED, INPUT_REQUIRED} | FAILED_STATES


def to_dict(message: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message, preserving_proto_field_name=False)


def state_name(task: Any) -> str:
    """`TASK_STATE_INPUT_REQUIRED` as A2A's JSON names it: `input-required`."""
    from a2a.types.a2a_pb2 import TaskState

    name = TaskState.Name(task.status.state)
    return name.removeprefix("TASK_STATE_").lower().replace("_", "-")


def definitions_of(card: Any, spec: SourceSpec, trusted: bool) -> list[ToolDefinition]:
    """One definition per skill. Its digest covers the skill as the card serves it and the
    agent's name, version and description, so a new card version (or a rewritten skill) is
    a changed definition: calls are refused until the Bosun agent is registered again."""
    agent = {"name": card.name, "version": card.version, "description": card.description}
    definitions = []
    for skill in sorted(card.skills, key=lambda s: s.id):
        description = skill.description or skill.name or skill.id
        definitions.append(
            ToolDefinition(
                name=skill.id,
                description=f"{description} (skill {skill.name or skill.id} of the remote "
                f"A2A agent {card.name})",
                parameters=PARAMETERS,
                effect=Effect.WRITE,
                idempotent=False,
                trusted=trusted,
                source_kind=spec.kind,
                source_id=spec.identity,
                served={"agent": agent, "skill": to_dict(skill)},
            )
        )
    return definitions


def text_of(parts: Any) -> str:
    """The text of message or artifact parts: text as it is, data as JSON, files named."""
    out = []
    for part in parts:
        kind = part.WhichOneof("content")
        if kind == "text":
            out.append(part.text)
        elif kind == "data":
            out.append(orjson.dumps(to_dict(part).get("data")).decode())
        elif kind in ("url", "raw"):
            where = part.url if kind == "url" else f"{len(part.raw)} bytes"
            out.append(f"[file {part.filename or ''} {part.media_type or ''} {where}]".strip())
    return "\n".join(t for t in out if t)


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-(limit // 4) :]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"


def status_text(task: Any) -> str:
    return text_of(task.status.message.parts) if task.status.HasField("message") else ""


def task_result(task: Any, label: str, limit: int) -> dict[str, Any]:
    """A completed or input-required task as the call's result."""
    state = state_name(task)
    said = status_text(task)
    result: dict[str, Any] = {"status": state, "task_id": task.id}
    if state == INPUT_REQUIRED:
        result["question"] = _bounded(said or "(the remote agent gave no question)", limit)
        result["to_answer"] = "call this tool again with your answer and this task_id"
        return result
    artifacts = [
        {"name": a.name or a.artifact_id, "text": _bounded(text_of(a.parts), limit)}
        for a in task.artifacts
    ]
    answer = "\n".join(a["text"] for a in artifacts if a["text"]) or said
    result["answer"] = _bounded(answer, limit)
    if len(artifacts) > 1:
        result["artifacts"] = artifacts
    return result


def message_result(message: Any, limit: int) -> dict[str, Any]:
    """A remote agent that answered with a message (no task)."""
    return {"status": COMPLETED, "answer": _bounded(text_of(message.parts), limit)}


def failure(task: Any, label: str) -> dict[str, str]:
    """A task that failed, was rejected or cancelled, or needs credentials Bosun lacks."""
    state = state_name(task)
    said = status_text(task)
    why = f": {said}" if said else ""
    if state == "auth-required":
        return {
            "error_type": "remote_auth_required",
            "message": f"the A2A agent {label} asks for credentials for task {task.id}"
            f"{why}; give the entry `token_env` or `credentials`",
        }
    return {
        "error_type": f"remote_{state.replace('-', '_')}",
        "message": f"the A2A agent {label}: task {task.id} {state}{why}",
    }


class A2aTaskFailed(Exception):
    """A remote task that ended badly at once (the call's `ToolFailed`)."""

    def __init__(self, failed: dict[str, str]):
        super().__init__(failed["message"])
        self.error_type = failed["error_type"]


__all__ = [
    "ENDED_STATES",
    "FAILED_STATES",
    "A2aTaskFailed",
    "definitions_of",
    "failure",
    "message_result",
    "state_name",
    "status_text",
    "task_result",
    "text_of",
]
