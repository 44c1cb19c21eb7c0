"""`vaudit dataset` (issue 19): reviewed footage becomes a YOLO dataset whose boxes and images come from the
analysts' decisions, split by source file, described by a manifest, the same bytes on every re-run. The
workspace is real (builder: real H.264 sources, real clips, real SQLite); frames are decoded from the
sources by the real sampler."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline import annotate, dataset
from pipeline import config as config_mod
from pipeline.records import Decision
from pipeline.store import Store
from tests.builders import Known, build_workspace

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2024, 5, 1, 9, 0, tzinfo=TZ)


def tree(path: Path) -> dict[str, str]:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def labels(root: Path, manifest: dict, sha: str) -> dict[float, list[list[float]]]:
    out = {}
    for f in manifest["frames"]:
        if f["source_sha256"] == sha:
            txt = (root / f["image"].replace("images/", "labels/", 1)).with_suffix(".txt").read_text()
            out[f["t_s"]] = [[float(x) for x in line.split()] for line in txt.splitlines()]
    return out


def test_reviewed_footage_becomes_a_deterministic_dataset_split_by_source(tmp_path):
    cfg = config_mod.load()
    ws, store = build_workspace(tmp_path, [
        Known("城关镇", "garbage", DAY, 2.0, 3.0, 0.8, status="confirmed", source_key="a"),
        Known("城关镇", "parking", DAY, 4.0, 4.5, 0.5, status="rejected", source_key="a"),
        Known("城关镇", "stall", DAY, 6.0, 7.0, 0.4, source_key="a"),  # pending: its frame is unknown
        Known("西湖乡", "garbage", DAY, 3.0, 4.0, 0.7, status="confirmed", source_key="b"),
    ])
    try:
        sid_a, sid_b = (r["id"] for r in store.query("SELECT id FROM sources ORDER BY id"))
        garbage_a = store.query("SELECT id FROM violations WHERE source_id = ? AND category = 'garbage'", [sid_a])[0]["id"]
        annotate.correct_box(store, garbage_a, (60.0, 60.0, 220.0, 200.0), "ana")
        added = annotate.add_missed(ws, store, cfg, sid_a, 5.0, (10.0, 100.0, 90.0, 230.0), "stall", "ana")
        frame_b = store.query("SELECT id FROM frames WHERE source_id = ?", [sid_b])[0]["id"]
        annotate.mark_complete(store, frame_b, "ana")
        store.record_decision(Decision(garbage_a, "ana", "note", note="复核"))

        m = dataset.build(ws, store, cfg, tmp_path / "ds")
        first = tree(tmp_path / "ds")
        m2 = dataset.build(ws, store, cfg, tmp_path / "ds")
        assert m2 == m and tree(tmp_path / "ds") == first  # byte for byte on a re-run
    finally:
        store.close()
    sha = {s["path"].rsplit("/", 1)[-1]: s["sha256"] for s in m["sources"]}
    assert sorted(s["split"] for s in m["sources"]) == ["train", "val"]  # two sources: one each, never mixed
    # one row per violation: (category, status, use, origin, corrected)
    uses = {(d["category"], d["status"], d["use"], d["origin"], d["corrected"]) for d in m["decisions"]}
    assert uses == {("garbage", "confirmed", "positive", "model", True),  # a's, its box corrected
                    ("garbage", "confirmed", "positive", "model", False),  # b's
                    ("parking", "rejected", "hard_negative", "model", False),
                    ("stall", "pending", "unknown", "model", False),
                    ("stall", "confirmed", "positive", "analyst", False)}  # added by the analyst
    assert m["counts"]["added"] == 1 and m["counts"]["complete_frames"] == 1 and m["labelled_classes"] == [0, 1, 2]
    a = labels(tmp_path / "ds", m, sha["a.mp4"])
    # t=2: the confirmed garbage with its corrected box (class 0); t=4: the rejected parking is a hard
    # negative there, and the added stall (class 2) is carried to it by camera motion; t=5 is not a sampled
    # frame of this run; t=6 holds a pending violation: left out
    assert sorted(a) == [2.0, 4.0]
    assert a[2.0] == [pytest.approx([0, 140 / 320, 130 / 240, 160 / 320, 140 / 240], abs=1e-4)]
    assert [row[0] for row in a[4.0]] == [2]
    b = labels(tmp_path / "ds", m, sha["b.mp4"])
    assert list(b) == [3.0] and [row[0] for row in b[3.0]] == [0]
    assert added in {d["violation_id"] for d in m["decisions"] if d["origin"] == "analyst"}
    yaml_text = (tmp_path / "ds" / "data.yaml").read_text()
    assert "train: images/train" in yaml_text and "val: images/val" in yaml_text
    assert all(s["model_sha256"] and s["run_id"] for s in m["sources"])


def test_nothing_reviewed_or_a_foreign_folder_is_a_clear_error(tmp_path):
    ws, store = build_workspace(tmp_path, [Known("城关镇", "garbage", DAY, 2.0, 3.0, 0.8)])
    store.close()
    def run(*a: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline.cli", "-w", str(ws.root), "dataset", *a],
                              capture_output=True, text=True, check=False)

    r = run(str(tmp_path / "ds"))
    assert r.returncode == 1 and "no reviewed footage" in r.stderr and not (tmp_path / "ds").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    store = Store(ws.db_path)
    store.record_decision(Decision(1, "ana", "confirm"))
    store.close()
    r = run(str(mine))
    assert r.returncode == 1 and "not a vaudit dataset" in r.stderr and (mine / "notes.txt").read_text() == "keep me"
    r = run(str(tmp_path / "ds"))
    assert r.returncode == 0 and "1 sources" in r.stdout
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["counts"]["train_images"] == 1
