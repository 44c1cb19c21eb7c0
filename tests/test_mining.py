"""Hard-example mining: which rendered frames a fine-tune keeps (pipeline/mining.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.mining import MIN_HEIGHT_PX, Mistakes, count_mistakes, hardest, read_labels

THR = {0: 0.25, 1: 0.45}  # garbage, illegal_parking
BIG = [100.0, 100.0, 160.0, 200.0]


def mistakes_of(labels: list[tuple[int, list[float]]], preds: list[tuple[int, float, list[float]]]) -> Mistakes:
    cls = np.array([c for c, _ in labels], int)
    box = np.array([b for _, b in labels], float).reshape(-1, 4)
    pc = np.array([c for c, _, _ in preds], int)
    pf = np.array([f for _, f, _ in preds], float)
    pb = np.array([b for _, _, b in preds], float).reshape(-1, 4)
    return count_mistakes(Path("x.jpg"), (cls, box), pc, pf, pb, THR)


def test_a_found_object_is_no_mistake():
    m = mistakes_of([(0, BIG)], [(0, 0.9, [102, 98, 161, 203])])
    assert (m.missed, m.false) == (0, 0)


def test_below_threshold_wrong_class_or_misplaced_is_a_miss():
    assert mistakes_of([(1, BIG)], [(1, 0.40, BIG)]).missed == 1  # parking needs 0.45
    assert mistakes_of([(0, BIG)], [(1, 0.90, BIG)]).missed == 1  # right place, wrong class
    assert mistakes_of([(0, BIG)], [(0, 0.90, [150, 100, 210, 200])]).missed == 1  # IoU 0.2


def test_unlabelled_confident_box_is_a_false_alarm_and_context_classes_are_ignored():
    m = mistakes_of([(0, BIG)], [(0, 0.9, BIG), (0, 0.5, [300, 100, 360, 200]), (4, 0.9, [400, 100, 460, 200])])
    assert (m.missed, m.false) == (0, 1)
    assert mistakes_of([(4, BIG)], []).count == 0  # a bin nobody found is not a violation missed


def test_tiny_objects_are_not_misses_but_finding_them_is_no_false_alarm():
    tiny = [10.0, 10.0, 20.0, 10.0 + MIN_HEIGHT_PX - 1]
    assert mistakes_of([(0, tiny)], []).count == 0
    assert mistakes_of([(0, tiny)], [(0, 0.9, tiny)]).count == 0


def test_hardest_keeps_the_most_wrong_frames_and_never_a_clean_one():
    found = [Mistakes(Path(f"{i}.jpg"), missed, false)
             for i, (missed, false) in enumerate([(0, 0), (3, 0), (1, 1), (0, 1), (5, 2)])]
    assert hardest(found, 2) == [Path("1.jpg"), Path("4.jpg")]
    assert Path("0.jpg") not in hardest(found, 10)


def test_read_labels_converts_yolo_lines_to_pixel_boxes(tmp_path):
    lab = tmp_path / "a.txt"
    lab.write_text("0 0.5 0.5 0.25 0.5\n2 0.1 0.2 0.1 0.2\n")
    cls, box = read_labels(lab, (640, 384))
    assert cls.tolist() == [0, 2]
    assert np.allclose(box[0], [240, 96, 400, 288])
    assert read_labels(tmp_path / "missing.txt", (640, 384))[1].shape == (0, 4)


@pytest.mark.slow
def test_mining_with_the_shipped_model_keeps_only_frames_it_gets_wrong(tmp_path, model_path):
    from pipeline.synth import render_dataset
    from pipeline.train import mine_hardest

    data = render_dataset(tmp_path / "ds", seed=515151, count=24, val_fraction=0.25)
    mined = yaml.safe_load(mine_hardest(model_path, [data], 5, 640, tmp_path / "work").read_text())
    kept = Path(mined["train"]).read_text().split()
    assert 0 < len(kept) <= 5
    assert all("/images/train/" in k for k in kept)  # the val split is never mined
    assert mined["val"] == [str(tmp_path / "ds" / "images" / "val")]
