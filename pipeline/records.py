"""The records that flow between stages.

Each stage takes records and returns records, so a stage can be tested with records made by hand,
swapped for another implementation, or moved to another process. Conventions: offsets inside a
source are float seconds from its first frame (``*_s``); wall-clock times are timezone-aware
datetimes; boxes are pixel ``(x1, y1, x2, y2)`` in the upright (rotation-applied) frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

Box = tuple[float, float, float, float]
# The detector's classes in model index order: the renderer draws them, training maps real sets onto
# them, config maps the first three to violation categories; the rest are context.
CLASSES = ["garbage", "illegal_parking", "stall", "vehicle", "bin", "person"]


@dataclass(frozen=True)
class Probe:
    """What a container says about itself; filled by ingest, never by guessing."""

    duration_s: float
    fps: float
    vfr: bool
    width: int  # upright, i.e. after rotation
    height: int
    codec: str
    container: str
    rotation: int  # degrees clockwise the frame must be turned to be upright
    audio_codec: str | None  # None when there is no audio stream
    creation_time: datetime | None
    gps: str | None
    device: str | None


@dataclass(frozen=True)
class Source:
    """One original footage file, identified by its content hash."""

    id: int
    sha256: str
    path: str
    size: int
    probe: Probe
    district: str | None
    inspector: str | None
    capture_start: datetime | None
    capture_start_origin: str  # "metadata" | "filename" | "manifest" | "mtime-guess" | "unknown"
    original_copy: str | None = None  # workspace-relative read-only copy (ingest --copy)

    def wall_clock(self, t_s: float) -> datetime | None:
        return None if self.capture_start is None else self.capture_start + timedelta(seconds=t_s)


@dataclass(frozen=True, eq=False)
class Frame:
    """A decoded, upright frame chosen by the sampler. ``image`` is BGR uint8."""

    t_s: float
    index: int  # position in the sampled sequence
    keyframe: bool
    image: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Detection:
    frame_index: int
    t_s: float
    cls: str  # model class name
    category: str | None  # violation category it feeds, None for context classes
    confidence: float
    box: Box
    track_id: int | None = None  # set by the tracker; None for context classes and boxes it set aside


@dataclass(frozen=True)
class Track:
    """Detections of one physical object across sampled frames."""

    id: int
    category: str
    detections: tuple[Detection, ...]
    residual_motion: float  # median object motion not explained by the camera, in box heights per second
    stab_first: Box  # first and last box in the stabilised (camera-motion compensated) reference frame
    stab_last: Box

    @property
    def start_s(self) -> float:
        return self.detections[0].t_s

    @property
    def end_s(self) -> float:
        return self.detections[-1].t_s


@dataclass(frozen=True)
class Violation:
    category: str
    start_s: float
    end_s: float
    confidence: float
    hits: int
    best: Detection
    track_ids: tuple[int, ...]


@dataclass(frozen=True)
class Artifact:
    kind: str  # "clip" | "proxy" | "keyframe"
    path: str  # relative to the workspace
    sha256: str
    size: int
    start_s: float | None
    end_s: float | None
    command: str | None  # the ffmpeg command line that made it, for re-derivation


@dataclass(frozen=True)
class Decision:
    violation_id: int
    user: str
    action: str  # "confirm" | "reject" | "relabel" | "trim" | "note" | "correct_box" | "add"
    category: str | None = None
    reason: str | None = None
    note: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    box: Box | None = None  # correct_box / add: the box the analyst drew, full-resolution upright pixels
    t_s: float | None = None  # the source time of the frame it was drawn on
