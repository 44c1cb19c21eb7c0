"""The benchmark is a script, not a timed test: here it only has to run end to end on a few seconds."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def test_benchmark_runs_on_a_few_seconds(tmp_path, model_path):
    out = tmp_path / "b.json"
    r = subprocess.run([sys.executable, "bench/pipeline.py", "--duration", "4", "--size", "480x270", "--fps", "25",
                        "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "min/footage h" in r.stdout and "faster than the baseline" in r.stdout
    res = json.loads(out.read_text())
    assert set(res["runs"]) == {"vaudit", "vaudit CLI", "baseline", "decode-only"}
    # the CLI path is the same pipeline: the same violations as in one process
    assert res["runs"]["vaudit CLI"]["recall"] == res["runs"]["vaudit"]["recall"]
    assert res["runs"]["decode-only"]["frames"] == 100
    assert all(v > 0 for v in res["per_hour_min"].values())


def test_event_benchmark_scores_fresh_footage_and_caches_detections(tmp_path, model_path):
    cmd = [sys.executable, "bench/events.py", "--seeds", "9101", "--duration", "6", "--no-samples", "--why",
           "--cache", str(tmp_path)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    from pipeline.config import load

    model = load().model
    names = "+".join(model.resolved_path(p).name for p in model.all_paths())
    assert f"1 videos, model {names}" in r.stdout and "recall" in r.stdout and "precision" in r.stdout
    assert (tmp_path / "footage" / "s9101-6.json").exists()
    assert len(list((tmp_path / "obs").glob("s9101-6-*.pkl"))) == 1
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    assert again.stdout.splitlines()[0] == r.stdout.splitlines()[0]  # same cached detections, same score


def test_training_benchmark_trains_both_setups():
    r = subprocess.run([sys.executable, "bench/training.py", "--images", "24", "--imgsz", "160", "--batch", "8"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"({os.cpu_count()} torch threads)" in r.stdout.splitlines()[-2]  # vaudit's setup: every core
    assert "x the baseline's speed" in r.stdout
