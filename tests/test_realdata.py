"""Real labelled sets: the fixed holdout split, label conversion, partly-labelled training, pans."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import SHARED

from pipeline.realdata import (
    REAL_SETS,
    RealSet,
    boxes,
    folder_set,
    images,
    in_holdout,
    source_name,
    write_yolo,
)
from pipeline.records import CLASSES

DATA = SHARED / "data"


def _needs(name: str) -> RealSet:
    if not (DATA / name).is_dir():
        pytest.skip(f"../shared/data/{name} is absent")
    return REAL_SETS[name]


def test_holdout_rule_is_by_source_photo_and_fixed():
    a = "000123_jpg.rf.0bf2e76cd0faa208084d3c0d0596fdc9.jpg"
    b = "000123_jpg.rf.ffffffffffffffffffffffffffffffff.jpg"  # another export of the same photo
    assert source_name(Path(a)) == "000123_jpg"
    assert in_holdout(Path(a)) == in_holdout(Path(b))
    share = np.mean([in_holdout(Path(f"{i:06d}_jpg.rf.x.jpg")) for i in range(5000)])
    assert 0.18 < share < 0.22


@pytest.mark.parametrize("name", sorted(REAL_SETS))
def test_splits_are_disjoint_and_sized(name):
    rs = _needs(name)
    train, hold = images(rs, "train", DATA), images(rs, "holdout", DATA)
    assert train and hold
    assert not {source_name(p) for p in train} & {source_name(p) for p in hold}
    # the sizes the cards report: a change here means the yardstick moved
    assert (len(train), len(hold)) == {"cn-garbage-overflow": (1798, 402), "woosong-trashbags": (952, 190),
                                       "in-street-vehicles": (246, 66)}[name]


def test_labels_become_vaudit_classes(tmp_path):
    rs = _needs("cn-garbage-overflow")
    photo = images(rs, "train", DATA)[0]
    raw = [int(line.split()[0]) for line in (photo.parent.parent / "labels" / (photo.stem + ".txt")).read_text().splitlines()]
    got = [c for c, *_ in boxes(rs, photo)]
    assert got == [{0: "garbage", 1: "bin", 2: "garbage"}[k] for k in raw]  # an overflowing bin is garbage
    y = write_yolo(rs, tmp_path / "cn", data=DATA)
    link = tmp_path / "cn" / "images" / "train" / photo.name
    assert link.is_symlink() and link.resolve() == photo.resolve()  # the photo never leaves ../shared
    lines = (tmp_path / "cn" / "labels" / "train" / (photo.stem + ".txt")).read_text().splitlines()
    assert [CLASSES[int(x.split()[0])] for x in lines] == got
    assert y.exists()


def test_polygons_become_their_extent(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((10, 10, 3), np.uint8))
    (tmp_path / "labels" / "a.txt").write_text("0 0.1 0.2 0.5 0.2 0.3 0.6\n1 0.5 0.5 0.2 0.2\n")
    rs = folder_set(tmp_path, {0: "garbage", 1: "vehicle"})
    got = boxes(rs, tmp_path / "images" / "a.jpg")
    assert got[0][0] == "garbage" and np.allclose(got[0][1:], (0.3, 0.4, 0.4, 0.4))
    assert got[1] == ("vehicle", 0.5, 0.5, 0.2, 0.2)
    with pytest.raises(ValueError, match="class mapping"):
        folder_set(tmp_path, {0: "rubbish"})


def test_partial_label_loss_ignores_unlabelled_classes(tmp_path):
    """A class the image's set does not label has no effect on the loss; a labelled one does."""
    from ultralytics.nn.tasks import DetectionModel

    from pipeline.backends.ultralytics_backend import prepare
    from pipeline.partial import PartialLabelLoss

    prepare()
    model = DetectionModel("yolov8n.yaml", nc=len(CLASSES), verbose=False)
    model.args = type("H", (), {"box": 7.5, "cls": 0.5, "dfl": 1.5})()
    masked = tmp_path / "rubbish" / "images" / "train"
    loss = PartialLabelLoss(model, {str(masked): [CLASSES.index("garbage"), CLASSES.index("bin")]})
    torch.manual_seed(0)
    model.train()
    preds = model(torch.rand(1, 3, 128, 128))
    batch = {"im_file": [str(masked / "a.jpg")], "batch_idx": torch.zeros(1), "cls": torch.zeros(1, 1),
             "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.3]])}

    def total(shift_class: int) -> float:
        # the train-mode head returns {"boxes", "scores" (batch, classes, anchors), "feats": [maps]}
        p = {"boxes": preds["boxes"].clone(), "scores": preds["scores"].clone(), "feats": preds["feats"]}
        p["scores"][:, shift_class] += 3.0
        return float(loss(p, batch)[0].sum())

    base = total(CLASSES.index("person"))  # person is unlabelled in this set
    assert total(CLASSES.index("vehicle")) == pytest.approx(base, rel=1e-6)
    assert total(CLASSES.index("bin")) != pytest.approx(base, rel=1e-3)


def test_pan_over_a_photo_gives_truth_for_the_pile(tmp_path):
    from pipeline.ingest import probe
    from pipeline.synth.pan import SECONDS, pan_video, piles

    img = np.full((640, 640, 3), 90, np.uint8)
    cv2.rectangle(img, (250, 300), (400, 420), (20, 200, 240), -1)
    photo = tmp_path / "p.jpg"
    cv2.imwrite(str(photo), img)
    labels = [("garbage", 0.5, 0.56, 0.2, 0.15), ("garbage", 0.55, 0.6, 0.1, 0.1), ("bin", 0.1, 0.1, 0.1, 0.1)]
    truth = pan_video(photo, labels, tmp_path / "out", "p", seed=1)
    assert len(truth["violations"]) == 1  # two touching bags are one pile; a bin is no violation
    v = truth["violations"][0]
    assert v["category"] == "garbage" and v["end_s"] - v["start_s"] >= 2
    assert json.loads((tmp_path / "out" / "p.json").read_text()) == truth
    assert abs(probe(tmp_path / "out" / "p.mp4").duration_s - SECONDS) < 0.2
    apart = piles([("garbage", np.array([0, 0, 10, 10])), ("garbage", np.array([20, 20, 30, 30]))])
    assert len(apart) == 2
