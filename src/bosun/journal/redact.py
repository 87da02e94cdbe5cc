"""What people and exporters see of a run: the journal with its secrets masked.

The journal keeps the real values (a resumed run must execute with them; the tool always
receives them). Every projection of it (`bosun show`, `bosun approvals`, the API's events,
stream and approvals, the console, traces, audit records) goes through one `Redactor`,
built once per run from the run's pinned agent definition:

- fields are masked by name, at any depth of a call's arguments or result: the names the
  tool declares (`sensitive=[...]`), and by default every key that is, or ends with, one
  of `DEFAULT_SENSITIVE` (case and `-`/`_` ignored: `password`, `DB_PASSWORD`,
  `x-api-key`, `refresh_token`, `Set-Cookie`...);
- every value masked that way (text of at least `MIN_SECRET` characters) is remembered,
  and masked wherever it appears in the run's other text: an error message, a model's
  answer, a result, the run's output.

A redactor folds over a run's events in journal order; `events()` learns from everything
it is given before it masks any of it, so a full read masks a secret even in text written
before the call that declared it. Learning is lazy (`remember` queues an event; its values
are read the first time some text must be masked), so a projection that shows no text
pays a list append per call.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import orjson

from bosun.journal.events import Event

MASK = "[redacted]"
MIN_SECRET = 4  # shorter values are masked in their field, not searched for in text

# Key names that are sensitive whatever a tool declares (compared without case, `-` or `_`;
# a key ending in one of them matches too: `db_password`, `access_token`, `client_secret`).
DEFAULT_SENSITIVE = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "api_key",
    "authorization",
    "cookie",
    "private_key",
    "credential",
    "credentials",
    "card_number",
    "cvv",
    "cvc",
)

# Events holding a call's arguments (JSON text) or a result (any JSON value).
ARGUMENT_FIELDS = {
    "tool_proposed": "arguments",
    "approval_requested": "arguments",
    "approval_resolved": "arguments",
    "tool_shadowed": "arguments",
}
RESULT_FIELDS = {
    "tool_finished": "result",
    "tool_compensated": "result",
    # a wait's result (a signal's payload, a remote task's answer) becomes the call's result
    "wait_resolved": "result",
    "wait_requested": "on_deadline",
}
_LEARN_FROM = ARGUMENT_FIELDS.keys() | RESULT_FIELDS.keys()
_RECORD_ARGUMENTS = ("arguments", "edited_arguments")
_PENDING_MAX = 512  # queued events read at once past this, so a long run holds few

T = TypeVar("T")


def normalise(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")


_DEFAULTS = tuple(normalise(name) for name in DEFAULT_SENSITIVE)


@functools.lru_cache(maxsize=4096)
def _default_sensitive(key: str) -> bool:
    return normalise(key).endswith(_DEFAULTS)


class Sensitivity:
    """Which fields of one agent version's calls are sensitive (immutable: share it)."""

    __slots__ = ("anywhere", "declared")

    def __init__(self, declared: Mapping[str, Iterable[str]] | None = None):
        self.declared = {
            tool: frozenset(normalise(n) for n in names) for tool, names in (declared or {}).items()
        }
        # For an event that does not name its tool (an edited approval, read on its own).
        self.anywhere = frozenset().union(*self.declared.values())

    @classmethod
    def of_spec(cls, spec: Mapping[str, Any] | None) -> Sensitivity:
        """From a run's pinned agent definition (`RunRecord.spec`)."""
        return cls(
            {
                t["name"]: t.get("sensitive") or ()
                for t in (spec or {}).get("tools", [])
                if isinstance(t, Mapping) and "name" in t
            }
        )

    def names(self, *tools: str | None) -> frozenset[str]:
        found = [self.declared.get(t, frozenset()) for t in tools if t]
        return frozenset().union(*found) if found else self.anywhere

    @staticmethod
    def matches(key: object, names: frozenset[str]) -> bool:
        if not isinstance(key, str):
            return False
        return _default_sensitive(key) or (bool(names) and normalise(key) in names)


