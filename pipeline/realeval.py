"""Frame-level accuracy on real labelled photos, measured through the pipeline's own detector.

The detector is built from the config exactly as `vaudit run` builds it (ensemble, ONNX/INT8, input
size), so the figures are those of what runs, not of the float weights. For each evaluated class:
AP50 (area under the precision/recall curve at IoU 0.5, 101-point as COCO and Ultralytics) and
recall/precision at the pipeline's own threshold for that class.

Evaluated classes are what a real set can tell: ``vehicle`` is any vehicle box, parked or not, so the
model's ``illegal_parking`` and ``vehicle`` boxes both count as vehicles (whether a parked vehicle is a
violation is the judge's question).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from .config import Config
from .geometry import box_iou
from .realdata import SHARED_DATA, RealSet, boxes, images

EVAL_AS = {"illegal_parking": "vehicle"}  # model class -> evaluated class, where they differ
IOU = 0.5
EVAL_FLOOR = 0.01  # the lowest confidence ranked for AP (boxes below it change AP by less than 0.001)
BATCH = 8
BOOTSTRAP = 200  # resamples for the standard error of AP50


def match(pred: np.ndarray, conf: np.ndarray, truth: np.ndarray, min_iou: float = IOU) -> np.ndarray:
    """Which predictions (one class, one image) hit a truth box: greedy by confidence, each truth once."""
    hit = np.zeros(len(pred), bool)
    if not len(pred) or not len(truth):
        return hit
    overlaps = box_iou(pred, truth)
    free = np.ones(len(truth), bool)
    for i in np.argsort(-conf, kind="stable"):
        cand = np.where(free & (overlaps[i] >= min_iou))[0]
        if len(cand):
            j = cand[np.argmax(overlaps[i, cand])]
            free[j], hit[i] = False, True
    return hit


def average_precision(conf: np.ndarray, hit: np.ndarray, n_truth: int) -> float:
    """Area under the interpolated precision/recall curve (101 recall points)."""
    if n_truth == 0 or len(conf) == 0:
        return 0.0
    order = np.argsort(-conf, kind="stable")
    tp = np.cumsum(hit[order])
    fp = np.cumsum(~hit[order])
    recall = np.concatenate(([0.0], tp / n_truth, [1.0]))
    precision = np.concatenate(([1.0], tp / (tp + fp), [0.0]))
    precision = np.flip(np.maximum.accumulate(np.flip(precision)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, recall, precision), x))


def bootstrap_se(per_photo: list[tuple[np.ndarray, np.ndarray, int]], rounds: int = BOOTSTRAP) -> float:
    """Standard error of AP50 from the choice of photos: the spread of AP over resamples of the photos
    (with replacement). It is the noise a model card states beside the figure."""
    rng = np.random.default_rng(0)
    aps = []
    for _ in range(rounds):
        pick = [per_photo[i] for i in rng.integers(0, len(per_photo), len(per_photo))]
        conf, hit = (np.concatenate([p[k] for p in pick]) for k in (0, 1))
        aps.append(average_precision(conf, hit, sum(p[2] for p in pick)))
    return float(np.std(aps))


def thresholds(cfg: Config, names: dict[int, str]) -> np.ndarray:
    """The confidence a box of each model class id needs to be kept by the pipeline: its category's
    threshold, else the floor at which context classes are kept (pipeline/detect.py)."""
    floor = min(c.confidence for c in cfg.categories.values())
    by_name = {cls: cfg.categories[cat].confidence for cls, cat in cfg.model.classes.items()}
    return np.array([by_name.get(names[k], floor) for k in range(max(names) + 1)])


def evaluate_set(detector, cfg: Config, rs: RealSet, data: Path = SHARED_DATA,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Per-class AP50 and recall/precision at the pipeline's thresholds on the set's holdout photos."""
    photos = images(rs, "holdout", data)
    classes = sorted(set(rs.classes.values()))
    needed = thresholds(cfg, detector.names)
    # a set that labels illegal parking itself is measured on it; others count it as any vehicle
    evaluated_as = {k: v for k, v in EVAL_AS.items() if k not in classes}
    scored: dict[str, list[tuple[np.ndarray, np.ndarray, int]]] = {c: [] for c in classes}  # per photo
    n_truth, n_kept, n_kept_hits = (dict.fromkeys(classes, 0) for _ in range(3))
    for start in range(0, len(photos), BATCH):
        chunk = photos[start:start + BATCH]
        pictures = [_read(p) for p in chunk]
        for photo, img, (xyxy, conf, cls) in zip(chunk, pictures, detector.raw(pictures), strict=True):
            h, w = img.shape[:2]
            truth = boxes(rs, photo)
            names = np.array([evaluated_as.get(detector.names[int(k)], detector.names[int(k)]) for k in cls])
            for c in classes:
                t = np.array([[(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]
                              for k, cx, cy, bw, bh in truth if k == c]).reshape(-1, 4)
                mine = names == c
                scored[c].append((conf[mine], match(xyxy[mine], conf[mine], t), len(t)))
                # what the pipeline keeps is matched on its own: classes folded into one (illegal_parking
                # and vehicle) have different thresholds, so the kept boxes are not a prefix by confidence
                kept = mine & (conf >= needed[cls])
                n_kept[c] += int(kept.sum())
                n_kept_hits[c] += int(match(xyxy[kept], conf[kept], t).sum())
                n_truth[c] += len(t)
        if progress:
            progress(min(start + BATCH, len(photos)), len(photos))
    per_class = {}
    for c in classes:
        conf, hit = (np.concatenate([photo[k] for photo in scored[c]]) for k in (0, 1))
        per_class[c] = {
            "boxes": n_truth[c], "AP50": round(average_precision(conf, hit, n_truth[c]), 3),
            "AP50_se": round(bootstrap_se(scored[c]), 3),
            "recall": round(n_kept_hits[c] / max(1, n_truth[c]), 3),
            "precision": round(n_kept_hits[c] / max(1, n_kept[c]), 3),
        }
    listing = hashlib.sha256("\n".join(p.name for p in photos).encode()).hexdigest()[:12]
    return {"photos": len(photos), "photo_list_sha256": listing, "per_class": per_class}


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return img


def evaluate_real(cfg: Config, sets: list[RealSet], *, model: Path | None = None, data: Path = SHARED_DATA,
                  progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Each set's holdout measured by the configured detector (or ``model`` alone): set -> figures."""
    from .detect import YoloDetector

    detector = YoloDetector(cfg, model, floor=EVAL_FLOOR)
    out = {"model": detector.name, "imgsz": cfg.model.imgsz, "precision": cfg.model.precision, "sets": {}}
    for rs in sets:
        def step(done: int, total: int, name: str = rs.name) -> None:
            if progress:
                progress(name, done, total)

        out["sets"][rs.name] = evaluate_set(detector, cfg, rs, data, step)
    return out
