"""Detection: the Detector protocol and its Ultralytics YOLO backend.

Only this module imports Ultralytics, so another backend (a service, another framework) replaces one
class. Boxes are returned in the source's full upright resolution, whatever size the sampler
decoded at, because evidence keyframes and review overlays are drawn at full resolution.
"""

from __future__ import annotations

import ast
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .config import Config
from .hashing import sha256_file
from .records import Detection, Frame


class ModelError(Exception):
    """The model file is missing or unusable (a user-facing reason)."""


class Detector(Protocol):
    names: dict[int, str]
    path: Path
    sha256: str
    batch: int

    def detect(self, frames: Sequence[Frame], full_size: tuple[int, int]) -> list[Detection]: ...


class YoloDetector:
    """Ultralytics YOLO weights, run by PyTorch or by an ONNX Runtime / OpenVINO export of the same weights.

    The backend is picked in config by measurement (bench/pipeline.py): the exports are made from the
    .pt file on first use and cached by its hash, so the model of record stays the .pt file.
    """

    def __init__(self, cfg: Config, model_path: Path | None = None):
        path = Path(model_path) if model_path else cfg.model.resolved_path()
        if not path.exists():
            raise ModelError(f"model file not found: {path} (train one with `vaudit train` or pass --model)")
        self.path = path
        self.sha256 = sha256_file(path)
        self.imgsz = cfg.model.imgsz
        self.batch = cfg.model.batch
        self.backend = cfg.model.backend
        self.precision = cfg.model.precision
        self.class_map = dict(cfg.model.classes)
        self.thresholds = {c: cc.confidence for c, cc in cfg.categories.items()}
        # context classes are kept (for review and retraining) above this floor
        self.floor = min(self.thresholds.values())
        if self.backend == "onnx":
            # with the export of these exact weights cached, PyTorch is never imported (~1 s, ~500 MB)
            onnx_path = export_path(self.sha256, "onnx", self.imgsz)
            if not onnx_path.exists():
                onnx_path = exported(self._load_yolo(path), self.sha256, "onnx", self.imgsz)
            if self.precision == "int8":
                from .quantize import quantized

                try:
                    onnx_path = quantized(onnx_path, self.imgsz)
                except Exception as e:  # noqa: BLE001 - any failure here leaves the float model usable
                    raise ModelError(f"cannot quantise {path.name} to int8 ({e}); set model.precision: fp32") from None
            self._onnx = OnnxYolo(onnx_path, self.imgsz, self.floor, cfg.model.threads)
            self.names: dict[int, str] = self._onnx.names
            self._infer = self._onnx.infer
        else:
            yolo = self._load_yolo(path)
            self.names = dict(yolo.names)
            if self.backend == "openvino":
                yolo = self._load_yolo(exported(yolo, self.sha256, "openvino", self.imgsz))
            self._yolo = yolo
            self._infer = self._ultralytics_infer
        unknown = set(self.class_map) - set(self.names.values())
        if unknown:
            raise ModelError(
                f"config model.classes names {sorted(unknown)}, which model {path.name} does not have "
                f"(it has {sorted(self.names.values())})"
            )

    @staticmethod
    def _load_yolo(path: Path):
        try:
            from ultralytics import YOLO
        except ImportError as e:  # pragma: no cover - install problem
            raise ModelError(f"ultralytics is not installed: {e}") from None
        try:
            return YOLO(str(path), task="detect")
        except Exception as e:  # noqa: BLE001 - any load failure is the model file's fault here
            raise ModelError(f"cannot load model {path}: {e}") from None

    def _ultralytics_infer(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        results = self._yolo.predict(images, imgsz=self.imgsz, conf=self.floor, verbose=False, device="cpu",
                                     batch=self.batch)
        out = []
        for res in results:
            b = res.boxes
            if b is None or len(b) == 0:
                out.append((np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)))
            else:
                out.append((b.xyxy.cpu().numpy(), b.conf.cpu().numpy(), b.cls.cpu().numpy().astype(int)))
        return out

    def detect(self, frames: Sequence[Frame], full_size: tuple[int, int]) -> list[Detection]:
        if not frames:
            return []
        raw = self._infer([f.image for f in frames])
        return [d for f, r in zip(frames, raw, strict=True) for d in self.to_detections(f, *r, full_size)]

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
                box=(round(x1 * sx, 1), round(y1 * sy, 1), round(x2 * sx, 1), round(y2 * sy, 1)),
            ))
        return out


