"""The model registry (issue 19, part 3) on a real run: the shipped sample footage processed by the real
pipeline, reviewed by a script playing the analyst from ground truth (tests/analyst.py), then `vaudit models
compare`, `promote` (refused when worse, --force needs a reason) and `custody models` as real processes.
Promotion never changes an earlier run's results; a later run records the promoted model, processes new
footage with it and keeps the reviewed source's results unless asked (--reprocess-reviewed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import config as config_mod
from pipeline.ingest import ingest
from pipeline.run import run
from pipeline.store import Store
from pipeline.workspace import Workspace
from tests.analyst import review_source
from tests.conftest import ROOT, SAMPLES, make_video

pytestmark = pytest.mark.slow
OTHER = ROOT / "models" / "vaudit-det.pt"  # the first shipped model, trained on rendered streets only


def vaudit(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "-w", str(ws), *args], capture_output=True,
                          text=True, check=False)


def test_compare_promote_and_custody_on_reviewed_footage(tmp_path, model_path):
    cfg = config_mod.load()
    video = SAMPLES / "西湖乡" / "20261105_101500.mp4"
    gt = json.loads(video.with_suffix(".json").read_text(encoding="utf-8"))
    ws = Workspace(tmp_path / "ws").create()
    store = Store(ws.db_path)
    ingest(store, cfg, [video], district="西湖乡")
    store.close()
    first = run(ws, cfg)
    store = Store(ws.db_path)
    try:
        sid = store.query("SELECT id FROM sources")[0]["id"]
        done = review_source(ws, store, cfg, sid, gt)
        assert done["confirmed"] + done["added"] == len(gt["violations"])
        before = store.query("SELECT * FROM violations ORDER BY id"), store.query("SELECT * FROM decisions ORDER BY id")
    finally:
        store.close()

    r = vaudit(ws.root, "models", "compare", str(model_path), str(OTHER), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["sources"] == 1 and res["a"]["truth"] == res["b"]["truth"] == len(gt["violations"])
    a, b = res["a"], res["b"]
    assert a["matched"] == done["confirmed"]  # replaying the run's own model finds what the run found
    b_worse = b["recall"] < a["recall"] or b["precision"] < a["precision"]

    r = vaudit(ws.root, "models", "promote", str(OTHER), "--user", "lead")
    if b_worse:
        assert r.returncode == 1 and "not promoted" in r.stderr
        r = vaudit(ws.root, "models", "promote", str(OTHER), "--force", "--user", "lead")
        assert r.returncode == 1 and "--force needs --reason" in r.stderr
        r = vaudit(ws.root, "models", "promote", str(OTHER), "--force", "--reason", "试用旧模型对比", "--user", "lead")
    assert r.returncode == 0, r.stderr
    listed = json.loads(vaudit(ws.root, "models", "--json").stdout)
    assert [m["default"] for m in listed] == [True]
    log = vaudit(ws.root, "custody", "models").stdout
    assert "lead: promoted " + listed[0]["sha256"] in log and (("FORCED: 试用旧模型对比" in log) == b_worse)

    # a later run with the promoted model: new footage gets it, the reviewed source keeps its results
    fresh = make_video(tmp_path / "fresh" / "VID_20261201_090000.mp4", seconds=3)
    assert vaudit(ws.root, "ingest", str(fresh), "--district", "西湖乡").returncode == 0
    r = vaudit(ws.root, "run")
    assert r.returncode == 0, r.stderr
    assert "1 sources processed" in r.stdout and "kept 1 reviewed sources" in r.stdout, r.stdout
    store = Store(ws.db_path)
    try:
        runs = store.query("SELECT id, run_key, model_sha256 FROM runs ORDER BY id")
        assert runs[-1]["model_sha256"] == listed[0]["sha256"] != runs[0]["model_sha256"]
        assert runs[-1]["run_key"] != first.run_key
        current = {r["id"]: r["current_run_id"] for r in store.query("SELECT id, current_run_id FROM sources")}
        assert current == {sid: first.run_id, sid + 1: runs[-1]["id"]}
        old_v = [v for v in store.query("SELECT * FROM violations ORDER BY id") if v["run_id"] == first.run_id]
        assert old_v == before[0] and store.query("SELECT * FROM decisions ORDER BY id") == before[1]
        assert store.status_counts(runs[-1]["run_key"])["kept"] == 1
    finally:
        store.close()

    # asked explicitly, the reviewed source is re-processed: new, unreviewed results; the old rows stay
    r = vaudit(ws.root, "run", "--reprocess-reviewed")
    assert r.returncode == 0 and "1 sources processed" in r.stdout and "kept" not in r.stdout, r.stdout + r.stderr
    store = Store(ws.db_path)
    try:
        last = store.query("SELECT id, model_sha256 FROM runs ORDER BY id DESC LIMIT 1")[0]
        assert store.query("SELECT current_run_id FROM sources WHERE id = ?", [sid])[0]["current_run_id"] == last["id"]
        old_v = [v for v in store.query("SELECT * FROM violations ORDER BY id") if v["run_id"] == first.run_id]
        assert old_v == before[0] and store.query("SELECT * FROM decisions ORDER BY id") == before[1]
        assert store.query("SELECT count(*) n FROM violations WHERE run_id = ? AND status != 'pending'", [last["id"]])[0]["n"] == 0
    finally:
        store.close()
    assert vaudit(ws.root, "verify").returncode == 0
