"""An A2A task is a Bosun run: this module is the one projection of a run (its row, its
redacted journal and its waits) as an A2A `Task`, shared by every A2A method.

State mapping (docs/a2a.md, "Tasks are runs"):

| run | A2A task state |
|---|---|
| queued (never started) | submitted |
| running, queued again, paused, waiting (timer, child, remote), needs_attention | working |
| waiting on the `a2a.input` signal | input-required |
| waiting_approval | input-required (a follow-up message answers the approval) |
| succeeded | completed |
| failed, limit_exceeded, killed | failed |
| cancelled | canceled |
| failed because a policy denied every way on | rejected |

Nothing here is stored: the run row and the journal are the truth, so a task survives a
restart and reads the same from every server on one PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from a2a.types import a2a_pb2 as pb
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from bosun.journal.events import Event, RunFinished, RunStarted
from bosun.spec.a2a import A2AAnswer
from bosun.spec.vocab import RunStatus, WaitKind, WaitStatus
from bosun.store.base import RunRecord

INPUT_SIGNAL = "a2a.input"  # the signal a follow-up message is delivered as
TAG_MESSAGE = "a2a.message_id"
TAG_CONTEXT = "a2a.context_id"

S = pb.TaskState
TERMINAL = frozenset(
    {S.TASK_STATE_COMPLETED, S.TASK_STATE_FAILED, S.TASK_STATE_CANCELED, S.TASK_STATE_REJECTED}
)
INTERRUPTED = frozenset({S.TASK_STATE_INPUT_REQUIRED, S.TASK_STATE_AUTH_REQUIRED})

_ENDED = {
    RunStatus.SUCCEEDED: S.TASK_STATE_COMPLETED,
    RunStatus.FAILED: S.TASK_STATE_FAILED,
    RunStatus.LIMIT_EXCEEDED: S.TASK_STATE_FAILED,
    RunStatus.KILLED: S.TASK_STATE_FAILED,
    RunStatus.CANCELLED: S.TASK_STATE_CANCELED,
}
# The A2A states a ListTasks status filter asks for, as run statuses.
STATUSES_OF = {
    S.TASK_STATE_SUBMITTED: (RunStatus.QUEUED,),
    S.TASK_STATE_WORKING: (
        RunStatus.RUNNING,
        RunStatus.QUEUED,
        RunStatus.PAUSED,
        RunStatus.WAITING,
        RunStatus.NEEDS_ATTENTION,
    ),
    S.TASK_STATE_INPUT_REQUIRED: (RunStatus.WAITING_APPROVAL, RunStatus.WAITING),
    S.TASK_STATE_COMPLETED: (RunStatus.SUCCEEDED,),
    S.TASK_STATE_FAILED: (RunStatus.FAILED, RunStatus.LIMIT_EXCEEDED, RunStatus.KILLED),
    S.TASK_STATE_CANCELED: (RunStatus.CANCELLED,),
    S.TASK_STATE_REJECTED: (RunStatus.FAILED,),
}


def context_of(run: RunRecord) -> str:
    """The task's context: the run's session (a run started elsewhere has none: its own id)."""
    return run.session or run.id


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def state_of(run: RunRecord, waits: Sequence[Any], started: bool) -> int:
    """The A2A state of the run, from its row and its pending waits."""
    status = RunStatus(run.status)
    if status in _ENDED:
        if status is RunStatus.FAILED and (run.reason or "").startswith("denied"):
            return S.TASK_STATE_REJECTED
        return _ENDED[status]
    pending = [w for w in waits if w.status == WaitStatus.PENDING]
    if status is RunStatus.WAITING_APPROVAL or any(w.kind == WaitKind.APPROVAL for w in pending):
        return S.TASK_STATE_INPUT_REQUIRED
    if status is RunStatus.WAITING and any(
        w.kind == WaitKind.SIGNAL and w.key == INPUT_SIGNAL for w in pending
    ):
        return S.TASK_STATE_INPUT_REQUIRED
    if status is RunStatus.QUEUED and not started:
        return S.TASK_STATE_SUBMITTED
    return S.TASK_STATE_WORKING


# -- messages in, parts out ----------------------------------------------------------


def part_to_json(part: pb.Part) -> dict[str, Any]:
    return json_format.MessageToDict(part)


def message_input(message: pb.Message, envelope: bool) -> str:
    """The run's input for an A2A message: its text parts (joined by blank lines), or the
    whole message as a JSON envelope the agent reads (`a2a.input: envelope`)."""
    texts = [p.text for p in message.parts if p.WhichOneof("content") == "text"]
    if not envelope:
        return "\n\n".join(texts)
    body: dict[str, Any] = {"message_id": message.message_id, "text": "\n\n".join(texts)}
    others = [part_to_json(p) for p in message.parts if p.WhichOneof("content") != "text"]
    if others:
        body["parts"] = others
    return orjson.dumps(body).decode()


def signal_payload(message: pb.Message) -> dict[str, Any]:
    """What a follow-up message delivers to a run waiting on `a2a.input`."""
    return {
        "message_id": message.message_id,
        "text": "\n\n".join(p.text for p in message.parts if p.WhichOneof("content") == "text"),
        "parts": [part_to_json(p) for p in message.parts],
    }


def _user_message(run: RunRecord, message_id: str, parts: list[dict[str, Any]]) -> pb.Message:
    msg = pb.Message(
        message_id=message_id, role=pb.Role.ROLE_USER, task_id=run.id, context_id=context_of(run)
    )
    for part in parts:
        json_format.ParseDict(part, msg.parts.add(), ignore_unknown_fields=True)
    return msg


def _first_parts(run: RunRecord, started: RunStarted | None) -> list[dict[str, Any]]:
    text = started.input if started is not None else run.input
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and "message_id" in body:
        return [{"text": body.get("text", "")}, *body.get("parts", [])]
    return [{"text": text}]


def answer_of(output: str | None, mode: A2AAnswer) -> dict[str, Any]:
    """The final answer as {"message": text?, "artifacts": [...], "reply": text?}."""
    if output is None:
        return {}
    if mode is A2AAnswer.PARTS:
        try:
            body = orjson.loads(output)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and body.keys() & {"message", "artifacts", "reply"}:
            return body
    return {"message": output}


def artifacts_of(run_id: str, answer: dict[str, Any]) -> list[tuple[pb.Artifact, bool, bool]]:
    """(artifact, append, last_chunk) in order: entries sharing an `artifactId` are chunks
    of one artifact (the later ones appended, the last one the last chunk)."""
    out: list[tuple[pb.Artifact, bool, bool]] = []
    entries = answer.get("artifacts") or []
    ids = []
    for i, entry in enumerate(entries):
        art = pb.Artifact()
        entry = dict(entry)
        entry.setdefault("artifactId", f"{run_id}-{i}")
        json_format.ParseDict(entry, art, ignore_unknown_fields=True)
        ids.append(art.artifact_id)
        out.append((art, False, False))
    for i, (art, _, _) in enumerate(out):
        chunks = ids.count(art.artifact_id)
        if chunks > 1:
            first = ids.index(art.artifact_id) == i
            last = len(ids) - 1 - ids[::-1].index(art.artifact_id) == i
            out[i] = (art, not first, last)
    return out


def merged(arts: list[tuple[pb.Artifact, bool, bool]]) -> list[pb.Artifact]:
    """The task's artifacts: chunks of one artifact joined."""
    by_id: dict[str, pb.Artifact] = {}
    for art, append, _ in arts:
        if append and art.artifact_id in by_id:
            by_id[art.artifact_id].parts.extend(art.parts)
        else:
            copy = pb.Artifact()
            copy.CopyFrom(art)
            by_id[art.artifact_id] = copy
    return list(by_id.values())


