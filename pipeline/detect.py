"""Detection: the Detector protocol and its Ultralytics YOLO backend.

Only this module imports Ultralytics, so another backend (a service, another framework) replaces one
class. Boxes are returned in the source's full upright resolution, whatever size the sampler
decoded at, because evidence keyframes and review overlays are drawn at full resolution.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .config import Config
from .geometry import iou
from .hashing import sha256_file
from .records import Detection, Frame

ENSEMBLE_FLOOR = 0.05  # lowest confidence an ensemble member reports (fusion and thresholds come after)
FUSE_IOU = 0.55  # boxes of one class from different models overlapping this much are one object


class ModelError(Exception):
    """The model file is missing or unusable (a user-facing reason)."""


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
            onnx_path = export_path(sha256, "onnx", self.imgsz)
            if not onnx_path.exists():
                onnx_path = exported(self.load_yolo(path), sha256, "onnx", self.imgsz)
            if self.precision == "int8":
                from .quantize import quantized

                try:
                    onnx_path = quantized(onnx_path, self.imgsz)
                except Exception as e:  # noqa: BLE001 - any failure here leaves the float model usable
                    raise ModelError(f"cannot quantise {path.name} to int8 ({e}); set model.precision: fp32") from None
            session = OnnxYolo(onnx_path, self.imgsz, self.member_floor, cfg.model.threads)
            self.onnx_paths.append(onnx_path)
            return session.names, session.infer
        yolo = self.load_yolo(path)
        names = dict(yolo.names)
        if self.backend == "openvino":
            yolo = self.load_yolo(exported(yolo, sha256, "openvino", self.imgsz))
        return names, lambda images: self._ultralytics_infer(yolo, images)

    @staticmethod
    def load_yolo(path: Path):
        try:
            from ultralytics import YOLO
        except ImportError as e:  # pragma: no cover - install problem
            raise ModelError(f"ultralytics is not installed: {e}") from None
        try:
            return YOLO(str(path), task="detect")
        except Exception as e:  # noqa: BLE001 - any load failure is the model file's fault here
            raise ModelError(f"cannot load model {path}: {e}") from None

    def _ultralytics_infer(self, yolo, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        results = yolo.predict(images, imgsz=self.imgsz, conf=self.member_floor, verbose=False, device="cpu",
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
                box=(round(x1 * sx, 1), round(y1 * sy, 1), round(x2 * sx, 1), round(y2 * sy, 1)),
            ))
        return out


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
