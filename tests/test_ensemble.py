"""Ensembles: several models' boxes fused into one set (pipeline/detect.py: fuse)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline import config as config_mod
from pipeline.detect import ModelError, YoloDetector
from pipeline.fusion import fuse


def out(*boxes):
    """One model's output for one image from (x1, y1, x2, y2, conf, class) rows."""
    if not boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)
    a = np.array(boxes, float)
    return a[:, :4], a[:, 4], a[:, 5].astype(int)


def test_agreeing_boxes_fuse_and_a_lone_box_keeps_its_share():
    xyxy, conf, cls = fuse([out((100, 100, 200, 200, 0.8, 1), (400, 100, 450, 150, 0.6, 0)),
                            out((110, 100, 210, 200, 0.4, 1))])
    order = np.argsort(-conf)
    xyxy, conf, cls = xyxy[order], conf[order], cls[order]
    assert cls.tolist() == [1, 0]
    assert conf == pytest.approx([0.6, 0.3])  # (0.8 + 0.4) / 2; 0.6 / 2: only one of two models saw it
    # the fused box leans towards the more confident model: weights 0.8 and 0.4
    assert xyxy[0] == pytest.approx([100 + 10 / 3, 100, 200 + 10 / 3, 200])


def test_other_class_other_place_and_same_model_stay_apart():
    _, conf, cls = fuse([out((100, 100, 200, 200, 0.8, 1), (105, 100, 205, 200, 0.7, 1)),
                         out((100, 100, 200, 200, 0.5, 3), (600, 300, 700, 400, 0.5, 1))])
    # two boxes of one model are two objects (its own NMS kept both); a vehicle box is not a parking box
    assert sorted(cls.tolist()) == [1, 1, 1, 3]
    assert sorted(conf.tolist()) == pytest.approx([0.25, 0.25, 0.35, 0.4])


def test_nothing_found_by_any_model():
    xyxy, conf, cls = fuse([out(), out()])
    assert xyxy.shape == (0, 4) and len(conf) == 0 and len(cls) == 0


def test_ensemble_of_a_model_with_itself_finds_what_it_finds(model_path, sample_files):
    """The real detector, twice: fusion of identical outputs gives back the model's own boxes."""
    from pipeline.ingest import probe
    from pipeline.sample import Sampler

    cfg = config_mod.load()
    single = YoloDetector(cfg.model_copy(update={"model": cfg.model.model_copy(update={"ensemble": []})}))
    twice = YoloDetector(cfg.model_copy(update={"model": cfg.model.model_copy(update={"ensemble": [cfg.model.path]})}))
    name = Path(cfg.model.path).name
    assert twice.sha256 != single.sha256 and twice.name == f"{name}+{name}"
    video = sample_files[0]
    pr = probe(video)
    frames = list(Sampler(video, 1.0, pr.rotation, 1280, True))[:4]
    a = single.detect(frames, (pr.width, pr.height))
    b = twice.detect(frames, (pr.width, pr.height))
    assert a, "the samples have violations in their first seconds"
    key = sorted((d.frame_index, d.cls, round(d.confidence, 3), tuple(round(x) for x in d.box)) for d in a)
    assert sorted((d.frame_index, d.cls, round(d.confidence, 3), tuple(round(x) for x in d.box)) for d in b) == key


def test_a_missing_ensemble_member_is_a_clear_error(tmp_path, model_path):
    cfg = config_mod.load()
    missing = cfg.model_copy(update={"model": cfg.model.model_copy(update={"ensemble": [str(tmp_path / "nope.pt")]})})
    with pytest.raises(ModelError, match="nope.pt"):
        YoloDetector(missing)
