"""Weighted boxes fusion: several models' boxes on one image become one set of boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .geometry import iou

FUSE_IOU = 0.55  # boxes of one class from different models overlapping this much are one object


def fuse(per_model: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], min_iou: float = FUSE_IOU
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted boxes fusion of several models' boxes on one image: (xyxy, confidence, class) each.

    Boxes of a class that overlap (IoU >= ``min_iou``, at most one per model) are one object: its box is
    their confidence-weighted mean and its confidence their sum over the number of models, so a box
    only one of two models reports keeps half its confidence. Agreement is what an ensemble adds;
    NMS over the union would keep every model's false alarms at full strength.
    """
    n = len(per_model)
    boxes = sorted(((float(c), int(k), m, b) for m, (xyxy, conf, cls) in enumerate(per_model)
                    for b, c, k in zip(xyxy, conf, cls, strict=True)), key=lambda x: -x[0])
    groups: list[dict] = []
    for c, k, m, b in boxes:
        g = next((g for g in groups if g["cls"] == k and m not in g["models"] and iou(g["box"], b) >= min_iou), None)
        if g is None:
            groups.append({"cls": k, "models": {m}, "weights": [c], "members": [b], "box": b})
            continue
        g["models"].add(m)
        g["weights"].append(c)
        g["members"].append(b)
        g["box"] = np.average(np.stack(g["members"]), axis=0, weights=g["weights"])
    if not groups:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)
    return (np.stack([g["box"] for g in groups]), np.array([sum(g["weights"]) / n for g in groups]),
            np.array([g["cls"] for g in groups], int))
