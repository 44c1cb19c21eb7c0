"""The shipped model: measured against held-out data with floors from its own card, and the full
pipeline on fresh synthetic footage (seeds no other test or training run uses)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import SHARED

from pipeline import config as config_mod
from pipeline.scoring import EventScore, score_events

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


def test_real_holdouts_meet_card_figures(member, card):
    """Every real set's fixed holdout, measured as the card measured it (the default config's input size,
    precision and thresholds): no class may fall below its card figure by more than twice the card's
    standard error. A shipped model without real figures fails; without ../shared/data it cannot be measured."""
    from pipeline.realdata import available
    from pipeline.realeval import evaluate_real

    assert "real" in card, f"{member.name}: its card has no real-photo figures"
    sets = available(SHARED / "data")
    if not sets:
        pytest.skip(f"no real set under {SHARED / 'data'}")
    res = evaluate_real(config_mod.load(), sets, model=member, data=SHARED / "data")
    for name, measured in card["real"]["sets"].items():
        for cls, want in measured["per_class"].items():
            got = res["sets"][name]["per_class"][cls]
            assert got["AP50"] >= want["AP50"] - 2 * max(want["AP50_se"], 0.005), (name, cls, got, want)


TEST_SEEDS = (7321, 7322, 7323, 7324)  # rendered for this test only: no threshold or model was chosen on them


def test_fresh_synthetic_footage_event_recall_and_precision(tmp_path, model_path):
    """The whole pipeline (ingest + run) on fresh rendered footage, against the main model card's event
    figures: each may fall below its card figure by at most twice the binomial standard error of a
    set this small (the card's figures come from 60 clips; here 4)."""
    from pipeline.ingest import ingest
    from pipeline.run import run
    from pipeline.store import Store
    from pipeline.synth import render_video
    from pipeline.workspace import Workspace

    card = json.loads(model_path.with_suffix(".json").read_text(encoding="utf-8"))
    want = card["event_figures"]
    cfg = config_mod.load()
    truths = {}
    for seed in TEST_SEEDS:
        gt = render_video(tmp_path / "in", f"s{seed}", seed=seed, duration=20, size=(960, 540), crf=27)
        truths[f"s{seed}.mp4"] = gt["violations"]
    ws = Workspace(tmp_path / "ws").create()
    ingest(Store(ws.db_path), cfg, [tmp_path / "in"])
    run(ws, cfg)
    rows = Store(ws.db_path).violations()
    total = EventScore()
    for name, truth in truths.items():
        total = total.add(score_events([r for r in rows if Path(r["source_path"]).name == name], truth))

    def floor(p: float, n: int) -> float:
        return p - 2 * math.sqrt(p * (1 - p) / max(n, 1))

    assert total.recall >= floor(want["recall"], total.truth), total.report()
    assert total.precision >= floor(want["precision"], total.predicted), total.report()


def test_int8_finds_what_fp32_finds(model_path, sample_files):
    """The quantised export agrees with the float one on real decoded sample frames: same objects, same
    classes, boxes in the same place, confidences close (what the event figures in the card rest on)."""
    from pipeline.detect import YoloDetector
    from pipeline.geometry import iou
    from pipeline.ingest import probe
    from pipeline.sample import Sampler

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
    assert matched / total >= 0.9, (matched, total)
    assert sum(gaps) / len(gaps) <= 0.04, gaps


@pytest.mark.slow
def test_first_export_prints_one_progress_line_and_no_third_party_chatter(tmp_path, model_path):
    import os
    import subprocess
    import sys

    code = ("from pathlib import Path\n"
            "from pipeline.backends.ultralytics_backend import exported, load_yolo\n"
            f"print(exported(load_yolo(Path({str(model_path)!r})), 'test', 'onnx', 160))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "VAUDIT_CACHE": str(tmp_path)})
    assert res.stdout.strip() == str(tmp_path / "test-160.onnx")
    assert res.stderr.strip() == "preparing the onnx export for 160 px (once for these weights, about a minute) ..."
