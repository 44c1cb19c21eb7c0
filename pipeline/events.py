"""Observations in, violations out: the one place where sampled frames' detections become violations.

`vaudit run` feeds it frame by frame as the detector works; bench/events.py replays cached
observations through it to try thresholds. Each frame's detections are first held to the categories'
confidence thresholds, so a detector run at a lower floor (the bench caches one) gives exactly what
`vaudit run` gives; then they are tracked with the camera's motion taken out, and the finished tracks
are judged.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .config import Config
from .judge import judge
from .records import Detection, Track, Violation
from .track import Tracker

# one sampled frame: its time, its detections and the 3x3 camera motion to the reference frame
Observation = tuple[float, list[Detection], np.ndarray]


class EventBuilder:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.thresholds = {c: cc.confidence for c, cc in cfg.categories.items()}
        self.tracker = Tracker.for_config(cfg)

    def add(self, t_s: float, detections: list[Detection], to_ref: np.ndarray) -> list[Detection]:
        """One sampled frame: the detections kept, each with its ``track_id`` (None if untracked)."""
        kept = [d for d in detections if d.category is None or d.confidence >= self.thresholds[d.category]]
        return self.tracker.update(t_s, kept, to_ref)

    def finish(self) -> tuple[list[Track], list[Violation]]:
        """The finished tracks and the violations judged from them (each names its tracks)."""
        tracks = self.tracker.finish()
        return tracks, judge(tracks, self.cfg)


def violations_from(observations: Iterable[Observation], cfg: Config) -> tuple[list[Track], list[Violation]]:
    """A whole source's observations at once (what bench/events.py replays)."""
    builder = EventBuilder(cfg)
    for t_s, detections, to_ref in observations:
        builder.add(t_s, detections, to_ref)
    return builder.finish()
