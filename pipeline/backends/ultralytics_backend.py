"""Ultralytics backend: .pt weights loaded by Ultralytics (PyTorch), and their ONNX/OpenVINO exports.

Every use of Ultralytics goes through ``prepare()`` first: no downloads, and every CPU core.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from . import ModelError


def prepare() -> None:
    """Before any Ultralytics call: no downloads, and every CPU core.

    Ultralytics fetches fonts for plots and dataset checks; we never plot, so those become no-ops.
    On CPU it sets torch to ``cpu_count - 1`` threads, which on a 2-core machine leaves one core idle for
    a whole training run (bench/training.py: 1.6x faster with both)."""
    os.environ["YOLO_OFFLINE"] = "true"
    import ultralytics.data.utils as data_utils
    from ultralytics.utils import checks, torch_utils

    torch_utils.NUM_THREADS = os.cpu_count() or 1  # read by select_device() when it picks the CPU

    def no_font(*_a, **_k):
        return None

    data_utils.check_font = no_font
    checks.check_font = no_font


def load_yolo(path: Path):
    prepare()
    try:
        from ultralytics import YOLO
    except ImportError as e:  # pragma: no cover - install problem
        raise ModelError(f"ultralytics is not installed: {e}") from None
    try:
        return YOLO(str(path), task="detect")
    except Exception as e:  # noqa: BLE001 - any load failure is the model file's fault here
        raise ModelError(f"cannot load model {path}: {e}") from None


def predict(yolo, images: list[np.ndarray], imgsz: int, floor: float, batch: int
            ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(xyxy, confidence, class id) per image, boxes above ``floor``."""
    results = yolo.predict(images, imgsz=imgsz, conf=floor, verbose=False, device="cpu", batch=batch)
    out = []
    for res in results:
        b = res.boxes
        if b is None or len(b) == 0:
            out.append((np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)))
        else:
            out.append((b.xyxy.cpu().numpy(), b.conf.cpu().numpy(), b.cls.cpu().numpy().astype(int)))
    return out


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Ultralytics' banners and hints ("Visualize: netron.app") mean nothing to our users: hold them back.
    Errors still surface as exceptions."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        LOGGER.setLevel(level)


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

        print(f"preparing the {fmt} export for {imgsz} px (once for these weights, about a minute) ...",
              file=sys.stderr, flush=True)
        try:
            with quiet():
                made = Path(YOLO(str(pt), task="detect").export(format=fmt, imgsz=imgsz, dynamic=True,
                                                                 simplify=True, verbose=False))
        except Exception as e:  # noqa: BLE001 - missing exporter packages are a setup problem
            raise ModelError(f"cannot export the model to {fmt} (is the '{fmt}' package installed?): {e}") from None
        if not target.exists():
            os.replace(made, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
