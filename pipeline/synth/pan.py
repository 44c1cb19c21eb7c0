"""Footage from real labelled photos: a handheld camera panning across each photo, with its boxes as
ground truth, so real imagery can be measured at the event level through `vaudit ingest` + `vaudit run`.

Each photo becomes its own short video (a cut between photos would let the tracker join two piles).
The view is a 16:9 window of the photo, zoomed in, that sweeps from one side to the other with a
little hand shake; a labelled box is a violation for the time at least ``VISIBLE_SHARE`` of it is in
view. Truth files follow the same contract as rendered footage (``NAME.json`` beside ``NAME.mp4``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np

from ..geometry import touching
from .encode import VideoWriter

SIZE = (960, 720)  # 4:3, as many bodycams record; the photos are square
FPS = 25.0
SECONDS = 6.0
ZOOM = 0.85  # the window's width as a share of the photo's (after fitting the output's aspect)
VISIBLE_SHARE = 0.6  # of a box's area in view for it to count as visible
MIN_HEIGHT_PX = 24  # in the output frame; smaller boxes are not expected to be found
MIN_VISIBLE_S = 1.5  # a box in view for less time is not a violation anyone could film
CATEGORY = {"garbage": "garbage"}  # photo class -> violation category (vehicles: parked or not is unknown)


def window(photo_size: tuple[int, int], t: float, rng_phase: np.ndarray) -> tuple[float, float, float, float]:
    """The view (x, y, w, h) in photo pixels at time ``t``: a left-to-right sweep plus hand shake."""
    pw, ph = photo_size
    w = min(pw, ph * SIZE[0] / SIZE[1]) * ZOOM
    h = w * SIZE[1] / SIZE[0]
    u = t / SECONDS
    shake = np.sin(2 * np.pi * (rng_phase[:2] + u * rng_phase[2:4] * 3)) * 0.02 * w
    x = (pw - w) * u + shake[0]
    y = (ph - h) * (0.5 + 0.4 * np.sin(np.pi * (u + rng_phase[4]))) + shake[1]
    return float(np.clip(x, 0, pw - w)), float(np.clip(y, 0, ph - h)), w, h


def piles(boxes: list[tuple[str | None, np.ndarray]]) -> list[tuple[str | None, list[np.ndarray]]]:
    """Boxes of one category that touch are one object: bags heaped together, or overflowing bins side by
    side, are one pile and one violation (the pipeline folds nested boxes of garbage the same way)."""
    out: list[tuple[str | None, list[np.ndarray]]] = []
    for category, box in boxes:
        members = [box]
        for k in range(len(out) - 1, -1, -1):
            c, others = out[k]
            if category is not None and c == category and any(touching(o, m) for o in others for m in members):
                members += others
                del out[k]
        out.append((category, members))
    return out


def _in_view(b: np.ndarray, x: float, y: float, s: float) -> np.ndarray | None:
    """Box ``b`` (photo pixels) in the output frame, if enough of it is in view to count."""
    v = ((b - [x, y, x, y]) * s).clip(0, [SIZE[0], SIZE[1], SIZE[0], SIZE[1]])
    full = (b[2] - b[0]) * (b[3] - b[1]) * s * s
    shown = max(0.0, v[2] - v[0]) * max(0.0, v[3] - v[1])
    return v if full > 0 and shown / full >= VISIBLE_SHARE and v[3] - v[1] >= MIN_HEIGHT_PX else None


def pan_video(photo: Path, labels: Sequence[tuple[str, float, float, float, float]], out_dir: Path, name: str,
              *, seed: int, capture_start: datetime | None = None) -> dict:
    """Writes ``out_dir/NAME.mp4`` and ``NAME.json``; ``labels`` are (class, cx, cy, w, h) normalised."""
    img = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {photo}")
    ph, pw = img.shape[:2]
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 1, 5)
    start = capture_start or datetime(2026, 11, 1, 9, 0, tzinfo=timezone(timedelta(hours=8))) + timedelta(minutes=seed)
    boxes = piles([(CATEGORY.get(c), np.array([(cx - w / 2) * pw, (cy - h / 2) * ph, (cx + w / 2) * pw,
                                               (cy + h / 2) * ph])) for c, cx, cy, w, h in labels])
    seen: list[dict[str, list[int]]] = [{} for _ in boxes]
    out_dir.mkdir(parents=True, exist_ok=True)
    n = round(SECONDS * FPS)
    with VideoWriter(out_dir / f"{name}.mp4", SIZE, FPS, capture_start=start, crf=23) as video:
        for i in range(n):
            t = i / FPS
            x, y, w, _ = window((pw, ph), t, phase)
            s = SIZE[0] / w
            m = np.array([[s, 0, -x * s], [0, s, -y * s]])
            video.write(cv2.warpAffine(img, m, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
            for k, (category, members) in enumerate(boxes):
                shown = [v for v in (_in_view(b, x, y, s) for b in members) if v is not None]
                if category is not None and shown:  # a pile is in view while any of its parts is
                    v = np.concatenate([np.min(shown, 0)[:2], np.max(shown, 0)[2:]])
                    seen[k][f"{t:.2f}"] = [round(float(c)) for c in v]
    violations = []
    for k, ((category, _), frames) in enumerate(zip(boxes, seen, strict=True)):
        times = sorted(float(t) for t in frames)
        if category and times and times[-1] - times[0] >= MIN_VISIBLE_S:
            violations.append({"id": f"v{k:02d}", "category": category, "start_s": times[0], "end_s": times[-1],
                               "boxes": frames})
    truth = {"capture_start": start.isoformat(), "fps": FPS, "size": list(SIZE), "seed": seed,
             "photo": photo.name, "violations": violations}
    (out_dir / f"{name}.json").write_text(json.dumps(truth, indent=1))
    return truth
