"""What analysts teach the model (issue 19): a corrected box, a violation the model missed with its own
evidence, a frame marked fully labelled. Over HTTP through the real app, on a real workspace (builder:
real ffmpeg clips, real SQLite), and the schema migration of an existing version-1 database.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import warnings
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import ENGINES, copy_workspace, database_for

from pipeline import config as config_mod
from pipeline import custody
from pipeline import db as db_mod
from pipeline import store as store_mod
from pipeline.hashing import sha256_file
from pipeline.records import Decision
from pipeline.review import commands
from pipeline.review.app import create_app
from pipeline.store import Store
from pipeline.verify import verify
from pipeline.workspace import Workspace
from tests.builders import Known, build_workspace

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from starlette.testclient import TestClient

TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct-horse-9"


@pytest.fixture(scope="module", params=ENGINES)
def template(tmp_path_factory, request) -> Workspace:
    ws, store = build_workspace(tmp_path_factory.mktemp("annotate"), [
        Known("城关镇", "garbage", datetime(2024, 5, 1, 9, 0, tzinfo=TZ), 1.0, 3.0, 0.81, source_key="a"),
        Known("城关镇", "parking", datetime(2024, 5, 1, 9, 0, tzinfo=TZ), 4.0, 6.0, 0.45, source_key="a"),
    ], database=database_for(request.param, request))
    store.close()
    commands.user_add(ws, "ana", "analyst", PASSWORD)
    commands.user_add(ws, "asa", "assessor", PASSWORD)
    return ws


@pytest.fixture
def rws(template, tmp_path, request) -> Workspace:
    return copy_workspace(template, tmp_path / "ws", request)


@pytest.fixture
def client(rws) -> TestClient:
    return TestClient(create_app(rws, config_mod.load()))


@pytest.fixture
def db(rws) -> Store:
    store = Store(rws.db)
    yield store
    store.close()


def token_of(client: TestClient, name: str) -> str:
    form = client.get("/login").text
    tok = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    assert client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": tok},
                       follow_redirects=False).status_code == 303
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)


def state(db: Store) -> tuple:
    return (db.query("SELECT * FROM violations ORDER BY id"), db.query("SELECT count(*) n FROM decisions")[0]["n"],
            db.query("SELECT count(*) n FROM custody")[0]["n"], db.query("SELECT count(*) n FROM artifacts")[0]["n"])


def test_corrected_box_is_a_decision_with_the_box_and_moves_the_violations_box(client, db, rws):
    tok = token_of(client, "ana")
    vid = db.query("SELECT id FROM violations WHERE category = 'garbage'")[0]["id"]
    page = client.get(f"/v/{vid}").text
    assert 'data-draw="box"' in page and 'id="box-now"' in page and 'data-width="320"' in page
    r = client.post(f"/v/{vid}/decide", data={"csrf_token": tok, "action": "correct_box", "x1": "10.4",
                                             "y1": "20", "x2": "150", "y2": "200.26"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/v/{vid}?m=correct_box"
    row = db.query("SELECT x1, y1, x2, y2, status FROM violations WHERE id = ?", [vid])[0]
    assert row == {"x1": 10.4, "y1": 20.0, "x2": 150.0, "y2": 200.3, "status": "pending"}
    d = db.query("SELECT user, action, t_s, x1, y1, x2, y2 FROM decisions WHERE violation_id = ?", [vid])[-1]
    assert d == {"user": "ana", "action": "correct_box", "t_s": 1.0, "x1": 10.4, "y1": 20.0, "x2": 150.0, "y2": 200.3}
    entry = custody.history(db.conn, "violation", vid)[-1]
    assert entry["event"] == "decision_correct_box" and entry["actor"] == "ana"
    assert entry["payload"]["box"] == [10.4, 20.0, 150.0, 200.3]
    assert "修正框" in client.get(f"/v/{vid}").text
    problems, _ = verify(rws, db)
    assert problems == []


def test_a_bad_box_is_refused_and_changes_nothing(client, db, rws):
    tok = token_of(client, "ana")
    vid = db.query("SELECT id FROM violations WHERE category = 'garbage'")[0]["id"]
    sid = db.query("SELECT source_id FROM violations WHERE id = ?", [vid])[0]["source_id"]
    before = state(db)
    bad = [{"x1": "a", "y1": "0", "x2": "1", "y2": "1"}, {"x1": "50", "y1": "50", "x2": "40", "y2": "90"},
           {"x1": "400", "y1": "300", "x2": "500", "y2": "400"}, {"x1": "nan", "y1": "0", "x2": "9", "y2": "9"}]
    for box in bad:
        r = client.post(f"/v/{vid}/decide", data={"csrf_token": tok, "action": "correct_box", **box})
        assert r.status_code == 400, box
        r = client.post(f"/s/{sid}/add", data={"csrf_token": tok, "t_s": "2", "category": "stall", **box})
        assert r.status_code == 400, box
    ok_box = {"x1": "10", "y1": "10", "x2": "90", "y2": "90"}
    assert client.post(f"/s/{sid}/add", data={"csrf_token": tok, "t_s": "2", "category": "bike", **ok_box}
                       ).status_code == 400
    assert client.post(f"/s/{sid}/add", data={"csrf_token": tok, "t_s": "99", "category": "stall", **ok_box}
                       ).status_code == 400
    assert client.post(f"/s/{sid}/add", data={"csrf_token": tok, "t_s": "", "category": "stall", **ok_box}
                       ).status_code == 400
    assert client.post(f"/s/{sid + 99}/add", data={"csrf_token": tok, "t_s": "2", "category": "stall", **ok_box}
                       ).status_code == 404
    assert state(db) == before
    tmp = rws.review_tmp
    assert not tmp.exists() or list(tmp.iterdir()) == []  # no staged files left behind


def test_assessor_cannot_add_or_correct(client, db):
    tok = token_of(client, "asa")
    sid = db.query("SELECT id FROM sources")[0]["id"]
    before = state(db)
    r = client.post(f"/s/{sid}/add", data={"csrf_token": tok, "t_s": "2", "category": "stall", "x1": "1",
                                           "y1": "1", "x2": "50", "y2": "50"})
    assert r.status_code == 403 and state(db) == before


def test_added_violation_is_confirmed_evidence_marked_as_added_by_a_person(client, db, rws):
    tok = token_of(client, "ana")
    sid = db.query("SELECT id FROM sources")[0]["id"]
    run_id = db.query("SELECT current_run_id FROM sources WHERE id = ?", [sid])[0]["current_run_id"]
    r = client.post(f"/s/{sid}/add", data={"csrf_token": tok, "t_s": "5.2", "category": "stall", "x1": "30",
                                           "y1": "40", "x2": "200", "y2": "230", "note": "漏检的流动摊贩"},
                    follow_redirects=False)
    assert r.status_code == 303
    new = int(re.match(r"/v/(\d+)\?m=add", r.headers["location"]).group(1))
    v = db.query("SELECT * FROM violations WHERE id = ?", [new])[0]
    assert (v["status"], v["category"], v["origin"], v["added_by"], v["run_id"]) == (
        "confirmed", "stall", "analyst", "ana", run_id)
    assert (v["start_s"], v["best_t_s"], v["x1"], v["y2"]) == (5.2, 5.2, 30.0, 230.0)
    assert v["start_time"].startswith("2024-05-01T09:00:05")
    arts = {a["kind"]: a for a in db.query("SELECT * FROM artifacts WHERE violation_id = ?", [new])}
    assert set(arts) == {"clip", "keyframe"}
    for a in arts.values():
        assert sha256_file(rws.abs(a["path"])) == a["sha256"]
    clip = arts["clip"]
    assert clip["start_s"] <= 5.2 - 3 + 1e-6 and clip["start_s"] == int(clip["start_s"])  # from the keyframe before
    assert "ffmpeg" in clip["command"] and clip["path"].startswith("clips/城关镇/2024-05-01/stall_090005_")
    assert [e["event"] for e in custody.history(db.conn, "violation", new)] == ["violation_created", "decision_add"]
    d = db.query("SELECT user, action, note, t_s, x1 FROM decisions WHERE violation_id = ?", [new])
    assert d == [{"user": "ana", "action": "add", "note": "漏检的流动摊贩", "t_s": 5.2, "x1": 30.0}]
    page = client.get(f"/v/{new}").text
    assert "人工补录（ana）" in page and "补录" in page
    # the media route serves it (it is an artifact), the listing and the CLI name it, verify accepts it
    assert client.get("/media/" + clip["path"]).status_code == 200
    listed = [x for x in db.violations() if x["id"] == new]
    assert listed and listed[0]["origin"] == "analyst" and listed[0]["added_by"] == "ana"
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "-w", str(rws.root), "violations", "--json"],
                         capture_output=True, text=True, check=True).stdout
    assert any(x["id"] == new and x["origin"] == "analyst" for x in json.loads(out))
    problems, counts = verify(rws, db)
    assert problems == [] and counts["artifacts"] == 6


def test_frame_page_shows_boxes_decodes_the_frame_and_marks_it_complete(client, db):
    tok = token_of(client, "ana")
    fid = db.query("SELECT id FROM frames ORDER BY t_s LIMIT 1")[0]["id"]
    vid = db.query("SELECT id FROM violations WHERE category = 'garbage'")[0]["id"]
    assert f'href="/f/{fid}' in client.get(f"/v/{vid}").text  # the review page links its keyframe's frame
    page = client.get(f"/f/{fid}").text
    assert f'data-violation="{vid}"' in page and 'data-t="1.0"' in page and "未标记" in page
    img = client.get(f"/f/{fid}/image.jpg")
    assert img.status_code == 200 and img.content[:3] == b"\xff\xd8\xff"
    assert client.get("/f/999999").status_code == 404
    r = client.post(f"/f/{fid}/complete", data={"csrf_token": tok}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/f/{fid}?m=complete"
    assert db.query("SELECT frame_id, user FROM frame_reviews") == [{"frame_id": fid, "user": "ana"}]
    e = custody.history(db.conn, "frame", fid)
    assert [x["event"] for x in e] == ["frame_reviewed_complete"] and e[0]["payload"]["t_s"] == 1.0
    assert "本帧已全部标注：ana" in client.get(f"/f/{fid}").text
    assert client.post("/f/999999/complete", data={"csrf_token": tok}).status_code == 404


def test_a_version_1_database_migrates_to_version_2_keeping_everything(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for stmt in db_mod.statements(store_mod.MIGRATIONS[1]):
        conn.execute(stmt)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("BEGIN")
    custody.append(conn, "schema_migrated", "database", None, {"to_version": 1})
    conn.execute("INSERT INTO runs (id, run_key, started_at) VALUES (1, 'k', 'now')")
    conn.execute("INSERT INTO sources (id, sha256, path, status, ingested_at, width, height) VALUES "
                 "(1, 'ab', '/x.mp4', 'ready', 'now', 320, 240)")
    conn.execute("INSERT INTO violations (id, run_id, source_id, category, detected_category, start_s, end_s, "
                 "confidence, hits, created_at) VALUES (1, 1, 1, 'garbage', 'garbage', 1, 2, 0.5, 2, 'now')")
    conn.execute("COMMIT")
    conn.close()
    store = Store(path)
    try:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION == 2
        v = store.query("SELECT category, origin, added_by FROM violations")
        assert v == [{"category": "garbage", "origin": "model", "added_by": None}]
        assert store.query("SELECT count(*) n FROM models")[0]["n"] == 0
        events = [r["event"] for r in store.query("SELECT event FROM custody ORDER BY seq")]
        assert events == ["schema_migrated", "schema_migrated"] and custody.verify(store.conn) == []
    finally:
        store.close()


def test_queue_can_show_the_least_sure_first(client, db):
    token_of(client, "ana")
    ids = {r["category"]: r["id"] for r in db.query("SELECT id, category FROM violations")}
    listed = [int(x) for x in re.findall(r'<tr class="status-\w+" data-id="(\d+)"', client.get("/?sort=uncertain").text)]
    # parking 0.45 is 0.05 above its threshold (0.40); garbage 0.81 is 0.61 above its own (0.20)
    assert listed == [ids["parking"], ids["garbage"]]
    assert [int(x) for x in re.findall(r'<tr class="status-\w+" data-id="(\d+)"', client.get("/?sort=-confidence").text)
            ] == [ids["garbage"], ids["parking"]]
    assert "最不确定优先" in client.get("/").text


def test_exports_page_compares_the_current_model_with_reviewed_truth(client, db, rws):
    from pipeline import annotate

    ids = {r["category"]: r["id"] for r in db.query("SELECT id, category FROM violations")}
    db.record_decision(Decision(ids["garbage"], "ana", "confirm"))
    db.record_decision(Decision(ids["parking"], "ana", "reject", reason="false_detection"))
    sid = db.query("SELECT id FROM sources")[0]["id"]
    annotate.add_missed(rws, db, config_mod.load(), sid, 6.5, (5, 5, 100, 100), "garbage", "ana")
    token_of(client, "asa")
    page = client.get("/exports").text
    rows = dict(re.findall(r'<tr data-category="(\w+)">(.*?)</tr>', page, re.DOTALL))
    cells = {k: re.findall(r"<td>(.*?)</td>", v, re.DOTALL) for k, v in rows.items()}
    assert [c.strip() for c in cells["garbage"][1:]] == ["1", "0", "0", "1", "100%", "50%"]
    assert [c.strip() for c in cells["parking"][1:]] == ["0", "1", "0", "0", "0%", "—"]
    assert "builder.pt" in page
