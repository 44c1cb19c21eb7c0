"""`vaudit verify` checks the boxes analysts drew (issue 19): a corrected violation box, an added violation's box
and the boxes their decisions record must match what the custody log says; a box changed behind the log is
named with the row and the entry. Real workspace (builder: real H.264 sources and clips, real SQLite)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from builders import Known, build_workspace
from conftest import ROOT

from pipeline import annotate
from pipeline import config as config_mod

DAY = datetime(2026, 11, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def verify(ws) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "-w", str(ws.root), "verify"], cwd=ROOT,
                          capture_output=True, text=True, check=False, timeout=120)


def test_boxes_changed_behind_the_log_are_named(tmp_path):
    cfg = config_mod.load()
    ws, store = build_workspace(tmp_path, [Known("城关镇", "garbage", DAY, 2.0, 3.0, 0.8, source_key="a")])
    try:
        sid = store.query("SELECT id FROM sources")[0]["id"]
        vid = store.query("SELECT id FROM violations")[0]["id"]
        annotate.correct_box(store, vid, (40.0, 50.0, 160.0, 170.0), "ana")
        added = annotate.add_missed(ws, store, cfg, sid, 4.0, (10.0, 100.0, 90.0, 200.0), "stall", "ana")
        fix = store.query("SELECT id FROM decisions WHERE action = 'correct_box'")[0]["id"]
        add = store.query("SELECT id FROM decisions WHERE action = 'add'")[0]["id"]
    finally:
        store.close()
    assert verify(ws).returncode == 0

    db = sqlite3.connect(ws.db_path)
    db.execute("UPDATE violations SET x1 = 41 WHERE id = ?", (vid,))  # the corrected box, moved
    db.execute("UPDATE violations SET y2 = 230 WHERE id = ?", (added,))  # the added box, grown
    db.execute("UPDATE decisions SET x2 = 170 WHERE id = ?", (fix,))  # what the correction said
    db.execute("UPDATE decisions SET t_s = 3.5 WHERE id = ?", (add,))  # when the added box was drawn
    db.commit()
    db.close()
    r = verify(ws)
    assert r.returncode == 1
    out = r.stdout + r.stderr
    for where in (f"violation {vid}", f"violation {added}", f"decision {fix}", f"decision {add}"):
        assert where in out, out
    assert "[41.0, 50.0, 160.0, 170.0] in the table" in out and "says [40.0, 50.0, 160.0, 170.0]" in out
    assert "t_s is 3.5 in the table" in out
