"""Detection: the Detector protocol and its Ultralytics YOLO backend.

Only this module imports Ultralytics, so another backend (a service, another framework) replaces one
class. Boxes are returned in the source's full upright resolution, whatever size the sampler
decoded at, because evidence keyframes and review overlays are drawn at full resolution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .config import Config
from .records import Detection, Frame


class ModelError(Exception):
    """The model file is missing or unusable (a user-facing reason)."""


class Detector(Protocol):
    names: dict[int, str]

    def detect(self, frames: Sequence[Frame], full_size: tuple[int, int]) -> list[Detection]: ...


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class YoloDetector:
    """Ultralytics YOLO; ``backend`` picks PyTorch weights or an ONNX/OpenVINO export beside them."""

    def __init__(self, cfg: Config, model_path: Path | None = None):
        path = Path(model_path) if model_path else cfg.model.resolved_path()
        if not path.exists():
            raise ModelError(f"model file not found: {path} (train one with `vaudit train` or pass --model)")
        self.path = path
        self.sha256 = file_sha256(path)
        self.imgsz = cfg.model.imgsz
        self.batch = cfg.model.batch
        self.class_map = dict(cfg.model.classes)
        self.thresholds = {c: cc.confidence for c, cc in cfg.categories.items()}
        # context classes are kept (for review and retraining) above this floor
        self.floor = min(self.thresholds.values())
        self.model = self._load(path, cfg.model.backend)
        self.names: dict[int, str] = dict(self.model.names)
        unknown = set(self.class_map) - set(self.names.values())
        if unknown:
            raise ModelError(
                f"config model.classes names {sorted(unknown)}, which model {path.name} does not have "
                f"(it has {sorted(self.names.values())})"
            )

    def _load(self, path: Path, backend: str):
        try:
            from ultralytics import YOLO
        except ImportError as e:  # pragma: no cover - install problem
            raise ModelError(f"ultralytics is not installed: {e}") from None
        target = path
        if backend != "torch":
            from . import export_model

            target = export_model.exported(path, backend, self.imgsz)
        try:
            return YOLO(str(target), task="detect")
        except Exception as e:  # noqa: BLE001 - any load failure is the model file's fault here
            raise ModelError(f"cannot load model {target}: {e}") from None

    def detect(self, frames: Sequence[Frame], full_size: tuple[int, int]) -> list[Detection]:
        if not frames:
            return []
        results = self.model.predict(
            [f.image for f in frames], imgsz=self.imgsz, conf=self.floor, verbose=False, device="cpu",
            batch=self.batch,
        )
        out: list[Detection] = []
        fw, fh = full_size
        for frame, res in zip(frames, results, strict=True):
            h, w = frame.image.shape[:2]
            sx, sy = fw / w, fh / h
            boxes = res.boxes
            if boxes is None or len(boxes) == 0:
                continue
            xyxy = boxes.xyxy.cpu().numpy()
            confs = boxes.conf.cpu().numpy()
            clss = boxes.cls.cpu().numpy().astype(int)
            for (x1, y1, x2, y2), conf, k in zip(xyxy, confs, clss, strict=True):
                name = self.names[int(k)]
                category = self.class_map.get(name)
                if category is not None and conf < self.thresholds[category]:
                    continue
                out.append(
                    Detection(
                        frame_index=frame.index, t_s=frame.t_s, cls=name, category=category,
                        confidence=round(float(conf), 4),
                        box=(round(x1 * sx, 1), round(y1 * sy, 1), round(x2 * sx, 1), round(y2 * sy, 1)),
                    )
                )
        return out
