"""INT8 quantisation of the ONNX export, calibrated on the project's own synthetic frames.

Why: detection is the pipeline's largest stage, and on a CPU with VNNI instructions (this machine's
AMD EPYC has them) an INT8 YOLO runs ~1.5x faster than FP32 in ONNX Runtime (detect stage 8.1 s ->
5.2 s in bench/pipeline.py). Static (QDQ) quantisation needs calibration images; they are rendered by
`pipeline.synth` from a fixed seed, so the result depends on nothing outside the project and nothing
is downloaded. The detection head's box decoding (DFL, anchors, sigmoid) stays in float: quantising
it costs box precision for almost no time. Activation ranges are percentiles (99.999%) rather than
min/max, so one outlier pixel cannot stretch a range; of min/max, entropy and percentile calibration
it was the one whose events matched the float model's on fresh footage (bench/events.py, seeds
7001-7010, with the previous model).

The quantised model is a cached derivative like the ONNX export itself: made once per weights hash and
input size, written under a temporary name, then renamed into place.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

CALIBRATION_SEED = 20261130
CALIBRATION_FRAMES = 96
CALIBRATION_CHUNK = 2  # frames per calibration pass: bounds memory


def int8_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.stem + "-int8.onnx")


def quantized(onnx_path: Path, imgsz: int) -> Path:
    """The INT8 version of ``onnx_path`` (cached next to it); about 20 s the first time."""
    target = int8_path(onnx_path)
    if target.exists():
        return target
    print(f"preparing the int8 model for {imgsz} px (once for these weights, about 20 s) ...",
          file=sys.stderr, flush=True)
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .backends.onnx_backend import OnnxYolo

    work = Path(tempfile.mkdtemp(prefix="vaudit-int8-", dir=onnx_path.parent))
    try:
        images = calibration_images(work / "calib", imgsz)
        runner = OnnxYolo(onnx_path, imgsz, floor=1.0)

        class Reader(CalibrationDataReader):
            """Serves the images CALIBRATION_CHUNK at a time (the calibrator keeps every activation of a
            chunk in memory: all 96 frames at once would take ~14 GB)."""

            def __init__(self):
                self.set_range(0, len(images))

            def __len__(self) -> int:
                return len(images)

            def set_range(self, start_index: int, end_index: int) -> None:
                self._it = iter(images[start_index:end_index])

            def get_next(self):
                image = next(self._it, None)
                return None if image is None else {runner.input: runner.input_for(image)}

        pre = work / "pre.onnx"
        out = work / "int8.onnx"
        with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints histogram statistics
            quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=float_nodes(pre),
                            extra_options={"CalibStridedMinMax": CALIBRATION_CHUNK})
        if not target.exists():
            os.replace(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def float_nodes(model_path: Path) -> list[str]:
    """Nodes kept in float: everything in the last module (the Detect head) that is not a convolution."""
    import onnx

    nodes = onnx.load(str(model_path)).graph.node
    layers = [int(m.group(1)) for n in nodes if (m := re.match(r"/model\.(\d+)/", n.name))]
    if not layers:
        return []
    head = f"/model.{max(layers)}/"
    return [n.name for n in nodes if n.name.startswith(head) and n.op_type != "Conv"]


def calibration_images(folder: Path, imgsz: int) -> list[np.ndarray]:
    """Street frames from the synthetic renderer (fixed seed): the range of colours the model will see."""
    from .synth.dataset import render_dataset

    w = imgsz
    h = max(32, round(imgsz * 9 / 16 / 32) * 32)
    render_dataset(folder, seed=CALIBRATION_SEED, count=CALIBRATION_FRAMES, size=(w, h), val_fraction=0.0)
    return [cv2.imread(str(p)) for p in sorted((folder / "images" / "train").glob("*.jpg"))]