def cache_dir() -> Path:
    return Path(os.environ.get("VAUDIT_CACHE", Path.home() / ".cache" / "vaudit"))


def export_path(sha256: str, fmt: str, imgsz: int) -> Path:
    return cache_dir() / f"{sha256[:16]}-{imgsz}{'.onnx' if fmt == 'onnx' else '_openvino_model'}"


def exported(yolo, sha256: str, fmt: str, imgsz: int) -> Path:
    """The ONNX/OpenVINO export of these weights, made once (a few seconds) and cached by their hash.

    Each process exports in a folder of its own and renames the result into place, so concurrent
    workers starting together never see a half-written export.
    """
    target = export_path(sha256, fmt, imgsz)
    if target.exists():
        return target
    work = cache_dir() / f"tmp-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        pt = work / "model.pt"
        yolo.save(str(pt))
        from ultralytics import YOLO

        try:
            made = Path(YOLO(str(pt), task="detect").export(format=fmt, imgsz=imgsz, dynamic=True, simplify=True,
                                                             verbose=False))
        except Exception as e:  # noqa: BLE001 - missing exporter packages are a setup problem
            raise ModelError(f"cannot export the model to {fmt} (is the '{fmt}' package installed?): {e}") from None
        if not target.exists():
            os.replace(made, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


class OnnxYolo:
    """A YOLOv8-style detection head run directly by ONNX Runtime.

    Direct rather than through Ultralytics so the session can be told how to share the CPU: one
    thread pool, no spin-waiting (spinning threads steal the core the decoder thread needs).
    """

    def __init__(self, path: Path, imgsz: int, floor: float, threads: int = 0, iou: float = 0.7):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        # Ultralytics writes the class names into the export's metadata as a Python dict literal
        meta = self.session.get_modelmeta().custom_metadata_map
        self.names = {int(k): str(v) for k, v in ast.literal_eval(meta.get("names", "{}")).items()}
        self.imgsz = imgsz
        self.iou = iou
        self.floor = floor

    def _letterbox(self, img: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
        h, w = img.shape[:2]
        r = self.imgsz / max(h, w)
        nw, nh = round(w * r), round(h * r)
        pw, ph = -(-nw // 32) * 32, -(-nh // 32) * 32  # rectangular, stride-aligned (as Ultralytics predicts)
        canvas = np.full((ph, pw, 3), 114, np.uint8)
        top, left = (ph - nh) // 2, (pw - nw) // 2
        canvas[top:top + nh, left:left + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        return canvas, r, (left, top)

    @staticmethod
    def tensor(canvases: list[np.ndarray]) -> np.ndarray:
        """Letterboxed BGR images -> the network's input: RGB, NCHW, float32 in [0, 1]."""
        return np.ascontiguousarray(np.stack(canvases)[..., ::-1].transpose(0, 3, 1, 2), np.float32) / 255.0

    def input_for(self, image: np.ndarray) -> np.ndarray:
        """One image as the network sees it (a batch of one)."""
        return self.tensor([self._letterbox(image)[0]])

    def infer(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        boxed = [self._letterbox(im) for im in images]
        if len({b[0].shape for b in boxed}) == 1:
            preds = self._run([b[0] for b in boxed])
        else:  # mixed frame sizes cannot share a batch
            preds = np.concatenate([self._run([b[0]]) for b in boxed])
        return [self._decode(p, r, pad) for p, (_, r, pad) in zip(preds, boxed, strict=True)]

    def _run(self, canvases: list[np.ndarray]) -> np.ndarray:
        return self.session.run(None, {self.input: self.tensor(canvases)})[0]

    def _decode(self, pred: np.ndarray, r: float, pad: tuple[int, int]):
        pred = pred.T  # (anchors, 4 + classes)
        scores = pred[:, 4:]
        cls = scores.argmax(1)
        conf = scores[np.arange(len(cls)), cls]
        keep = conf >= self.floor
        if not keep.any():
            return np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)
        b, conf, cls = pred[keep, :4], conf[keep], cls[keep]
        xywh = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 2], b[:, 3]], 1)
        idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), conf.tolist(), cls.tolist(), self.floor, self.iou)
        idx = np.array(idx, int).reshape(-1)
        xywh, conf, cls = xywh[idx], conf[idx], cls[idx]
        x1 = (xywh[:, 0] - pad[0]) / r
        y1 = (xywh[:, 1] - pad[1]) / r
        xyxy = np.stack([x1, y1, x1 + xywh[:, 2] / r, y1 + xywh[:, 3] / r], 1)
        return xyxy, conf, cls
