"""One exception hierarchy, so callers can catch `BosunError` and read a message that says what to do."""

from __future__ import annotations


class BosunError(Exception):
    """Root of every error Bosun raises on purpose."""


class SpecError(BosunError):
    """An agent, tool or limit definition is invalid. The message names the file, line and field."""


class StoreError(BosunError):
    """The database could not do what was asked; the journal is left as it was before the call."""


class NewerDatabase(StoreError):
    """The database has migrations this Bosun does not know: a newer Bosun wrote it
    (upgrade Bosun; an older one never rewrites a newer layout)."""


class UnstorableEvent(StoreError):
    """An event could not be encoded or stored as it is (nothing of its batch was written);
    the store itself is fine, so retrying the same events would fail again."""


class StoreUnavailable(StoreError):
    """The database cannot be used right now (unreachable, restarting, out of space); the same
    call can succeed once it is back. Workers wait and retry; the API answers 503."""


class LeaseLost(StoreError):
    """Another worker owns this run now (our lease expired); this worker must stop touching it."""


class RunNotFound(BosunError):
    """No run with that id exists in this database."""


class ResultNotFound(BosunError, LookupError):
    """A run has no such tool call, the call has no result (it failed, or has not ended),
    or its whole result is no longer stored (`bosun gc` collected it)."""


class RunAlreadyFinished(BosunError):
    """The run has ended (succeeded, failed, cancelled, ...): nothing can wake it any more, so
    a signal sent to it would be lost; the caller hears so instead."""


class InvalidAnswer(BosunError):
    """A human task's answer does not fit the task's form (`bosun.workflow.tasks`): nothing
    was delivered, and the task keeps waiting."""


class BudgetExhausted(BosunError):
    """A child run was refused: its parent (with what the parent's other children hold) has
    nothing left of a steps, tokens, cost or wall-time budget. The message names the run and
    the limit; raise the parent's limit or wait for its other children to finish."""


class ModelError(BosunError):
    """A model call failed after the provider's own retries."""

    def __init__(self, message: str, *, error_type: str = "model_error", retryable: bool = False):
        super().__init__(message)
        self.error_type = error_type
        self.retryable = retryable


class ToolNotFound(BosunError):
    """A tool reference (`module:function`) could not be imported."""


class SourceUnavailable(BosunError):
    """A tool source could not be opened, or its connection broke during a call. The pool
    opens it again on next use. `sent` says whether the call may have reached the source
    (then it may have taken effect, like a timeout); False when it surely did not."""

    def __init__(self, message: str, *, sent: bool = False):
        super().__init__(message)
        self.sent = sent


class EditRefused(BosunError):
    """An approver's edited arguments do not fit the tool or are forbidden by the policy; the
    approval stays pending. `rule` names what refused them (`schema` for the tool's schema)."""

    def __init__(self, message: str, *, rule: str):
        super().__init__(message)
        self.rule = rule


class FactNotFound(BosunError):
    """No remembered fact with that id in the tenant (`bosun memory show|forget`)."""


class InputMappingFailed(BosunError):
    """A trigger's event did not map to a run's input (a poison message, a 422 webhook)."""


class Replayed(BosunError):
    """A signed webhook request seen before under another delivery id: refused."""
