"""Tracking: associate detections across sampled frames into one track per physical object.

Samples are 0.5-1 s apart and the camera walks and shakes, so a box can move a long way between
samples. Each sampled frame's global motion against the previous one is estimated (sparse optical
flow + a RANSAC similarity), accumulated into a stabilised reference frame, and boxes are compared
there. What a box moves beyond the camera's motion (the residual) tells a driving car from a parked one.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import median

import cv2
import numpy as np

from .config import Config
from .geometry import iou
from .records import Box, Detection, Frame, Track

_WORK_WIDTH = 320


class MotionEstimator:
    """Similarity transform from each sampled frame to the first one (full-resolution pixels)."""

    def __init__(self) -> None:
        self._prev_gray: np.ndarray | None = None
        self._to_ref = np.eye(3)

    def update(self, frame: Frame, full_size: tuple[int, int]) -> np.ndarray:
        """Returns the 3x3 matrix mapping this frame's full-resolution pixels to reference pixels."""
        img = frame.image
        scale = _WORK_WIDTH / img.shape[1]
        gray = cv2.cvtColor(cv2.resize(img, (_WORK_WIDTH, round(img.shape[0] * scale))), cv2.COLOR_BGR2GRAY)
        full_scale = _WORK_WIDTH / full_size[0]  # full-res px -> work px
        if self._prev_gray is not None and self._prev_gray.shape == gray.shape:
            a = _estimate(self._prev_gray, gray)  # work px: prev -> cur
            if a is not None:
                s = np.diag([full_scale, full_scale, 1.0])
                a_full = np.linalg.inv(s) @ a @ s  # full px: prev -> cur
                self._to_ref = self._to_ref @ np.linalg.inv(a_full)
        self._prev_gray = gray
        return self._to_ref.copy()


def _estimate(prev: np.ndarray, cur: np.ndarray) -> np.ndarray | None:
    pts = cv2.goodFeaturesToTrack(prev, maxCorners=200, qualityLevel=0.01, minDistance=8)
    if pts is None or len(pts) < 8:
        return None
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, winSize=(21, 21), maxLevel=3)
    ok = st.reshape(-1) == 1
    if ok.sum() < 8:
        return None
    m, inliers = cv2.estimateAffinePartial2D(pts[ok], nxt[ok], method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if m is None or inliers is None or inliers.sum() < 6:
        return None
    scale = math.hypot(m[0, 0], m[1, 0])
    if not 0.7 < scale < 1.4:  # implausible between samples a second apart: treat as unknown
        return None
    return np.vstack([m, [0, 0, 1]])


def warp_box(box: Box, m: np.ndarray) -> Box:
    x1, y1, x2, y2 = box
    pts = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], dtype=float) @ m.T
    return (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())


def center_distance(a: Box, b: Box) -> float:
    """Distance between centres in units of the larger box's diagonal-ish size."""
    ca = ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    cb = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    size = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1], 1.0)
    return math.hypot(ca[0] - cb[0], ca[1] - cb[1]) / size


def similarity(a: Box, b: Box, min_iou: float) -> float | None:
    """Association score of two stabilised boxes, or None when they are not the same object."""
    o = iou(a, b)
    if o >= min_iou:
        return 1.0 + o
    d = center_distance(a, b)
    return 1.0 - d if d < 0.6 else None


