"""Hard-example mining: spend training time on the frames the current model gets wrong.

On two CPU cores an epoch at 640 px costs about half an hour, and a model that has already seen
thousands of easy frames learns little from more of them. So a fine-tune can render many frames,
run the base model over them, and keep only those where it misses a labelled violation or reports
one that is not there, at the thresholds the pipeline uses. The val split is never mined: its
figures stay comparable with the base model's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .geometry import box_iou

# Labelled objects smaller than this (in 640x384 frames) are not counted as misses: far specks that a
# pass finds anyway when the camera comes closer. Mining them would spend the fine-tune on the wrong frames.
MIN_HEIGHT_PX = 24


@dataclass(frozen=True)
class Mistakes:
    image: Path
    missed: int  # labelled violations with no prediction of their class above its threshold (IoU >= 0.5)
    false: int  # predictions above threshold that match no label of their class (IoU >= 0.3)

    @property
    def count(self) -> int:
        return self.missed + self.false


def read_labels(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """YOLO label lines -> (classes, xyxy pixel boxes)."""
    rows = [r.split() for r in path.read_text().splitlines() if r.strip()] if path.exists() else []
    if not rows:
        return np.zeros(0, int), np.zeros((0, 4))
    v = np.array(rows, float)
    w, h = size
    cx, cy, bw, bh = v[:, 1] * w, v[:, 2] * h, v[:, 3] * w, v[:, 4] * h
    return v[:, 0].astype(int), np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)


def count_mistakes(image: Path, labels: tuple[np.ndarray, np.ndarray], pred_cls: np.ndarray,
                   pred_conf: np.ndarray, pred_box: np.ndarray, thresholds: dict[int, float]) -> Mistakes:
    """Misses and false alarms of one frame, for the classes in ``thresholds`` only."""
    cls, box = labels
    missed = false = 0
    for c, thr in thresholds.items():
        truth = box[cls == c]
        pred = pred_box[(pred_cls == c) & (pred_conf >= thr)]
        big = truth[truth[:, 3] - truth[:, 1] >= MIN_HEIGHT_PX]
        missed += int((box_iou(big, pred).max(axis=1, initial=0.0) < 0.5).sum())
        false += int((box_iou(pred, truth).max(axis=1, initial=0.0) < 0.3).sum())
    return Mistakes(image, missed, false)


def mistakes(weights: Path, images: Sequence[Path], thresholds: dict[int, float], imgsz: int,
             progress: Callable[[int, int], None] | None = None) -> list[Mistakes]:
    """Run ``weights`` over ``images`` (labels beside them, YOLO layout) and count each frame's mistakes."""
    from ultralytics import YOLO

    from .backends.ultralytics_backend import prepare

    prepare()
    model = YOLO(str(weights))
    out = []
    low = min(thresholds.values())
    for i in range(0, len(images), 16):
        batch = [str(p) for p in images[i:i + 16]]
        for path, r in zip(batch, model.predict(batch, imgsz=imgsz, conf=low, iou=0.7, verbose=False, device="cpu")):
            p = Path(path)
            lab = p.parent.parent.parent / "labels" / p.parent.name / (p.stem + ".txt")
            h, w = r.orig_shape
            b = r.boxes
            out.append(count_mistakes(p, read_labels(lab, (w, h)), b.cls.numpy().astype(int), b.conf.numpy(),
                                      b.xyxy.numpy(), thresholds))
        if progress is not None:
            progress(min(i + 16, len(images)), len(images))
    return out


def hardest(found: Sequence[Mistakes], keep: int) -> list[Path]:
    """The ``keep`` frames with the most mistakes (frames without any are never kept), in path order."""
    ranked = sorted((m for m in found if m.count), key=lambda m: (-m.count, str(m.image)))
    return sorted(m.image for m in ranked[:keep])
