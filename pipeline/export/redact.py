"""Blur faces and licence plates in the copies that go into an exposure-meeting pack.

Packs are shown to a room and often passed on, so bystanders' faces and plates can be pixelated in the
pack's copies; the evidence in the workspace is never touched (it is read, checked against its recorded
hash, and copied). Detection uses OpenCV's bundled Haar cascades: no model is downloaded. A redactor
that cannot detect must not pretend to: if the cascades are missing, asking for a blur fails up front.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CASCADES = {"faces": "haarcascade_frontalface_default.xml", "plates": "haarcascade_russian_plate_number.xml"}
# (scaleFactor, minNeighbors, minSize): faces need more agreeing neighbours than the sparser plate cascade
_PARAMS = {"faces": (1.1, 5, (24, 24)), "plates": (1.1, 3, (40, 12))}
_DETECT_MAX_SIDE = 960  # detect on a downscaled copy: Haar cost grows with pixels, faces stay findable
_PAD = 0.15  # grow each box so the blur covers hair, chin and plate frame
Box = tuple[int, int, int, int]  # x, y, w, h


class RedactionError(RuntimeError):
    """Blurring cannot be done (no cascades in this OpenCV) or failed (ffmpeg error)."""


@dataclass(frozen=True)
class Redactor:
    """Pixelates what its cascades find; each method returns how many regions of each kind it blurred."""

    cascades: dict[str, cv2.CascadeClassifier]

    def detect(self, image: np.ndarray) -> dict[str, list[Box]]:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        scale = min(1.0, _DETECT_MAX_SIDE / max(gray.shape))
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        out = {}
        for kind, cascade in self.cascades.items():
            factor, neighbours, min_size = _PARAMS[kind]
            found = cascade.detectMultiScale(gray, scaleFactor=factor, minNeighbors=neighbours, minSize=min_size)
            out[kind] = [tuple(int(v / scale + 0.5) for v in box) for box in found]
        return out

    def image(self, src: Path, dst: Path) -> dict[str, int]:
        """Write a blurred copy of a still; when nothing is found the bytes are copied unchanged."""
        img = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if img is None:
            raise RedactionError(f"cannot read image {src}")
        found = self.detect(img)
        if any(found.values()):
            pixelate(img, [b for boxes in found.values() for b in boxes])
            if not cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, 90]):
                raise RedactionError(f"cannot write {dst}")
        else:
            shutil.copyfile(src, dst)
        return {k: len(v) for k, v in found.items()}

    def video(self, src: Path, dst: Path) -> dict[str, int]:
        """Re-encode a clip with every detected region pixelated (H.264 yuv420p, faststart, audio kept).

        Boxes from the previous frame are blurred too, so a face the cascade misses for one frame does not
        flash into view. When no frame has anything to blur the original bytes are copied instead.
        """
        cap = cv2.VideoCapture(str(src))
        ok, frame = cap.read()
        if not ok:
            raise RedactionError(f"cannot decode video {src}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        h, w = frame.shape[:2]
        proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
             "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", f"{fps:.6f}", "-i", "-",
             "-i", str(src), "-map", "0:v:0", "-map", "1:a:0?", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac",
             "-shortest", "-movflags", "+faststart", "-f", "mp4", str(dst)],
            stdin=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        totals = dict.fromkeys(self.cascades, 0)
        previous: list[Box] = []
        try:
            while ok:
                found = self.detect(frame)
                boxes = [b for v in found.values() for b in v]
                pixelate(frame, boxes + previous)
                previous = boxes
                for k, v in found.items():
                    totals[k] += len(v)
                proc.stdin.write(frame.tobytes())
                ok, frame = cap.read()
        except BrokenPipeError:
            pass  # ffmpeg died; its message is read below
        finally:
            cap.release()
            proc.stdin.close()
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        if proc.wait() != 0:
            raise RedactionError(f"ffmpeg failed re-encoding {src.name}: {err.splitlines()[-1] if err else 'error'}")
        if not any(totals.values()):
            shutil.copyfile(src, dst)
        return totals


def pixelate(image: np.ndarray, boxes: list[Box]) -> None:
    """Mosaic each box in place, in blocks of a quarter of its short side: no face or plate text survives."""
    ih, iw = image.shape[:2]
    for x, y, w, h in boxes:
        px, py = int(w * _PAD), int(h * _PAD)
        x0, y0, x1, y1 = max(0, x - px), max(0, y - py), min(iw, x + w + px), min(ih, y + h + py)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        roi = image[y0:y1, x0:x1]
        block = max(2, min(roi.shape[:2]) // 4)
        small = cv2.resize(roi, (max(1, roi.shape[1] // block), max(1, roi.shape[0] // block)),
                           interpolation=cv2.INTER_AREA)
        image[y0:y1, x0:x1] = cv2.resize(small, (roi.shape[1], roi.shape[0]), interpolation=cv2.INTER_NEAREST)


def available() -> bool:
    """Whether this OpenCV has the Haar cascades (OpenCV 4.x wheels do; 5.0 dropped them)."""
    return hasattr(cv2, "CascadeClassifier") and all(
        (Path(cv2.data.haarcascades) / f).is_file() for f in CASCADES.values())


def load_redactor(faces: bool, plates: bool) -> Redactor | None:
    """The redactor for the requested kinds, or None when nothing is to be blurred."""
    kinds = [k for k, wanted in (("faces", faces), ("plates", plates)) if wanted]
    if not kinds:
        return None
    if not available():
        raise RedactionError(
            f"blurring {' and '.join(kinds)} needs OpenCV's bundled Haar cascades, which OpenCV {cv2.__version__} "
            "does not ship: install opencv-python-headless<5 (OpenCV 5 removed them)")
    return Redactor({k: cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADES[k])) for k in kinds})
