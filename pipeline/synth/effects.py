"""Camera artefacts applied after drawing: shake motion blur, sensor noise, bodycam overlay, JPEG.

They are what separates real inspection footage from clean renders; applying them per frame (not
per texture) keeps them independent of what is in view. All randomness comes from the caller's
generator so a seed reproduces a frame exactly.
"""

from __future__ import annotations

from datetime import datetime

import cv2
import numpy as np

NOISE_POOL = 3  # precomputed noise fields; each frame takes a random crop of one


class Sensor:
    """Gaussian sensor noise at one frame size, from a small pool of precomputed fields (fast)."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int], sigma: float) -> None:
        w, h = size
        self.size = size
        self.pool = [(rng.standard_normal((h + 16, w + 16, 3), np.float32) * sigma).astype(np.int16)
                     for _ in range(NOISE_POOL)]

    def apply(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        w, h = self.size
        field = self.pool[int(rng.integers(NOISE_POOL))]
        dx, dy = (int(v) for v in rng.integers(0, 16, 2))
        return cv2.add(frame, field[dy:dy + h, dx:dx + w], dtype=cv2.CV_8U)


def motion_blur(frame: np.ndarray, shift_px: tuple[float, float]) -> np.ndarray:
    """Box blur along the dominant direction of image motion during the exposure."""
    dx, dy = abs(shift_px[0]), abs(shift_px[1])
    k = round(max(dx, dy))
    if k < 2:
        return frame
    k = min(k, 15)
    return cv2.blur(frame, (k, 1) if dx >= dy else (1, k))


def overlay(frame: np.ndarray, when: datetime, device: str, corner: int) -> None:
    """Burn in the bodycam's date-time and device id in one corner (0-3 clockwise from top-left)."""
    h, w = frame.shape[:2]
    scale = max(0.4, h / 800)
    thick = max(1, round(scale * 1.5))
    lines = [when.strftime("%Y-%m-%d %H:%M:%S"), device]
    (tw, th), _ = cv2.getTextSize(lines[0], cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    margin = int(th * 0.8)
    x = margin if corner in (0, 3) else w - tw - margin
    y0 = margin + th if corner in (0, 1) else h - margin - int(2.6 * th)
    for k, text in enumerate(lines):
        y = y0 + int(k * 1.6 * th)
        # outline by offset copies: a thicker Hershey stroke would also change the glyph spacing
        for dx, dy, colour in ((-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, 255)):
            cv2.putText(frame, text, (x + dx, y + dy), cv2.FONT_HERSHEY_SIMPLEX, scale, (colour,) * 3, thick,
                        cv2.LINE_AA)


def jpeg(frame: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a frame (dataset images carry real compression artefacts)."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
