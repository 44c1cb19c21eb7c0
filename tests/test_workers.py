"""Three workers, each with its own workspace folder as if on its own machine, against one PostgreSQL and
one shared footage and evidence folder; one is killed with SIGKILL mid-source. Real ffmpeg, real YOLO."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from conftest import ROOT, SAMPLES, listing_key

pytestmark = pytest.mark.slow
VAUDIT = [sys.executable, "-m", "pipeline.cli"]
LEASE_S = "15"  # a dead worker's source is taken over after 15 s without its heartbeat


def vaudit(ws: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*VAUDIT, "--workspace", str(ws), *args], capture_output=True, text=True, check=check,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=900)


@pytest.fixture
def footage(tmp_path) -> Path:
    """The shipped samples (four 20 s videos in three district folders), on 'shared storage'."""
    return shutil.copytree(SAMPLES, tmp_path / "shared-footage")


def _holding(url: str, worker: str) -> int | None:
    with psycopg.connect(url) as c:
        row = c.execute("SELECT source_id FROM jobs WHERE status = 'processing' AND lease_owner LIKE %s",
                        (worker + ":%",)).fetchone()
    return row[0] if row else None


def test_three_workers_one_killed_mid_source(footage, reference_listing, pg_url, tmp_path):
    evidence = tmp_path / "shared-evidence"
    machines = [tmp_path / f"machine{k}" for k in (1, 2, 3)]
    for m in machines:  # each machine's own workspace names the shared database and evidence folder
        vaudit(m, "--evidence", str(evidence), "db", "use", pg_url)
    vaudit(machines[0], "ingest", str(footage))

    procs = [subprocess.Popen([*VAUDIT, "--workspace", str(m), "run", "--wait", "--lease", LEASE_S], cwd=ROOT,
                              env={**os.environ, "VAUDIT_WORKER": f"m{k}"}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for k, m in enumerate(machines, start=1)]
    deadline = time.monotonic() + 300
    while (victim_source := _holding(pg_url, "m1")) is None:
        assert procs[0].poll() is None and time.monotonic() < deadline, "m1 never took a source"
        time.sleep(0.05)
    time.sleep(0.3)
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait()
    assert _holding(pg_url, "m1") == victim_source  # killed while its source was still in progress
    outs = [p.communicate(timeout=900) for p in procs[1:]]
    assert all(p.returncode == 0 for p in procs[1:]), outs

    with psycopg.connect(pg_url) as c:
        jobs = c.execute("SELECT source_id, status, attempts, lease_owner FROM jobs ORDER BY source_id").fetchall()
        assert [j[1] for j in jobs] == ["done"] * 4  # every source done, once per run key
        victim = next(j for j in jobs if j[0] == victim_source)
        assert victim[2] == 2 and not victim[3].startswith("m1:")  # taken over by another machine
        assert c.execute("SELECT count(*) FROM (SELECT source_id FROM frames GROUP BY source_id"
                         " HAVING count(DISTINCT run_id) > 1) x").fetchone()[0] == 0
        processed = c.execute("SELECT entity_id, count(*) FROM custody WHERE event = 'source_processed'"
                              " GROUP BY entity_id").fetchall()
        assert sorted(n for _, n in processed) == [1] * 4  # exactly one committed result per source
    assert sum(int(o.split(":")[1].split("sources processed")[0]) for o, _ in outs) == 4

    rows = json.loads(vaudit(machines[1], "violations", "--json").stdout)
    assert listing_key(rows) == reference_listing  # the same evidence as one worker alone, to the clip's hash
    files = {p.relative_to(evidence).as_posix() for d in ("clips", "frames") for p in (evidence / d).rglob("*")
             if p.is_file()}
    assert files == {r["clip_path"] for r in rows} | {r["keyframe_path"] for r in rows}
    assert not any((evidence / "tmp").iterdir())  # the dead worker's staging was swept
    for m in machines[1:]:
        r = vaudit(m, "verify", check=False)
        assert r.returncode == 0 and "intact" in r.stdout, r.stdout

    status = json.loads(vaudit(machines[2], "status", "--json").stdout)
    states = {w["owner"].split(":")[0]: w["state"] for w in status["workers"] if w["owner"]}
    assert states["m2"] == states["m3"] == "finished"
    assert {w["pid"]: w["state"] for w in status["workers"]}[procs[0].pid] == "gone"  # no heartbeat since the kill
    assert status["trouble"] == []
    text = vaudit(machines[2], "status").stdout
    assert "done 4" in text and "m2:" in text and "m3:" in text
