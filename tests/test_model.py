"""The shipped model: measured against held-out data with floors from its own card, and the full
pipeline on fresh synthetic footage (seeds no other test or training run uses)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, SHARED

from pipeline import config as config_mod
from pipeline.scoring import score_events

pytestmark = pytest.mark.slow
CARD = ROOT / "models" / "vaudit-det.json"
MARGIN = 0.10  # a smaller held-out set than the card's: allow this much sampling noise below its figure


@pytest.fixture(scope="module")
def card(model_path) -> dict:
    return json.loads(CARD.read_text(encoding="utf-8"))


def test_model_is_small_and_offline_loadable(model_path, card):
    assert model_path.stat().st_size <= 15 * 1024 * 1024
    from pipeline.detect import YoloDetector

    det = YoloDetector(config_mod.load())
    assert {"garbage", "illegal_parking", "stall"} <= set(det.names.values())


def test_synthetic_holdout_meets_card_floor(tmp_path, model_path, card):
    from pipeline.synth import render_dataset
    from pipeline.train import evaluate

    data = render_dataset(tmp_path / "ds", seed=424242, count=80, val_fraction=0.99)
    res = evaluate(model_path, data, card["imgsz"])
    floor = card["metrics"]["synthetic val"]["all"]["mAP50"] - MARGIN
    assert res["all"]["mAP50"] >= floor, res


def test_real_garbage_holdout_meets_card_floor(tmp_path, model_path, card):
    real = SHARED / "data" / "woosong-trashbags"
    if not real.exists():
        pytest.skip("../shared/data/woosong-trashbags is absent")
    from pipeline.train import evaluate, woosong_to_yolo

    shutil.copytree(real / "test", tmp_path / "w" / "valid")  # the 12-image test split: never trained on
    data = woosong_to_yolo(tmp_path / "w", tmp_path / "det", splits=("valid",))
    res = evaluate(model_path, data, card["imgsz"])
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
    # measured: recall 1.000 (11/11), precision 0.917 (11/12) (models/vaudit-det.md); 0.895 / 0.919 on the
    # larger fresh set 7001-7010. The floors leave one miss and one false alarm of room.
    assert total.recall >= 0.9 and total.precision >= 0.83, total.report()
