"""Evidence integrity end to end through the CLI: verify, custody history, backup, originals."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from builders import Known, build_workspace
from conftest import ROOT

from pipeline.records import Decision

TZ = ZoneInfo("Asia/Shanghai")


def vaudit(ws, *args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "--workspace", str(ws.root), *args],
                          capture_output=True, text=True, cwd=ROOT, check=False)


@pytest.fixture
def built(tmp_path):
    ws, store = build_workspace(tmp_path, [
        Known("城关镇", "garbage", datetime(2026, 11, 3, 9, 0, tzinfo=TZ), source_key="a"),
        Known("城关镇", "parking", datetime(2026, 11, 3, 9, 0, tzinfo=TZ), start_s=4, end_s=6, source_key="a"),
        Known("西湖乡", "stall", datetime(2026, 11, 5, 15, 0, tzinfo=TZ)),
    ])
    yield ws, store
    store.close()


def test_untouched_workspace_verifies_after_review_and_export(built, tmp_path):
    ws, store = built
    store.record_decision(Decision(1, "ana", "confirm"))
    store.record_decision(Decision(2, "ana", "relabel", category="stall"))
    store.record_decision(Decision(3, "ana", "reject", reason="duplicate"))
    assert vaudit(ws, "export", "pack", "--period", "2026-11", "-o", str(tmp_path / "pack")).returncode == 0
    r = vaudit(ws, "verify", "--deep")
    assert r.returncode == 0, r.stdout
    assert "intact" in r.stdout and "6 artifacts" in r.stdout


def test_flipped_byte_in_a_clip_is_named(built):
    ws, store = built
    clip = store.query("SELECT path, sha256 FROM artifacts WHERE kind = 'clip' ORDER BY id LIMIT 1")[0]
    p = ws.abs(clip["path"])
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    r = vaudit(ws, "verify")
    assert r.returncode == 1
    assert clip["path"] in r.stdout and f"expected {clip['sha256']}" in r.stdout
    assert "1 problems" in r.stdout


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder"])
def test_custody_tampering_names_the_first_broken_entry(built, tamper):
    ws, _ = built
    c = sqlite3.connect(ws.db_path, isolation_level=None)
    c.execute("DROP TRIGGER custody_no_update")
    c.execute("DROP TRIGGER custody_no_delete")
    if tamper == "edit":
        c.execute("UPDATE custody SET actor = 'mallory' WHERE seq = 5")
        first = 5
    elif tamper == "delete":
        c.execute("DELETE FROM custody WHERE seq = 5")
        first = 6
    else:
        c.execute("UPDATE custody SET seq = -1 WHERE seq = 4")
        c.execute("UPDATE custody SET seq = 4 WHERE seq = 7")
        c.execute("UPDATE custody SET seq = 7 WHERE seq = -1")
        first = 4
    c.close()
    r = vaudit(ws, "verify")
    assert r.returncode == 1
    assert f"custody entry {first}:" in r.stdout, r.stdout


def test_moved_or_changed_original_is_detected(built):
    ws, store = built
    src = store.query("SELECT path FROM sources ORDER BY id LIMIT 2")
    moved = Path(src[0]["path"])
    moved.rename(moved.with_name("elsewhere.mp4"))
    changed = Path(src[1]["path"])
    data = bytearray(changed.read_bytes())
    data[-100] ^= 0xFF  # same size, different bytes: only --deep can see it
    changed.write_bytes(bytes(data))
    r = vaudit(ws, "verify")
    assert r.returncode == 1 and "missing (moved or deleted)" in r.stdout
    deep = vaudit(ws, "verify", "--deep")
    assert "missing (moved or deleted)" in deep.stdout and f"original {changed}" in deep.stdout
    assert "(changed)" in deep.stdout or "modified since ingest" in deep.stdout


def test_custody_history_shows_provenance(built):
    ws, store = built
    store.record_decision(Decision(2, "ana", "reject", reason="false_detection", note="车辆在车位内"))
    r = vaudit(ws, "custody", "2")
    assert r.returncode == 0
    for needle in ("violation 2: parking (rejected)", "sha256", "made by: ffmpeg", "-c copy", "ana: reject",
                   "false_detection", "violation_created", "decision_reject", "source_ingested", "run_started"):
        assert needle in r.stdout, needle
    h = json.loads(vaudit(ws, "custody", "2", "--json").stdout)
    assert h["run"]["model_sha256"] and h["artifacts"][0]["command"].startswith("ffmpeg")
    assert vaudit(ws, "custody", "999").returncode == 1


def test_backup_while_another_process_writes(built, tmp_path):
    ws, store = built
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            store.record_decision(Decision(1 + i % 3, "ana", "note", note=f"n{i}"))
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        r = vaudit(ws, "backup", str(tmp_path / "bk"))
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    db = next((tmp_path / "bk").glob("*.db"))
    manifest = json.loads(db.with_suffix(".manifest.json").read_text())
    assert manifest["integrity_check"] == "ok"
    from pipeline import custody

    with sqlite3.connect(db) as c:
        assert custody.verify(c) == []
        n = c.execute("SELECT count(*) FROM custody").fetchone()[0]
    assert manifest["custody_head"]["seq"] == n