class Redactor:
    """One run's projection: masks fields by name and remembers their values (see the
    module docstring). Build it once per run (`for_run`) and feed it the run's events in
    journal order."""

    __slots__ = ("_known", "_pending", "_secrets", "_tools", "seen", "sensitivity")

    def __init__(self, sensitivity: Sensitivity | None = None):
        self.sensitivity = sensitivity or Sensitivity()
        self._known: set[str] = set()
        self._secrets: list[str] = []  # longest first, so a longer secret is masked whole
        self._pending: list[Event] = []
        self._tools: dict[str, str] = {}  # call id -> tool, for events that name only the call
        self.seen = 0  # the highest journal position given to `events`

    @classmethod
    def for_run(cls, spec: Mapping[str, Any] | None) -> Redactor:
        return cls(Sensitivity.of_spec(spec))

    # -- learning ------------------------------------------------------------

    def remember(self, event: Event) -> None:
        """Queue an event whose values may be secrets; read when text is next masked."""
        if event.kind in _LEARN_FROM:
            self._pending.append(event)
            if len(self._pending) > _PENDING_MAX:
                self._drain()

    def learn(self, event: Event) -> None:
        """Remember the sensitive values this event holds, now."""
        kind = event.kind
        tool = getattr(event, "tool", None)
        call_id = getattr(event, "call_id", None)
        if tool and call_id:
            self._tools.setdefault(call_id, tool)
        if kind in ARGUMENT_FIELDS:
            text = getattr(event, ARGUMENT_FIELDS[kind])
            if text:
                self._masked(_parse(text), self._names(event))
        elif kind in RESULT_FIELDS:
            self._masked(getattr(event, RESULT_FIELDS[kind]), self._names(event))

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for event in pending:
            self.learn(event)

    def _keep(self, found: list[str]) -> None:
        new = [s for s in found if s not in self._known]
        if new:
            self._known.update(new)
            self._secrets = sorted(self._known, key=len, reverse=True)

    # -- projections ---------------------------------------------------------

    def events(self, items: Sequence[tuple[int, Event]], after: int = 0) -> list[tuple[int, Event]]:
        """The events with seq > `after`, masked; all of `items` are learned from first."""
        for seq, event in items:
            self.learn(event)
            if seq > self.seen:
                self.seen = seq
        self._drain()
        return [(seq, self.event(event)) for seq, event in items if seq > after]

    def event(self, event: Event) -> Event:
        """The event as people see it (learn from the run's earlier events first)."""
        self._drain()
        kind = event.kind
        changes: dict[str, Any] = {}
        structured = ARGUMENT_FIELDS.get(kind) or RESULT_FIELDS.get(kind)
        if structured is not None:
            value = getattr(event, structured)
            if value is not None:
                names = self._names(event)
                shown = (
                    self.arguments_with(names, value)
                    if kind in ARGUMENT_FIELDS
                    else self.value_with(names, value)
                )
                if shown is not value:
                    changes[structured] = shown
        if self._secrets:
            for name, value in event.__dict__.items():
                if name != structured and isinstance(value, str | dict | list):
                    scrubbed = self._scrub(value)
                    if scrubbed is not value:
                        changes[name] = scrubbed
        return dataclasses.replace(event, **changes) if changes else event

    def arguments(self, tool: str | None, text: str | None) -> str | None:
        """A call's arguments (JSON text) as people see them."""
        if text is None:
            return None
        self._drain()
        return self.arguments_with(self.sensitivity.names(tool), text)

    def value(self, tool: str | None, value: Any) -> Any:
        """A call's result (or parsed arguments) as people see them."""
        self._drain()
        return self.value_with(self.sensitivity.names(tool), value)

    def text(self, text: str | None) -> str | None:
        """Free text (an error message, a model's answer) with every remembered value masked."""
        if text is None or not (self._pending or self._secrets):
            return text
        self._drain()
        return self._scrub(text)

    def approval(self, record: T) -> T:
        """An approval record (`ApprovalRecord`) as people see it: its arguments, edited
        arguments, comment and reason, masked with what the record itself holds."""
        fields = {
            name: getattr(record, name, None)
            for name in ("tool", "arguments", "edited_arguments", "comment", "reason")
        }
        shown = self.record(fields)
        if shown is fields:
            return record
        del shown["tool"]
        return dataclasses.replace(record, **shown)  # type: ignore[type-var]

    def record(self, data: dict[str, Any]) -> dict[str, Any]:
        """A dict of fields naming a `tool` (an audit record's data, an approval): its
        `arguments` / `edited_arguments` (JSON text) and `result` masked by name, their
        values learned first, then masked in its other text. The same dict if unchanged."""
        names = self.sensitivity.names(data.get("tool"), data.get("undo"))
        for key in _RECORD_ARGUMENTS:
            if isinstance(data.get(key), str):
                self._masked(_parse(data[key]), names)
        if "result" in data:
            self._masked(data["result"], names)
        self._drain()
        out: dict[str, Any] | None = None
        for key, value in data.items():
            if key in _RECORD_ARGUMENTS and isinstance(value, str):
                shown = self.arguments_with(names, value)
            elif key == "result":
                shown = self.value_with(names, value)
            elif self._secrets and isinstance(value, str | dict | list):
                shown = self._scrub(value)
            else:
                continue
            if shown is not value:
                out = dict(data) if out is None else out
                out[key] = shown
        return data if out is None else out

    # -- the walk -------------------------------------------------------------

    def _names(self, event: Event) -> frozenset[str]:
        tool = getattr(event, "tool", None) or self._tools.get(getattr(event, "call_id", ""))
        return self.sensitivity.names(tool, getattr(event, "undo", None))

    def arguments_with(self, names: frozenset[str], text: str) -> str:
        parsed = _parse(text)
        if parsed is _NOT_JSON:
            return self._scrub(text)
        shown = self.value_with(names, parsed)
        if shown is parsed:
            return text  # unchanged: keep the journal's own spelling
        return orjson.dumps(shown, option=orjson.OPT_NON_STR_KEYS).decode()

    def value_with(self, names: frozenset[str], value: Any) -> Any:
        masked = self._masked(value, names)
        return self._scrub(masked) if self._secrets else masked

    def _masked(self, value: Any, names: frozenset[str]) -> Any:
        """`value` with sensitive keys masked (the same object if none is); their values are
        remembered."""
        if isinstance(value, dict):
            out: dict[Any, Any] | None = None
            for key, item in value.items():
                if Sensitivity.matches(key, names):
                    if item != MASK:
                        self._keep(_leaves(item))
                    shown = MASK
                else:
                    shown = self._masked(item, names)
                if shown is not item and out is None:
                    out = dict(value)
                if out is not None:
                    out[key] = shown
            return value if out is None else out
        if isinstance(value, list):
            items = [self._masked(v, names) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        return value

    def _scrub(self, value: Any) -> Any:
        """`value` with remembered secrets masked in every string (the same object if none)."""
        if isinstance(value, str):
            out = value
            for secret in self._secrets:
                if secret in out:
                    out = out.replace(secret, MASK)
            return value if out == value else out
        if isinstance(value, dict):
            pairs = [(k, self._scrub(v)) for k, v in value.items()]
            if all(v is value[k] for k, v in pairs):
                return value
            return dict(pairs)
        if isinstance(value, list):
            items = [self._scrub(v) for v in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        return value


def unmask(edited: Any, shown: Any, original: Any) -> Any:
    """Edited arguments with every part the editor left as shown (a masked field, a text with
    a secret masked in it) given back its real value from `original`."""
    if edited == shown:
        return original
    if isinstance(edited, dict) and isinstance(shown, dict) and isinstance(original, dict):
        return {
            k: unmask(v, shown[k], original[k]) if k in shown and k in original else v
            for k, v in edited.items()
        }
    if (
        isinstance(edited, list)
        and isinstance(shown, list)
        and isinstance(original, list)
        and len(edited) == len(shown) == len(original)
    ):
        return [unmask(e, s, o) for e, s, o in zip(edited, shown, original, strict=True)]
    return edited


_NOT_JSON = object()


def _parse(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def _leaves(value: Any) -> list[str]:
    """The texts (and numbers) in a masked value that are long enough to search for."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _leaves(v)]
    if isinstance(value, list):
        return [s for v in value for s in _leaves(v)]
    if isinstance(value, bool) or value is None:
        return []
    text = value if isinstance(value, str) else str(value)
    return [text] if len(text) >= MIN_SECRET and text not in MASK else []
