"""Scoring found violations against ground truth (synthetic footage, or a hand-labelled file).

A match is the same category with overlapping time; matching is one-to-one, so a violation reported
twice counts once as found and once as a false alarm — "found exactly once" is what users need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class EventScore:
    truth: int = 0
    predicted: int = 0
    matched: int = 0
    misses: list[dict] = field(default_factory=list)
    false_alarms: list[dict] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 1.0

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 1.0

    def add(self, other: EventScore) -> EventScore:
        return EventScore(self.truth + other.truth, self.predicted + other.predicted, self.matched + other.matched,
                          self.misses + other.misses, self.false_alarms + other.false_alarms)

    def __str__(self) -> str:
        return (f"recall {self.recall:.3f} ({self.matched}/{self.truth}), "
                f"precision {self.precision:.3f} ({self.matched}/{self.predicted})")

    def report(self) -> str:
        """The figures plus what was missed and what was falsely reported, briefly."""
        def brief(xs: list[dict]) -> list[tuple]:
            return [(x["category"], round(x["start_s"], 1), round(x["end_s"], 1)) for x in xs]

        return f"{self}; missed {brief(self.misses)}; false alarms {brief(self.false_alarms)}"


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def score_events(predicted: Sequence[dict], truth: Sequence[dict], slack_s: float = 0.5) -> EventScore:
    """``predicted`` and ``truth`` items have category, start_s, end_s. ``slack_s`` widens each truth
    interval a little: a sampled detector sees an object up to one sample interval late.

    The one-to-one matching is a maximum matching (augmenting paths), not a greedy one: greedily giving
    the longest overlap first can leave a truth unmatched that another assignment would have matched
    (a long violation overlapping two found ones, one of which overlaps nothing else)."""
    edges: dict[int, list[tuple[float, int]]] = {}
    for i, t in enumerate(truth):
        for j, p in enumerate(predicted):
            if p["category"] == t["category"]:
                o = overlap(t["start_s"] - slack_s, t["end_s"] + slack_s, p["start_s"], p["end_s"])
                if o > 0:
                    edges.setdefault(i, []).append((o, j))
    for options in edges.values():
        options.sort(reverse=True)  # longest overlap tried first
    owner: dict[int, int] = {}  # predicted index -> truth index

    def augment(i: int, tried: set[int]) -> bool:
        for _, j in edges[i]:
            if j not in tried:
                tried.add(j)
                if j not in owner or augment(owner[j], tried):
                    owner[j] = i
                    return True
        return False

    for i in sorted(edges, key=lambda i: -edges[i][0][0]):
        augment(i, set())
    used_t = set(owner.values())
    return EventScore(
        truth=len(truth), predicted=len(predicted), matched=len(used_t),
        misses=[t for i, t in enumerate(truth) if i not in used_t],
        false_alarms=[p for j, p in enumerate(predicted) if j not in owner],
    )
