"""Real garbage-bag cut-outs (copy-paste augmentation) from a YOLO segmentation data set.

Rendered bags alone teach the detector what our drawings look like; pasting real bags, cut out
with their polygon masks, into the rendered streets gives it real texture and lighting too. Only
the data set's train/ split is used, less the photos that share a source photo with valid/ (woosong:
31), so its valid/ split stays unseen for evaluation.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..realdata import source_name
from .sprites import PPM, Canvas
from .textures import Look

MIN_POLY_AREA = 1500.0  # px^2 in the 640x640 source; smaller bags are too blurry to be useful


class RealBags:
    """Index of (image, polygon) pairs under `root/train`, cut out on demand."""

    def __init__(self, root: Path) -> None:
        self.items: list[tuple[Path, np.ndarray]] = []
        held_out = {source_name(p) for p in (root / "valid" / "images").glob("*")}
        for label in sorted((root / "train" / "labels").glob("*.txt")):
            image = _image_for(root / "train" / "images", label.stem)
            if image is None or source_name(image) in held_out:
                continue
            for line in label.read_text().splitlines():
                vals = line.split()
                if len(vals) < 7:
                    continue
                poly = np.asarray(vals[1:], np.float32).reshape(-1, 2)
                if cv2.contourArea(poly * 640) >= MIN_POLY_AREA:
                    self.items.append((image, poly))
        if not self.items:
            raise FileNotFoundError(f"no usable polygons under {root}/train")

    def cutout(self, rng: np.random.Generator) -> np.ndarray:
        """One real bag as a tight BGRA crop with a feathered mask."""
        path, poly = self.items[int(rng.integers(len(self.items)))]
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        pts = (poly * [img.shape[1], img.shape[0]]).round().astype(np.int32)
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.0)
        x, y, w, h = cv2.boundingRect(pts)
        return np.dstack([img, mask])[y:y + h, x:x + w]

    def pile(self, rng: np.random.Generator, look: Look) -> np.ndarray:
        """1-3 real bags side by side on a soft shadow, scaled to 0.5-1.0 m each, lit like the street."""
        bags = []
        for _ in range(int(rng.integers(1, 4))):
            cut = self.cutout(rng)
            width_px = max(8, int(rng.uniform(0.5, 1.0) * PPM))
            height_px = max(8, int(cut.shape[0] * width_px / cut.shape[1]))
            size = (width_px, min(height_px, int(1.5 * PPM)))
            bags.append(cv2.resize(cut, size, interpolation=cv2.INTER_AREA))
        overlap = 0.25
        total_w = sum(b.shape[1] for b in bags) * (1 - overlap) + bags[-1].shape[1] * overlap
        canvas = Canvas(total_w / PPM + 0.4, max(b.shape[0] for b in bags) / PPM + 0.1)
        x = int(0.2 * PPM)
        ground = canvas.img.shape[0] - 1
        for bag in bags:
            h, w = bag.shape[:2]
            region = canvas.img[ground - h:ground, x:x + w]
            a = bag[..., 3:4].astype(np.float32) / 255
            region[:] = (bag * a + region * (1 - a)).astype(np.uint8)
            region[..., 3] = np.maximum(region[..., 3], bag[..., 3])
            x += int(w * (1 - overlap))
        canvas.shadow(0.2, total_w / PPM + 0.2)
        return canvas.done(look)


def _image_for(folder: Path, stem: str) -> Path | None:
    """The image file for a label stem, whatever its extension."""
    for ext in (".jpg", ".jpeg", ".png", ".JPG", ".PNG"):
        path = folder / (stem + ext)
        if path.exists():
            return path
    return None
