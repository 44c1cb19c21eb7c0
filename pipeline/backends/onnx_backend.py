"""ONNX Runtime backend: a YOLOv8 export run directly, without Ultralytics or PyTorch."""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np


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
