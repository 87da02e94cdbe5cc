"""How the database is doing, as the calls that use it find out, and how long to wait before
trying it again.

A database fails in ways no run is to blame for: it becomes unreachable (a PostgreSQL
restart, a terminated connection, a network cut) or it cannot grow (a full disk). Both end
by themselves or by an operator's hand. Each store records such failures in its
`StoreHealth`, which `/readyz` reports; writers and workers wait with a `Backoff` and try
again rather than give up.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field

log = logging.getLogger("bosun.store")

# A failure with no write waiting to be retried counts this long, unless a call succeeds
# first: readiness must recover by itself even when nothing is written (a full disk is
# only found out by a write that needs space).
QUIET_SECONDS = 10.0


@dataclass
class StoreHealth:
    """The current outage, if any: since when, the last error, how many calls failed.

    Logged once when an outage starts and once when it ends (with how long it lasted and
    how many calls failed), never once per failed call.
    """

    name: str = "the database"  # for the log: a path, or a URL without its password
    failing_since: float | None = None  # epoch seconds of this outage's first failure
    last_error: str | None = None  # kept after recovery, for the record
    failures: int = 0  # calls that failed because the database could not be used, ever
    retrying: int = 0  # writes waiting for the database to come back (their callers wait)
    _last_failure: float = field(default=0.0, repr=False)  # monotonic
    _failures_before: int = field(default=0, repr=False)  # `failures` when this outage began

    def failed(self, error: str) -> None:
        if self.failing_since is None:
            self.failing_since = time.time()
            self._failures_before = self.failures
            log.error(
                "%s is failing: %s (calls fail with StoreUnavailable until it is back;"
                " appends wait and try again)",
                self.name,
                error,
            )
        self.last_error = error
        self.failures += 1
        self._last_failure = time.monotonic()

    def succeeded(self) -> None:
        """A call worked. The outage is over unless writes still wait to be retried (a read
        that works says little about a full disk); the last of them to get through ends it."""
        if self.retrying:
            return
        if self.failing_since is not None:
            log.warning(
                "%s works again after %.1fs (%d calls failed; the last: %s)",
                self.name,
                time.time() - self.failing_since,
                self.failures - self._failures_before,
                self.last_error,
            )
        self.failing_since = None

    @property
    def failing(self) -> bool:
        if self.retrying:
            return True
        if self.failing_since is None:
            return False
        if time.monotonic() - self._last_failure < QUIET_SECONDS:
            return True
        self.failing_since = None
        return False


class Backoff:
    """Exponential delays with jitter, capped: 0.1 s, 0.2 s, 0.4 s ... up to `cap`.

    Each delay is drawn between half and all of its step, so many workers that lost the
    database together do not come back to it in lockstep.
    """

    def __init__(self, first: float = 0.1, cap: float = 5.0):
        self.first = first
        self.cap = cap
        self.attempts = 0

    def next(self) -> float:
        step = min(self.cap, self.first * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return random.uniform(step / 2, step)

    def reset(self) -> None:
        self.attempts = 0
