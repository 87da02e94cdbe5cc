"""The states of runs this process parked, so a woken run replays only its journal's tail.

Why: a parent of 1,000 children is woken up to once per child. Rebuilding its state from
the whole journal at every wake decodes O(N) events each time, O(N^2) over the fan-out.
The loop that parked the run held exactly the state a replay gives (`engine/state.py`: one
`apply` for running and resuming), so the Runtime keeps it, keyed by the run and the seq it
parked at, and a drive of the run takes it back and applies only the events after that.

Correctness first: the cache is a shortcut to what `rebuild` returns, never a second truth.

- Only a state whose last event was committed (the loop returned it parked) is kept, with
  that event; a drive re-reads the journal from that seq and uses the state only if the
  event stored there is the one kept (anything else, say a park whose commit lost its lease
  and another worker's event at that seq, drops it: a full replay follows).
- The journal is append-only, so what others appended meanwhile (a resolve, another
  worker's whole pass) is the tail, folded by the same `apply`.
- A drive takes the state out (it mutates it); nothing else holds it.
- Bounded: at most `PARKED_STATES` runs, the oldest dropped first (a dropped run pays one
  full replay). Nothing depends on it being there: a run woken in another process, or
  after a restart, replays in full as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from bosun.engine.state import RunState, rebuild
from bosun.journal.events import Event
from bosun.store.base import Store


@dataclass(slots=True)
class _Parked:
    state: RunState
    last: Event  # the event at `state.seq`, as committed


class ParkedStates:
    """Run id -> the state its loop parked with (see the module docstring)."""

    def __init__(self, size: int = 0):
        self.size = size or PARKED_STATES
        self._parked: dict[str, _Parked] = {}
        self.hits = 0  # drives that replayed only a tail (for tests and benchmarks)

    def keep(self, state: RunState, last: Event) -> None:
        """`state` parked, `last` (its seq's event) committed: keep it for the next drive."""
        self._parked.pop(state.run_id, None)
        self._parked[state.run_id] = _Parked(state, last)
        if len(self._parked) > self.size:
            self._parked.pop(next(iter(self._parked)))

    def drop(self, run_id: str) -> None:
        self._parked.pop(run_id, None)

    def peek(self, run_id: str) -> RunState | None:
        """The state kept for the run (not taken out), for tests."""
        parked = self._parked.get(run_id)
        return parked.state if parked is not None else None

    async def state(self, store: Store, run_id: str, *, take: bool = True) -> RunState:
        """The run's state as a full replay of its journal gives it: the kept one with the
        journal's tail applied when it still matches, else a replay from the start. `take`
        (a drive, which mutates it) takes it out; a reader leaves it, caught up to the
        journal's end (still a full replay's state, at a later seq)."""
        parked = self._parked.pop(run_id, None)
        if parked is not None:
            state = parked.state
            tail = await store.events(run_id, after_seq=state.seq - 1)
            if tail and tail[0][0] == state.seq and tail[0][1] == parked.last:
                for seq, event in tail[1:]:
                    if seq != state.seq + 1:
                        break  # not the journal this state was folded from
                    state.apply(event)
                else:
                    self.hits += 1
                    if not take:
                        self._parked[run_id] = _Parked(state, tail[-1][1])
                    return state
        return rebuild(run_id, await store.events(run_id))


# Parked runs whose state one Runtime keeps (a worker's parked parents, mostly).
PARKED_STATES = 256


__all__ = ["PARKED_STATES", "ParkedStates"]
