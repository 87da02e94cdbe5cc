"""Structured logs: one JSON object per line, with run, step and trace ids (`--log-json`).

    configure_json_logging()                      # root logger -> JSON lines on stderr
    Observer(store, [EventLog()])                 # plus one line per journal event

Log records carry `run_id` (and `step`, `seq`) through `extra=`; the trace id is derived from
the run id exactly as the trace exporter does, so a log line links to its trace.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence

import orjson

from bosun.journal.events import Event, ModelRequested, ModelResponded
from bosun.observe.feed import Commit, RunInfo

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def trace_id_hex(run_id: str) -> str:
    from bosun.observe.tracing import trace_id_for  # derived, no SDK state

    return f"{trace_id_for(run_id):032x}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        run_id = line.get("run_id")
        if isinstance(run_id, str) and "trace_id" not in line:
            line["trace_id"] = trace_id_hex(run_id)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_json_logging(level: int = logging.INFO, stream=None) -> logging.Handler:
    """Send every log record to `stream` (default stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class EventLog:
    """An `Observer` sink: one INFO line per journal event on `bosun.events`."""

    def __init__(self, logger: logging.Logger | None = None):
        self.log = logger or logging.getLogger("bosun.events")

    async def handle(self, commits: Sequence[Commit]) -> None:
        if not self.log.isEnabledFor(logging.INFO):
            return
        for commit in commits:
            self._log(commit.info, commit.first_seq, commit.events)

    def _log(self, info: RunInfo, first_seq: int, events: Sequence[Event]) -> None:
        for offset, event in enumerate(events):
            extra: dict[str, object] = {
                "run_id": info.run_id,
                "seq": first_seq + offset,
                "event": event.kind,
                "agent": info.agent,
                "tenant": info.tenant,
            }
            if isinstance(event, ModelRequested | ModelResponded):
                extra["step"] = event.step + 1
            for name in ("tool", "call_id", "status", "error_type", "verdict", "finding"):
                value = getattr(event, name, None)
                if value is not None:
                    extra[name] = value
            self.log.info("run %s: %s", info.run_id, event.kind, extra=extra)

    async def close(self) -> None:
        return None
