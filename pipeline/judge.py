"""Judging: tracks become violations by per-category rules.

A detector fires on frames; a violation is an event in time. The rules here turn one into the other:
tracks of one object broken by occlusion, a shaky pan or a look away and back are merged (same
category, within ``merge_gap_s``, at the same place once the camera's motion is taken out: an inspector
who pans away and back sees the same pile again, not a second one), blips are dropped (min hits and
duration), and a "parked" vehicle that moves on its own once the camera's motion is taken out is a
vehicle driving past, not illegal parking.
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import Config
from .records import Track, Violation
from .track import center_distance


def judge(tracks: Sequence[Track], cfg: Config) -> tuple[list[Violation], dict[int, int]]:
    """Returns the violations (in time order) and {track id: index of its violation}."""
    groups: list[list[Track]] = []
    for tr in sorted(tracks, key=lambda t: (t.category, t.start_s)):
        cc = cfg.categories[tr.category]
        if cc.max_residual_motion is not None and len(tr.detections) >= 3 and tr.residual_motion > cc.max_residual_motion:
            continue
        for g in groups:
            last = g[-1]
            gap = tr.start_s - last.end_s
            if (last.category == tr.category and 0 < gap <= cc.merge_gap_s
                    and center_distance(last.stab_last, tr.stab_first) < 1.0):
                g.append(tr)
                break
        else:
            groups.append([tr])
    violations: list[tuple[Violation, list[int]]] = []
    for g in groups:
        cc = cfg.categories[g[0].category]
        dets = [d for t in g for d in t.detections]
        start, end = min(d.t_s for d in dets), max(d.t_s for d in dets)
        if len(dets) < cc.min_hits or end - start < cc.min_duration_s:
            continue
        top = sorted((d.confidence for d in dets), reverse=True)[:3]
        best = max(dets, key=lambda d: d.confidence)
        v = Violation(g[0].category, start, end, round(sum(top) / len(top), 4), len(dets), best,
                      tuple(t.id for t in g))
        violations.append((v, [t.id for t in g]))
    violations.sort(key=lambda x: (x[0].start_s, x[0].category))
    index = {tid: i for i, (_, tids) in enumerate(violations) for tid in tids}
    return [v for v, _ in violations], index
