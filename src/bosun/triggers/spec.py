"""A triggers file: what starts runs, and the run each starts (`docs/triggers.md`).

    triggers:
      - name: refund-requested
        target: refund.yaml              # an agent or a workflow file, beside this one
        input: .order                    # jq over the event's payload -> the run's input
        webhook: {secret_env: REFUND_HOOK_SECRET}
      - name: nightly-report
        target: report.yaml
        schedule: {cron: "0 2 * * *", timezone: Europe/Lisbon, missed: run_once}
      - name: frames
        target: ../camera/extractor.yaml
        queue: {subject: camera.frames, max_in_flight: 8, max_deliveries: 3}

A trigger has exactly one source (`webhook`, `schedule`, `queue` or `event`). Errors name
the file, the trigger and the field, as agent files' do.
"""

from __future__ import annotations

import os
import re
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bosun.errors import SpecError

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The widest replay window a webhook may have. A delivery row must outlive it: a signed request
# replayed within its timestamp tolerance is refused by the signature the row keeps; past the
# tolerance its timestamp refuses it. So retention (`bosun gc`) keeps rows longer than this.
MAX_TOLERANCE_SECONDS = 86400.0


def check_retention(seconds: float) -> None:
    """Refuse a deliveries retention no longer than the widest replay window."""
    if seconds <= MAX_TOLERANCE_SECONDS:
        raise SpecError(
            f"trigger deliveries must be kept longer than the widest webhook replay window"
            f" ({MAX_TOLERANCE_SECONDS / 3600:g} h, the largest `tolerance_seconds`), else a"
            f" replayed request could start a second run: got {seconds / 3600:g} h"
        )


class Webhook(_Strict):
    """`POST /hooks/{name}`, signed with the secret in the environment variable `secret_env`."""

    secret_env: str
    tolerance_seconds: float = Field(300.0, gt=0, le=MAX_TOLERANCE_SECONDS)


class Schedule(_Strict):
    """Cron in a time zone; ticks missed while no process ran are skipped, or run once."""

    cron: str
    timezone: str = "UTC"
    missed: Literal["skip", "run_once"] = "skip"
    grace_seconds: float = Field(60.0, ge=0)  # a tick this late is still on time

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (e.g. '*/5 * * * *')")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Lisbon)") from None
        return value


class Queue(_Strict):
    """A NATS JetStream subject (or a RabbitMQ queue), consumed by every process at once."""

    subject: str  # the NATS subject, or the RabbitMQ queue's name
    broker: Literal["nats", "rabbitmq"] = "nats"
    url: str = ""  # default: nats://127.0.0.1:4222, amqp://guest:guest@127.0.0.1:5672/
    stream: str | None = None  # default: created as BOSUN_<NAME> over `subject` if missing
    durable: str | None = None  # default: bosun-<trigger name>
    max_in_flight: int = Field(16, ge=1, le=100_000)  # runs started and not yet ended
    max_deliveries: int = Field(5, ge=1, le=1000)  # failures before the dead-letter subject
    dead_letter: str | None = None  # default: <subject>.dead
    ack_wait_seconds: float = Field(30.0, gt=0)
    attach: bool = False  # the message's bytes are attached to the run (an image frame)

    @model_validator(mode="after")
    def _default_url(self) -> Queue:
        if not self.url:
            default = (
                "nats://127.0.0.1:4222"
                if self.broker == "nats"
                else "amqp://guest:guest@127.0.0.1:5672/"
            )
            object.__setattr__(self, "url", default)
        return self


class EventSource(_Strict):
    """CloudEvents emitted by runs (a workflow's `emit`): their `type` (and `source`) match."""

    type: str
    source: str | None = None
    max_depth: int = Field(8, ge=1, le=100)  # chains deeper than this are refused


class TriggerSpec(_Strict):
    name: str
    target: str
    input: str = "."  # jq: the event's payload -> the run's input
    tenant: str = "default"
    tags: dict[str, str] = Field(default_factory=dict)
    webhook: Webhook | None = None
    schedule: Schedule | None = None
    queue: Queue | None = None
    event: EventSource | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"{value!r}: a trigger's name is lowercase letters, digits, '.', '_' and '-'"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> TriggerSpec:
        given = [k for k in self.kinds() if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a trigger has exactly one of webhook, schedule, queue, event"
                f" (this one has {', '.join(given) or 'none'})"
            )
        return self

    @staticmethod
    def kinds() -> tuple[str, ...]:
        return ("webhook", "schedule", "queue", "event")

    @property
    def kind(self) -> str:
        return next(k for k in self.kinds() if getattr(self, k) is not None)


class TriggersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    triggers: list[TriggerSpec]
    path: str = ""  # where it was read from: targets are relative to its folder

    def named(self, name: str) -> TriggerSpec | None:
        return next((t for t in self.triggers if t.name == name), None)

    def target_path(self, spec: TriggerSpec) -> str:
        if os.path.isabs(spec.target):
            return spec.target
        return os.path.join(os.path.dirname(os.path.abspath(self.path)), spec.target)


def load_triggers(path: str) -> TriggersFile:
    """Read and check a triggers file (each target is loaded when the triggers start)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise SpecError(f"triggers file {path}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"triggers file {path}: not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"triggers file {path}: expected a mapping with a `triggers:` list")
    try:
        parsed = TriggersFile.model_validate({**data, "path": path})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = list(err["loc"])
            if len(where) >= 2 and where[0] == "triggers" and isinstance(where[1], int):
                items = data.get("triggers") or []
                item = items[where[1]] if where[1] < len(items) else None
                name = item.get("name") if isinstance(item, dict) else None
                where = [f"trigger {name or '#' + str(where[1] + 1)}", *where[2:]]
            problems.append(f"{'.'.join(str(w) for w in where)}: {err['msg']}")
        raise SpecError(f"triggers file {path}: " + "; ".join(problems)) from None
    names = [t.name for t in parsed.triggers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"triggers file {path}: two triggers are named {', '.join(dupes)}")
    return parsed
