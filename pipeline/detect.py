"""Detection: the Detector protocol and the YOLO detector the config describes (backend, ensemble,
precision, thresholds); the backends themselves live in pipeline/backends/. Boxes are returned in the source's full upright resolution, whatever size the sampler
decoded at, because evidence keyframes and review overlays are drawn at full resolution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .backends import ModelError
from .backends import ultralytics_backend as ultra
from .backends.onnx_backend import OnnxYolo
from .config import Config
from .fusion import fuse
from .hashing import sha256_file
from .records import Detection, Frame

__all__ = ["Detector", "ModelError", "YoloDetector"]

ENSEMBLE_FLOOR = 0.05  # lowest confidence an ensemble member reports (fusion and thresholds come after)


class Detector(Protocol):
    names: dict[int, str]
    path: Path  # the main weights
    paths: list[Path]  # all weights whose boxes it reports (an ensemble has several)
    sha256: str
    batch: int

    def detect(self, frames: Sequence[Frame], full_size: tuple[int, int]) -> list[Detection]: ...


class YoloDetector:
    """Ultralytics YOLO weights, run by PyTorch or by an ONNX Runtime / OpenVINO export of the same weights.

    The backend is picked in config by measurement (bench/pipeline.py): the exports are made from the
    .pt file on first use and cached by its hash, so the model of record stays the .pt file.
    """

    def __init__(self, cfg: Config, model_path: Path | None = None, floor: float | None = None):
        """``floor`` overrides the lowest confidence reported (an evaluation wants the whole ranking)."""
        # --model replaces the configured model and its ensemble: one file, measured on its own
        paths = [Path(model_path)] if model_path else [cfg.model.resolved_path(p) for p in cfg.model.all_paths()]
        for p in paths:
            if not p.exists():
                raise ModelError(f"model file not found: {p} (train one with `vaudit train` or pass --model)")
        self.path = paths[0]
        self.paths = paths
        shas = [sha256_file(p) for p in paths]
        self.sha256 = shas[0] if len(shas) == 1 else hashlib.sha256("+".join(shas).encode()).hexdigest()
        self.imgsz = cfg.model.imgsz
        self.batch = cfg.model.batch
        self.backend = cfg.model.backend
        self.precision = cfg.model.precision
        self.class_map = dict(cfg.model.classes)
        self.thresholds = {c: cc.confidence for c, cc in cfg.categories.items()}
        # context classes are kept (for review and retraining) above this floor
        self.floor = min(self.thresholds.values()) if floor is None else floor
        # an ensemble's members report weaker boxes too: a box one model misses scores half as fused
        self.member_floor = self.floor if len(paths) == 1 else min(self.floor, ENSEMBLE_FLOOR)
        self.onnx_paths: list[Path] = []  # the exports actually run (onnx backend)
        members = [self._member(p, sha, cfg) for p, sha in zip(paths, shas, strict=True)]
        self.names: dict[int, str] = members[0][0]
        for (names, _), p in zip(members[1:], paths[1:], strict=True):
            if names != self.names:
                raise ModelError(f"model.ensemble: {p.name} has classes {sorted(names.values())}, "
                                 f"{self.path.name} has {sorted(self.names.values())}; an ensemble needs the same")
        self._members = [infer for _, infer in members]
        unknown = set(self.class_map) - set(self.names.values())
        if unknown:
            raise ModelError(
                f"config model.classes names {sorted(unknown)}, which model {self.path.name} does not have "
                f"(it has {sorted(self.names.values())})"
            )

    @property
    def name(self) -> str:
        """The weights' file name, or the members' joined by '+'."""
        return "+".join(p.name for p in self.paths)

    def _member(self, path: Path, sha256: str, cfg: Config):
        """(class names, infer function) of one weights file on the configured backend."""
        if self.backend == "onnx":
            # with the export of these exact weights cached, PyTorch is never imported (~1 s, ~500 MB)
            onnx_path = ultra.export_path(sha256, "onnx", self.imgsz)
            if not onnx_path.exists():
                onnx_path = ultra.exported(ultra.load_yolo(path), sha256, "onnx", self.imgsz)
            if self.precision == "int8":
                from .quantize import quantized

                try:
                    onnx_path = quantized(onnx_path, self.imgsz)
                except Exception as e:  # noqa: BLE001 - any failure here leaves the float model usable
                    raise ModelError(f"cannot quantise {path.name} to int8 ({e}); set model.precision: fp32") from None
            session = OnnxYolo(onnx_path, self.imgsz, self.member_floor, cfg.model.threads)
            self.onnx_paths.append(onnx_path)
            return session.names, session.infer
        yolo = ultra.load_yolo(path)
        names = dict(yolo.names)
        if self.backend == "openvino":
            yolo = ultra.load_yolo(ultra.exported(yolo, sha256, "openvino", self.imgsz))
        return names, lambda images: ultra.predict(yolo, images, self.imgsz, self.member_floor, self.batch)

    def detect(self, frames: Sequence[Frame], full_size: tuple[int, int]) -> list[Detection]:
        if not frames:
            return []
        raw = self.raw([f.image for f in frames])
        return [d for f, r in zip(frames, raw, strict=True) for d in self.to_detections(f, *r, full_size)]

    def raw(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(xyxy in the image's pixels, confidence, class id) per image: every box above the floor, the
        ensemble's members fused, no category threshold applied yet."""
        raw = self._members[0](images)
        if len(self._members) > 1:
            outputs = [raw] + [infer(images) for infer in self._members[1:]]
            raw = [fuse(per_model) for per_model in zip(*outputs, strict=True)]
        return raw

    def to_detections(self, frame: Frame, xyxy: np.ndarray, confs: np.ndarray, clss: np.ndarray,
                      full_size: tuple[int, int]) -> list[Detection]:
        """Raw boxes in the frame's pixels -> Detections at full resolution, per-category thresholds applied."""
        h, w = frame.image.shape[:2]
        sx, sy = full_size[0] / w, full_size[1] / h
        out = []
        for (x1, y1, x2, y2), conf, k in zip(xyxy, confs, clss, strict=True):
            name = self.names[int(k)]
            category = self.class_map.get(name)
            if conf < (self.thresholds[category] if category else self.floor):
                continue
            out.append(Detection(
                frame_index=frame.index, t_s=frame.t_s, cls=name, category=category, confidence=round(float(conf), 4),
                # plain floats: a NumPy scalar would reach SQLite as a BLOB of its bytes
                box=(round(float(x1) * sx, 1), round(float(y1) * sy, 1), round(float(x2) * sx, 1),
                     round(float(y2) * sy, 1)),
            ))
        return out


