"""Frame-level scoring on real photos: matching, AP50 and its standard error (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.geometry import box_iou
from pipeline.realeval import average_precision, bootstrap_se, match


def test_box_iou():
    a = np.array([[0, 0, 10, 10], [0, 0, 5, 10]], float)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    assert np.allclose(box_iou(a, b), [[1.0, 0.0], [0.5, 0.0]])


def test_match_is_greedy_by_confidence_and_uses_each_truth_once():
    truth = np.array([[0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10], [0, 0, 9, 10]], float)
    assert match(pred, np.array([0.5, 0.9]), truth).tolist() == [False, True]  # the surer box takes it
    assert match(pred, np.array([0.5, 0.9]), np.zeros((0, 4))).tolist() == [False, False]
    assert match(np.array([[50, 50, 60, 60]], float), np.array([0.9]), truth).tolist() == [False]


def test_average_precision():
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    # 0.995 for a perfect ranking, as Ultralytics: the curve drops to 0 just past full recall
    assert average_precision(conf, np.array([True, True, False, False]), 2) == pytest.approx(1.0, abs=0.006)
    assert average_precision(conf, np.array([False, False, True, True]), 2) == pytest.approx(0.5, abs=0.01)  # envelope: 2 of 4
    assert average_precision(conf, np.array([True, True, False, False]), 4) == pytest.approx(0.625, abs=0.01)  # 0.5 + the sentinel slope to (1, 0), as Ultralytics
    assert average_precision(conf[:0], np.zeros(0, bool), 3) == 0.0


def test_bootstrap_se_is_zero_when_every_photo_is_alike_and_grows_when_they_differ():
    same = [(np.array([0.9]), np.array([True]), 1)] * 20
    assert bootstrap_se(same) == pytest.approx(0.0)
    mixed = [(np.array([0.9]), np.array([i % 2 == 0]), 1) for i in range(20)]
    assert 0.02 < bootstrap_se(mixed) < 0.3


@pytest.mark.slow
def test_evaluate_any_yolo_folder_from_the_cli(tmp_path, model_path):
    """`vaudit evaluate --real DIR --classes ...` on a user's folder: per-class figures as JSON."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import cv2

    from pipeline.synth import render_dataset

    data = render_dataset(tmp_path / "ds", seed=5150, count=6, val_fraction=0.99)
    root = data.parent
    folder = tmp_path / "mine"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for img in sorted((root / "images" / "val").glob("*.jpg")):
        cv2.imwrite(str(folder / "images" / img.name), cv2.imread(str(img)))
        (folder / "labels" / (img.stem + ".txt")).write_text((root / "labels" / "val" / (img.stem + ".txt")).read_text())
    exe = Path(sys.executable).parent / "vaudit"
    r = subprocess.run([str(exe), "evaluate", "--real", str(folder), "--classes", "0=garbage,1=illegal_parking,3=vehicle"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)["sets"]["mine"]
    assert res["photos"] == 6
    assert set(res["per_class"]) == {"garbage", "illegal_parking", "vehicle"}
    for figures in res["per_class"].values():
        assert 0.0 <= figures["AP50"] <= 1.0 and figures["AP50_se"] >= 0.0
    bad = subprocess.run([str(exe), "evaluate", "--real", str(folder), "--classes", "0=rubbish"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "class mapping" in bad.stderr
