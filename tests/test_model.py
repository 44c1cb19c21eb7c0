"""The shipped model: measured against held-out data with floors from its own card, and the full
pipeline on fresh synthetic footage (seeds no other test or training run uses)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SHARED

from pipeline import config as config_mod
from pipeline.scoring import score_events

pytestmark = pytest.mark.slow
MARGIN = 0.10  # a smaller held-out set than the card's: allow this much sampling noise below its figure
_MODEL = config_mod.load().model
MEMBERS = [_MODEL.resolved_path(p) for p in _MODEL.all_paths()]


@pytest.fixture(params=MEMBERS, ids=lambda p: p.stem, scope="module")
def member(request, model_path) -> Path:
    """Each weights file the default config runs (the main model and its ensemble), measured on its own."""
    return request.param


@pytest.fixture(scope="module")
def card(member) -> dict:
    return json.loads(member.with_suffix(".json").read_text(encoding="utf-8"))


def test_models_are_small_and_offline_loadable(model_path):
    assert sum(p.stat().st_size for p in MEMBERS) <= 15 * 1024 * 1024
    from pipeline.detect import YoloDetector

    det = YoloDetector(config_mod.load())
    assert det.paths == MEMBERS
    assert {"garbage", "illegal_parking", "stall"} <= set(det.names.values())


def test_synthetic_holdout_meets_card_floor(tmp_path, member, card):
    from pipeline.synth import render_dataset
    from pipeline.train import evaluate

    data = render_dataset(tmp_path / "ds", seed=424242, count=80, val_fraction=0.99)
    res = evaluate(member, data, card["imgsz"])
    floor = card["metrics"]["synthetic val"]["all"]["mAP50"] - MARGIN
    assert res["all"]["mAP50"] >= floor, res


def test_real_garbage_holdout_meets_card_floor(tmp_path, member, card):
    real = SHARED / "data" / "woosong-trashbags"
    if not real.exists():
        pytest.skip("../shared/data/woosong-trashbags is absent")
    from pipeline.train import evaluate, woosong_to_yolo

    shutil.copytree(real / "test", tmp_path / "w" / "valid")  # the 12-image test split: never trained on
    data = woosong_to_yolo(tmp_path / "w", tmp_path / "det", splits=("valid",))
    res = evaluate(member, data, card["imgsz"])
    floor = card["metrics"]["woosong valid (real)"]["per_class"]["garbage"]["mAP50"] - 2 * MARGIN
    assert res["per_class"]["garbage"]["mAP50"] >= floor, res


def test_fresh_synthetic_footage_event_recall_and_precision(tmp_path, model_path):
    from pipeline.ingest import ingest
    from pipeline.run import run
    from pipeline.store import Store
    from pipeline.synth import render_video
    from pipeline.workspace import Workspace

    cfg = config_mod.load()
    truths = {}
    for seed in (7001, 7002, 7003):
        gt = render_video(tmp_path / "in", f"s{seed}", seed=seed, duration=20, size=(960, 540), crf=27)
        truths[f"s{seed}.mp4"] = gt["violations"]
    ws = Workspace(tmp_path / "ws").create()
    store = Store(ws.db_path)
    ingest(store, cfg, [tmp_path / "in"])
    run(ws, cfg)
    rows = Store(ws.db_path).violations()
    total = None
    for name, truth in truths.items():
        s = score_events([r for r in rows if Path(r["source_path"]).name == name], truth)
        total = s if total is None else total.add(s)
    # measured with the default pipeline: recall 0.909 (10/11), precision 1.000 (10/10) (models/vaudit-det-ft.md);
    # 0.923 / 0.915 on fresh seeds 7201-7320. The 0.9 target: one more miss would fail it.
    assert total.recall >= 0.9 and total.precision >= 0.9, total.report()


def test_int8_finds_what_fp32_finds(model_path, sample_files):
    """The quantised export agrees with the float one on real decoded sample frames: same objects, same
    classes, boxes in the same place, confidences close (what the event figures in the card rest on)."""
    from pipeline.detect import YoloDetector
    from pipeline.ingest import probe
    from pipeline.sample import Sampler
    from pipeline.track import iou

    cfg = config_mod.load()

    def detector(precision: str) -> YoloDetector:
        return YoloDetector(cfg.model_copy(update={"model": cfg.model.model_copy(update={"precision": precision})}))

    fp32, int8 = detector("fp32"), detector("int8")
    assert int8.onnx_paths[0].name.endswith("-int8.onnx")
    matched, total, gaps = 0, 0, []
    for video in sample_files:
        pr = probe(video)
        frames = list(Sampler(video, 1.0, pr.rotation, 1280, True))[:8]
        a = fp32.detect(frames, (pr.width, pr.height))
        b = int8.detect(frames, (pr.width, pr.height))
        for d in a:
            if d.category is None:
                continue
            total += 1
            best = max((e for e in b if e.frame_index == d.frame_index and e.cls == d.cls),
                       key=lambda e: iou(e.box, d.box), default=None)
            if best is not None and iou(best.box, d.box) >= 0.7:
                matched += 1
                gaps.append(abs(best.confidence - d.confidence))
    assert total >= 10, total
    assert matched / total >= 0.9, (matched, total)  # measured 79 of 81, mean confidence gap 0.014
    assert sum(gaps) / len(gaps) <= 0.04, gaps
