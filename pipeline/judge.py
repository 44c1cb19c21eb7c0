"""Judging: tracks become violations by per-category rules.

A detector fires on frames; a violation is an event in time. The rules here turn one into the other:
tracks that touch in the frames they share are one object where the category says so (the bags of one
pile), tracks of one object broken by occlusion, a shaky pan or a look away and back are merged (same
category, within ``merge_gap_s``, at the same place once the camera's motion is taken out: an inspector
who pans away and back sees the same pile again, not a second one), blips are dropped (min hits and
duration), and a "parked" vehicle that moves on its own once the camera's motion is taken out is a
vehicle driving past, not illegal parking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .config import Config
from .geometry import touching, union_box
from .records import Box, Track, Violation
from .track import center_distance


def judge(tracks: Sequence[Track], cfg: Config) -> list[Violation]:
    """The violations, in time order; each names the tracks it was judged from."""
    kept = []
    for tr in tracks:
        cc = cfg.categories[tr.category]
        if cc.max_residual_motion is not None and len(tr.detections) >= 3 and tr.residual_motion > cc.max_residual_motion:
            continue
        kept.append(tr)
    groups: list[list[Track]] = []
    for obj in sorted(_objects(kept, cfg), key=lambda o: (o[0].category, min(t.start_s for t in o))):
        cc = cfg.categories[obj[0].category]
        start = min(t.start_s for t in obj)
        for g in groups:
            gap = start - max(t.end_s for t in g)
            if (g[0].category == obj[0].category and 0 < gap <= cc.merge_gap_s
                    and center_distance(_stab_last(g), _stab_first(obj)) < 1.0):
                g.extend(obj)
                break
        else:
            groups.append(list(obj))
    violations = []
    for g in groups:
        cc = cfg.categories[g[0].category]
        dets = [d for t in g for d in t.detections]
        # a pile's bags are seen several to a frame: count frames, not boxes
        frames: dict[float, list] = {}
        for d in dets:
            frames.setdefault(d.t_s, []).append(d)
        start, end = min(frames), max(frames)
        if len(frames) < cc.min_hits or end - start < cc.min_duration_s:
            continue
        top = sorted((max(x.confidence for x in fd) for fd in frames.values()), reverse=True)[:3]
        best = max(dets, key=lambda d: d.confidence)
        best = replace(best, box=union_box(d.box for d in frames[best.t_s]))
        violations.append(Violation(g[0].category, start, end, round(sum(top) / len(top), 4), len(frames), best,
                                    tuple(t.id for t in g)))
    return sorted(violations, key=lambda v: (v.start_s, v.category))


def _objects(tracks: Sequence[Track], cfg: Config) -> list[list[Track]]:
    """Tracks grouped into objects: in a ``merge_touching`` category, tracks whose boxes touch in most of
    the frames they share are parts of one object; every other track is an object of its own."""
    tracks = sorted(tracks, key=lambda t: t.start_s)  # pairs that never share a frame are skipped below
    parent = list(range(len(tracks)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(tracks):
        if not cfg.categories[a.category].merge_touching:
            continue
        boxes_a = {d.t_s: d.box for d in a.detections}
        for j in range(i + 1, len(tracks)):
            b = tracks[j]
            if b.start_s > a.end_s:
                break
            if b.category != a.category:
                continue
            shared = [(boxes_a[d.t_s], d.box) for d in b.detections if d.t_s in boxes_a]
            if shared and 2 * sum(touching(x, y) for x, y in shared) > len(shared):
                parent[root(j)] = root(i)
    objects: dict[int, list[Track]] = {}
    for i, tr in enumerate(tracks):
        objects.setdefault(root(i), []).append(tr)
    return list(objects.values())


def _stab_first(obj: Sequence[Track]) -> Box:
    start = min(t.start_s for t in obj)
    return union_box(t.stab_first for t in obj if t.start_s == start)


def _stab_last(obj: Sequence[Track]) -> Box:
    end = max(t.end_s for t in obj)
    return union_box(t.stab_last for t in obj if t.end_s == end)
