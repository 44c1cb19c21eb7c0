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
