"""Reviews per reviewer: how often each reviewer agent approved, vetoed or asked for an
edit, and its veto rate. One projection of `ReviewDecided` events, for the console's run
page (the reviews of a run tree) and anything else that shows veto rates; Prometheus has
the same counts live as `bosun_reviews_total{reviewer, verdict}` (`observe/metrics.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bosun.journal.events import Event, ReviewDecided
from bosun.spec.vocab import ReviewVerdict


@dataclass(slots=True)
class ReviewerRate:
    reviewer: str
    approved: int = 0
    vetoed: int = 0
    edits: int = 0

    @property
    def reviews(self) -> int:
        return self.approved + self.vetoed + self.edits

    @property
    def veto_rate(self) -> float:
        return self.vetoed / self.reviews if self.reviews else 0.0


def reviewer_rates(events: Iterable[tuple[int, Event]]) -> list[ReviewerRate]:
    """Each reviewer's verdicts among `events` (any runs' events), by reviewer name."""
    rates: dict[str, ReviewerRate] = {}
    for _, event in events:
        if not isinstance(event, ReviewDecided):
            continue
        rate = rates.get(event.reviewer)
        if rate is None:
            rate = rates[event.reviewer] = ReviewerRate(event.reviewer)
        if event.verdict == ReviewVerdict.APPROVE:
            rate.approved += 1
        elif event.verdict == ReviewVerdict.EDIT:
            rate.edits += 1
        else:
            rate.vetoed += 1
    return sorted(rates.values(), key=lambda r: r.reviewer)


__all__ = ["ReviewerRate", "reviewer_rates"]