def agent_message(run: RunRecord, text: str, suffix: str = "answer") -> pb.Message:
    return pb.Message(
        message_id=f"{run.id}-{suffix}",
        role=pb.Role.ROLE_AGENT,
        task_id=run.id,
        context_id=context_of(run),
        parts=[pb.Part(text=text)],
    )


def build_task(
    run: RunRecord,
    events: Sequence[tuple[int, Event]],
    waits: Sequence[Any],
    mode: A2AAnswer,
    *,
    artifacts: bool = True,
) -> pb.Task:
    """The run as an A2A task: state, status message, history and artifacts."""
    started = next((e for _, e in events if isinstance(e, RunStarted)), None)
    began = any(not isinstance(e, RunStarted) for _, e in events)
    state = state_of(run, waits, began)
    status = pb.TaskStatus(state=state, timestamp=timestamp(run.updated_at or run.created_at))
    task = pb.Task(id=run.id, context_id=context_of(run), status=status)
    history = [
        _user_message(
            run, run.tags.get(TAG_MESSAGE) or f"{run.id}-input", _first_parts(run, started)
        )
    ]
    for w in sorted(waits, key=lambda w: w.created_at):
        if w.kind == WaitKind.SIGNAL and w.key == INPUT_SIGNAL and isinstance(w.result, dict):
            history.append(
                _user_message(
                    run,
                    str(w.result.get("message_id") or w.id),
                    w.result.get("parts") or [{"text": w.result.get("text", "")}],
                )
            )
    task.history.extend(history)
    finished = next((e for _, e in reversed(events) if isinstance(e, RunFinished)), None)
    if state in TERMINAL:
        output = run.output if finished is None else finished.output
        answer = answer_of(output, mode)
        text = answer.get("message") or answer.get("reply")
        if text is None and state is not S.TASK_STATE_COMPLETED:
            text = f"{run.status}: {run.reason or ''}".rstrip(": ")
        if text is not None:
            message = agent_message(run, str(text))
            task.status.message.CopyFrom(message)
            task.history.append(message)
        if artifacts:
            task.artifacts.extend(merged(artifacts_of(run.id, answer)))
    elif state in INTERRUPTED:
        question = _question(events)
        if question:
            task.status.message.CopyFrom(agent_message(run, question, f"ask-{len(history)}"))
    return task


def _question(events: Sequence[tuple[int, Event]]) -> str | None:
    """The model's last words before it parked (what it asks the user), if any."""
    for _, event in reversed(events):
        content = getattr(event, "content", None)
        if event.kind == "model_responded" and content:
            return content
        if event.kind == "approval_requested":
            return f"approval needed for {event.tool}: {event.reason}"  # type: ignore[attr-defined]
    return None