def overlap_of_smaller(a: Box, b: Box) -> float:
    """Intersection over the smaller box: 1.0 when one box lies inside the other."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / small if small > 0 else 0.0


def _outvoted(d: Detection, detections: Sequence[Detection], thresholds: Mapping[str, float]) -> bool:
    """The same box is more likely something else: a hard negative (a vehicle in a bay, a tidy bin, a
    pedestrian; the model was trained on those classes precisely to say so), or another violation
    (a parked van also scored as a stall). Violation classes are compared by how far each clears its
    own threshold, since the thresholds are what make their confidences comparable."""
    def margin(x: Detection) -> float:
        return x.confidence / thresholds.get(x.category, 1.0)

    return any(o.category != d.category and iou(o.box, d.box) >= 0.5
               and (o.confidence > d.confidence if o.category is None else margin(o) > margin(d))
               for o in detections)


@dataclass
class _Open:
    id: int
    category: str
    dets: list[Detection] = field(default_factory=list)
    stab: list[Box] = field(default_factory=list)
    residuals: list[float] = field(default_factory=list)

    def predict(self, t_s: float) -> Box | None:
        """Where the object should be now if it keeps its last motion in the stabilised frame.

        The global camera model cannot explain everything: walking forward, near objects slide
        outwards and grow faster than the background, so the track's own velocity is extrapolated too.
        """
        if len(self.stab) < 2:
            return None
        (a, ta), (b, tb) = (self.stab[-2], self.dets[-2].t_s), (self.stab[-1], self.dets[-1].t_s)
        if tb <= ta:
            return None
        k = (t_s - tb) / (tb - ta)
        grow = min(2.0, max(0.5, ((b[2] - b[0]) * (b[3] - b[1]) / max((a[2] - a[0]) * (a[3] - a[1]), 1.0))
                            ** (0.5 * k)))
        cx = (b[0] + b[2]) / 2 + k * ((b[0] + b[2]) - (a[0] + a[2])) / 2
        cy = (b[1] + b[3]) / 2 + k * ((b[1] + b[3]) - (a[1] + a[3])) / 2
        w, h = (b[2] - b[0]) * grow / 2, (b[3] - b[1]) * grow / 2
        return (cx - w, cy - h, cx + w, cy + h)


class Tracker:
    """Incremental: feed each sampled frame's detections in time order, then ``finish()``.

    ``fold_nested``: the categories in which a second box lying mostly inside one already tracked in
    the same frame is a part of that object (a stall's canopy, one bag of a pile), not another object.
    None folds in every category. ``thresholds``: each category's confidence threshold, for weighing
    two violation classes given to the same box.
    """

    def __init__(self, max_gap_s: float, min_iou: float, fold_nested: Collection[str] | None = None,
                 thresholds: Mapping[str, float] | None = None):
        self.max_gap_s = max_gap_s
        self.min_iou = min_iou
        self.fold_nested = fold_nested
        self.thresholds = thresholds or {}
        self._open: list[_Open] = []
        self._closed: list[_Open] = []
        self._next_id = 1

    @classmethod
    def for_config(cls, cfg: Config) -> Tracker:
        return cls(cfg.events.max_gap_s, cfg.events.min_iou,
                   {c for c, cc in cfg.categories.items() if cc.fold_nested},
                   {c: cc.confidence for c, cc in cfg.categories.items()})

    def update(self, t_s: float, detections: Sequence[Detection], to_ref: np.ndarray) -> list[Detection]:
        """Returns ``detections`` with their ``track_id`` set (None where no track took them)."""
        still = []
        for tr in self._open:
            (still if t_s - tr.dets[-1].t_s <= self.max_gap_s else self._closed).append(tr)
        self._open = still
        cand = [(k, d, warp_box(d.box, to_ref)) for k, d in enumerate(detections)
                if d.category and not _outvoted(d, detections, self.thresholds)]
        pairs = []
        for k, d, sb in cand:
            for tr in self._open:
                if tr.category == d.category and tr.dets[-1].t_s < t_s:
                    pred = tr.predict(t_s)
                    scores = [similarity(tr.stab[-1], sb, self.min_iou)]
                    if pred is not None:
                        scores.append(similarity(pred, sb, self.min_iou))
                    s = max((x for x in scores if x is not None), default=None)
                    if s is not None:
                        pairs.append((s, k, tr))
        pairs.sort(key=lambda p: -p[0])
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for _, k, tr in pairs:
            if k in assigned or tr.id in used:
                continue
            d = detections[k]
            sb = next(c[2] for c in cand if c[0] == k)
            dt = max(t_s - tr.dets[-1].t_s, 1e-3)
            h = max(sb[3] - sb[1], tr.stab[-1][3] - tr.stab[-1][1], 1.0)
            move = math.hypot((sb[0] + sb[2] - tr.stab[-1][0] - tr.stab[-1][2]) / 2,
                              (sb[1] + sb[3] - tr.stab[-1][1] - tr.stab[-1][3]) / 2)
            tr.residuals.append(move / h / dt)
            tr.dets.append(replace(d, track_id=tr.id))
            tr.stab.append(sb)
            assigned[k] = tr.id
            used.add(tr.id)
        for k, d, sb in sorted(cand, key=lambda c: -c[1].confidence):
            if k in assigned:
                continue
            # a second box on the same object (the whole stall and its canopy, say) is not a second object
            fold = self.fold_nested is None or d.category in self.fold_nested
            twin = next((j for j in assigned if fold and detections[j].category == d.category
                         and overlap_of_smaller(detections[j].box, d.box) >= 0.6), None)
            if twin is not None:
                assigned[k] = assigned[twin]
            else:
                tr = _Open(self._next_id, d.category, [replace(d, track_id=self._next_id)], [sb])
                self._next_id += 1
                self._open.append(tr)
                assigned[k] = tr.id
        return [replace(d, track_id=assigned.get(k)) for k, d in enumerate(detections)]

    def finish(self) -> list[Track]:
        done = self._closed + self._open
        self._open, self._closed = [], []
        return [
            Track(tr.id, tr.category, tuple(tr.dets), median(tr.residuals) if tr.residuals else 0.0,
                  stab_first=tr.stab[0], stab_last=tr.stab[-1])
            for tr in sorted(done, key=lambda t: t.id)
        ]
