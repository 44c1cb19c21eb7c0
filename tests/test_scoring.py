"""Event scoring: one-to-one matching by category and overlapping time, as many matches as possible."""

from __future__ import annotations

from pipeline.scoring import score_events


def ev(category: str, start: float, end: float) -> dict:
    return {"category": category, "start_s": start, "end_s": end}


def test_a_violation_reported_twice_is_found_once_and_falsely_once():
    s = score_events([ev("garbage", 1, 4), ev("garbage", 5, 8)], [ev("garbage", 0, 9)])
    assert (s.truth, s.predicted, s.matched) == (1, 2, 1)
    assert len(s.false_alarms) == 1 and not s.misses


def test_category_must_agree_and_slack_allows_a_late_first_sample():
    s = score_events([ev("parking", 0, 3), ev("stall", 3.4, 6)], [ev("garbage", 0, 3), ev("stall", 0, 3)])
    assert s.matched == 1 and s.misses == [ev("garbage", 0, 3)] and s.false_alarms == [ev("parking", 0, 3)]
    assert score_events([ev("stall", 3.6, 6)], [ev("stall", 0, 3)]).matched == 0


def test_matching_is_maximal_not_greedy():
    # the long truth overlaps both finds most; greedily giving it the longest overlap (the first find)
    # would leave the short truth, which only the first find overlaps, unmatched
    truth = [ev("parking", 0, 20), ev("parking", 0, 4)]
    found = [ev("parking", 0, 10), ev("parking", 12, 20)]
    s = score_events(found, truth)
    assert s.matched == 2 and not s.misses and not s.false_alarms
    assert (s.recall, s.precision) == (1.0, 1.0)
