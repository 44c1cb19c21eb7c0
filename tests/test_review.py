"""The review workstation over HTTP (no browser): access control, CSRF, media confinement, Range,
SQL-safe filters, roles, throttling, decisions, user management and the assessors' exports.

One real workspace (real clips and keyframes, via the builder) is made per module and engine (SQLite,
PostgreSQL) and copied per test, so every test starts from the same known evidence and may change it freely.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import warnings
import zipfile
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from conftest import ENGINES, copy_workspace, database_for
from openpyxl import load_workbook
from starlette.routing import Route

from pipeline import config as config_mod
from pipeline.review import commands
from pipeline.review.app import create_app
from pipeline.review.exports import content_disposition, default_period
from pipeline.store import Store
from pipeline.workspace import Workspace
from tests.builders import Known, build_workspace

with warnings.catch_warnings():  # this starlette prefers httpx2 for its test client; httpx still works
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from starlette.testclient import TestClient

TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct-horse-9"
USERS = {"ana": "analyst", "asa": "assessor", "adm": "admin", "gone": "analyst"}
ITEMS = [
    Known("城关镇", "garbage", datetime(2024, 5, 1, 9, 0, tzinfo=TZ), 1.5, 3.5, 0.91, source_key="a"),
    Known("城关镇", "parking", datetime(2024, 5, 1, 9, 0, tzinfo=TZ), 4.0, 6.0, 0.55, source_key="a"),
    Known("东城街道", "stall", datetime(2024, 5, 2, 14, 0, tzinfo=TZ), 2.0, 5.0, 0.72, status="confirmed"),
    Known("西湖乡", "garbage", datetime(2024, 5, 3, 8, 0, tzinfo=TZ), 2.0, 5.0, 0.40, status="rejected"),
]
INJECTIONS = ["' OR 1=1 --", '"; DROP TABLE violations; --', "城关镇' OR '1'='1", "1; DELETE FROM users"]


@pytest.fixture(scope="module", params=ENGINES)
def template(tmp_path_factory, request) -> Workspace:
    ws, store = build_workspace(tmp_path_factory.mktemp("review"), ITEMS, database=database_for(request.param, request))
    store.close()
    for name, role in USERS.items():
        commands.user_add(ws, name, role, PASSWORD)
    commands.user_disable(ws, "gone")
    return ws


@pytest.fixture
def rws(template, tmp_path, request) -> Workspace:
    return copy_workspace(template, tmp_path / "ws", request)


@pytest.fixture
def app(rws):
    return create_app(rws, config_mod.load())


@pytest.fixture
def client(app) -> TestClient:
    return TestClient(app)


@pytest.fixture
def db(rws) -> Store:
    store = Store(rws.db)
    yield store
    store.close()


def vid(db: Store, category: str, district: str) -> int:
    return db.query("SELECT v.id FROM violations v JOIN sources s ON s.id = v.source_id"
                    " WHERE v.detected_category = ? AND s.district = ?", [category, district])[0]["id"]


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client: TestClient, name: str, password: str = PASSWORD, next_: str = "/"):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token, "next": next_},
                       follow_redirects=False)


def logged_in(client: TestClient, name: str) -> str:
    """Log in and return the session's CSRF token (a new one is issued at login)."""
    assert login(client, name).status_code == 303
    return csrf_of(client.get("/").text)


def listed_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr class="status-\w+" data-id="(\d+)"', html)]


def snapshot(db: Store) -> tuple:
    """Everything a refused request must leave untouched."""
    return (db.query("SELECT id, status, category, start_s, end_s FROM violations ORDER BY id"),
            db.query("SELECT count(*) AS n FROM decisions")[0]["n"], db.query("SELECT count(*) AS n FROM custody")[0]["n"])


def route_urls(app, db: Store) -> list[tuple[str, str]]:
    """(method, url) for every route of the app, with real ids and a real artifact path filled in."""
    art = db.query("SELECT path FROM artifacts WHERE kind = 'clip' LIMIT 1")[0]["path"]
    out = []
    for r in app.routes:
        if isinstance(r, Route):
            url = (r.path.replace("{vid:int}", "1").replace("{sid:int}", "1").replace("{fid:int}", "1")
                   .replace("{path:path}", art))
            out += [(m, url) for m in sorted(r.methods - {"HEAD"})]
    return out


# -- access control ------------------------------------------------------------------------------


def test_every_route_refuses_anonymous_requests(app, client, db, rws):
    clip = rws.abs(db.query("SELECT path FROM artifacts WHERE kind = 'clip' LIMIT 1")[0]["path"]).read_bytes()
    urls = [u for u in route_urls(app, db) if u[1] != "/login"]
    assert {u for _, u in urls} >= {"/", "/batch", "/export", "/v/1", "/v/1/decide", "/logout", "/exports",
                                    "/exports/counts", "/exports/charts", "/exports/pack"}
    assert any(u.startswith("/media/") for _, u in urls)
    for method, url in urls:
        r = client.request(method, url, follow_redirects=False)
        if method == "GET" and not url.startswith("/media/"):
            assert r.status_code == 302 and r.headers["location"].startswith("/login?next="), (method, url)
        else:
            assert r.status_code == 401, (method, url)
        assert clip[:4096] not in r.content
    assert client.get("/static/review.css").status_code == 200  # only CSS/JS are public
    client.cookies.set("vaudit_session", "eyJ1IjoiYWRtIn0.forged.signature")
    assert client.get("/v/1", follow_redirects=False).status_code == 302


def test_login_sets_hardened_cookie_and_redirects_only_on_site(rws, client):
    r = login(client, "ana", next_="//evil.example/x")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert client.get("/").status_code == 200
    # secure_cookies: Secure even on plain http (TLS ends at a proxy); the login form's cookie shows it
    secure = TestClient(create_app(rws, config_mod.load(), secure_cookies=True))
    assert "secure" in secure.get("/login").headers["set-cookie"].lower()
    over_tls = TestClient(create_app(rws, config_mod.load()), base_url="https://testserver")
    assert "secure" in login(over_tls, "ana").headers["set-cookie"].lower()
    assert (rws.root / "review-secret").stat().st_mode & 0o777 == 0o600


def test_pages_carry_security_headers(client):
    r = client.get("/login")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"


def test_logout_ends_the_session(client):
    token = logged_in(client, "ana")
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 302


# -- CSRF --------------------------------------------------------------------------------------------


def test_login_post_without_csrf_is_refused(client):
    r = client.post("/login", data={"name": "ana", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403 and "vaudit_session" not in r.headers.get("set-cookie", "")


def test_every_post_without_or_with_a_wrong_csrf_token_is_refused(app, client, db):
    token = logged_in(client, "adm")
    before = snapshot(db)
    posts = [u for m, u in route_urls(app, db) if m == "POST" and u != "/login"]
    assert set(posts) >= {"/logout", "/batch", "/export", "/v/1/decide", "/exports/counts", "/exports/charts",
                          "/exports/pack"}
    form = {"action": "confirm", "ids": "1", "reason": "duplicate", "period": "2024-05"}
    for url in posts:
        assert client.post(url, data=form, follow_redirects=False).status_code == 403, url
        assert client.post(url, data={**form, "csrf_token": token[::-1]}, follow_redirects=False).status_code == 403
        assert client.post(url, data=form, headers={"X-CSRF-Token": "nope"}, follow_redirects=False).status_code == 403
    assert snapshot(db) == before
    assert client.get("/").status_code == 200  # logout was refused too
    r = client.post("/v/1/decide", data=form, headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert r.status_code == 303 and db.query("SELECT status FROM violations WHERE id = 1")[0]["status"] == "confirmed"


# -- media -------------------------------------------------------------------------------------------


def test_media_serves_only_artifacts_inside_the_workspace(client, db, rws, tmp_path):
    logged_in(client, "asa")
    secret = (rws.root / "review-secret").read_bytes()
    # the SQLite header, unique to the database file (PostgreSQL keeps none in the workspace)
    dbbytes = rws.db_path.read_bytes()[:100] if rws.db_path.exists() else b"SQLite format 3\0"
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"TOP-SECRET-OUTSIDE")
    bad = ["/media/../evidence.db", "/media/%2e%2e/evidence.db", "/media/clips/%2e%2e/%2e%2e/evidence.db",
           "/media/clips/..%2f..%2fevidence.db", "/media/%2Fetc%2Fpasswd", "/media//etc/passwd",
           f"/media/{outside}", "/media/evidence.db", "/media/review-secret", "/media/clips/",
           "/media/clips/%5c..%5cevidence.db", "/media/clips/x%00.mp4"]
    for url in bad:
        r = client.get(url)
        assert r.status_code in (403, 404), url
        assert dbbytes not in r.content and secret not in r.content and b"root:" not in r.content
    # an artifact whose file was swapped for a symlink out of the workspace is refused, unread
    kf = db.query("SELECT path FROM artifacts WHERE kind = 'keyframe' LIMIT 1")[0]["path"]
    rws.abs(kf).unlink()
    rws.abs(kf).symlink_to(outside)
    r = client.get(f"/media/{kf}")
    assert r.status_code == 404 and b"TOP-SECRET" not in r.content


def test_media_answers_range_requests_with_206(client, db, rws):
    logged_in(client, "ana")
    rel = db.query("SELECT path FROM artifacts WHERE kind = 'clip' LIMIT 1")[0]["path"]
    data = rws.abs(rel).read_bytes()
    full = client.get(f"/media/{rel}")
    assert full.status_code == 200 and full.content == data and full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    part = client.get(f"/media/{rel}", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = client.get(f"/media/{rel}", headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    assert client.get(f"/media/{rel}", headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416


# -- queue filters -------------------------------------------------------------------------------------


def test_filters_select_the_right_rows(client, db):
    logged_in(client, "asa")
    g, p = vid(db, "garbage", "城关镇"), vid(db, "parking", "城关镇")
    s, x = vid(db, "stall", "东城街道"), vid(db, "garbage", "西湖乡")
    cases = {
        "": [g, p, s, x],  # pending first, then by time
        "district=城关镇": [g, p],
        "category=garbage": [g, x],
        "status=confirmed": [s],
        "min_conf=0.7": [g, s],
        "date_from=2024-05-02&date_to=2024-05-02": [s],
        "source=a.mp4": [g, p],
        "sort=-confidence": [g, p, s, x],
        "sort=confidence": [p, g, x, s],
    }
    for qs, expected in cases.items():
        html = client.get(f"/?{qs}").text
        assert listed_ids(html) == expected, qs
    counts = client.get("/?district=城关镇&status=confirmed").text
    assert 'data-count="pending">2<' in counts and 'data-count="confirmed">0<' in counts


def test_sql_metacharacters_in_filters_do_no_harm(client, db):
    logged_in(client, "ana")
    before = snapshot(db)
    for payload in INJECTIONS:
        for key in ("district", "category", "source", "min_conf", "status", "date_from", "date_to", "sort", "page"):
            r = client.get("/", params={key: payload})
            assert r.status_code == 200, (key, payload)
            matched = listed_ids(r.text)
            # text filters compare the payload as a value (no match); others drop an invalid value (all rows)
            assert matched == ([] if key in ("district", "source") else listed_ids(client.get("/").text)), key
        assert client.get(f"/v/1?district={payload}").status_code == 200
    assert snapshot(db) == before
    assert db.query("SELECT count(*) AS n FROM users")[0]["n"] == len(USERS)
    # a district whose real name is full of quotes is matched exactly, like any other value
    with db.tx() as c:
        c.execute("UPDATE sources SET district = ? WHERE id = (SELECT source_id FROM violations WHERE id = ?)",
                  (INJECTIONS[0], vid(db, "stall", "东城街道")))
    assert listed_ids(client.get("/", params={"district": INJECTIONS[0]}).text) == [vid(db, "stall", INJECTIONS[0])]


def test_paging_works_with_thousands_of_violations(client, db):
    logged_in(client, "asa")
    with db.tx() as c:  # 2,500 more rows cloned from the real ones, spread over the same sources
        c.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 625)
                     INSERT INTO violations (run_id, source_id, category, detected_category, start_s, end_s,
                       start_time, end_time, confidence, hits, status, created_at)
                     SELECT run_id, source_id, category, detected_category, start_s + i, end_s + i,
                       start_time, end_time, confidence, hits, status, created_at FROM violations, n""")
    total = db.query("SELECT count(*) AS n FROM violations")[0]["n"]
    assert total == 2504
    first = client.get("/").text
    assert f'<strong id="total">{total}</strong>' in first and f"第 1 / {-(-total // 50)} 页" in first
    pending = db.query("SELECT count(*) AS n FROM violations WHERE status = 'pending'")[0]["n"]
    seen: list[int] = []
    for page in range(1, -(-total // 50) + 1):
        seen += listed_ids(client.get(f"/?page={page}").text)
    assert len(seen) == total and len(set(seen)) == total
    statuses = {r["id"]: r["status"] for r in db.query("SELECT id, status FROM violations")}
    assert all(statuses[i] == "pending" for i in seen[:pending]) and "pending" not in {statuses[i] for i in seen[pending:]}
    assert len(listed_ids(client.get("/?page=999").text)) == (total % 50 or 50)  # clamped to the last page


# -- decisions and roles ---------------------------------------------------------------------------------


def test_assessor_can_read_and_export_but_not_decide(client, db):
    token = logged_in(client, "asa")
    g = vid(db, "garbage", "城关镇")
    page = client.get(f"/v/{g}").text
    assert "只读" in page and 'id="f-confirm"' not in page
    before = snapshot(db)
    for url, form in ((f"/v/{g}/decide", {"action": "confirm"}),
                      (f"/v/{g}/decide", {"action": "reject", "reason": "duplicate"}),
                      ("/batch", {"action": "confirm", "ids": str(g)})):
        assert client.post(url, data={**form, "csrf_token": token}, follow_redirects=False).status_code == 403
    assert snapshot(db) == before
    r = client.post("/export", data={"csrf_token": token, "q": "district=城关镇"})
    assert r.status_code == 200 and r.content.startswith("\ufeff编号".encode())
    assert len(r.text.strip().splitlines()) == 3 and "暴露垃圾 Exposed garbage" in r.text
    assert db.query("SELECT actor FROM custody WHERE event = 'review_export'") == [{"actor": "asa"}]


def test_analyst_decisions_are_recorded_with_history_and_advance(client, db):
    token = logged_in(client, "ana")
    g, p = vid(db, "garbage", "城关镇"), vid(db, "parking", "城关镇")
    q = urlencode({"district": "城关镇"})

    def decide(v: int, **form: str):
        return client.post(f"/v/{v}/decide", data={**form, "csrf_token": token, "q": q}, follow_redirects=False)

    assert decide(g, action="reject").status_code == 400  # a reject needs a reason
    assert decide(g, action="trim", start_s="3", end_s="2").status_code == 400
    assert decide(g, action="note", note="  ").status_code == 400
    r = decide(g, action="relabel", category="stall")
    assert r.status_code == 303 and r.headers["location"] == f"/v/{g}?{q}&m=relabel"  # still pending: stays
    assert decide(g, action="relabel", category="stall").headers["location"].endswith("m=same_category")
    assert decide(g, action="trim", start_s="1.75", end_s="3.25").status_code == 303
    assert decide(g, action="note", note="车牌清晰 <b>").status_code == 303
    r = decide(g, action="confirm")
    assert r.headers["location"] == f"/v/{p}?{q}&m=confirm"  # the next pending item opens
    r = decide(p, action="reject", reason="unclear_footage")
    assert r.headers["location"] == f"/?{q}&m=done"  # none left under this filter
    rows = db.query("SELECT user, action, category, reason, note, start_s, end_s FROM decisions"
                    " WHERE violation_id IN (?, ?) ORDER BY id", [g, p])
    assert [(d["user"], d["action"]) for d in rows] == [
        ("ana", "relabel"), ("ana", "trim"), ("ana", "note"), ("ana", "confirm"), ("ana", "reject")]
    assert rows[0]["category"] == "stall" and rows[4]["reason"] == "unclear_footage" and rows[2]["note"] == "车牌清晰 <b>"
    v = {r["id"]: r for r in db.query("SELECT * FROM violations WHERE id IN (?, ?)", [g, p])}
    assert (v[g]["status"], v[g]["category"], v[g]["start_s"], v[g]["end_s"]) == ("confirmed", "stall", 1.75, 3.25)
    assert v[p]["status"] == "rejected"
    page = client.get(f"/v/{g}").text
    assert "占道经营" in page and "已确认" in page and "改为 占道经营" in page and "1.75–3.25 秒" in page
    assert "车牌清晰 &lt;b&gt;" in page  # notes are escaped, never markup
    assert re.search(r"<td>ana</td><td>确认</td>", page)


def test_review_page_shows_the_evidence(client, db):
    logged_in(client, "ana")
    g, p = vid(db, "garbage", "城关镇"), vid(db, "parking", "城关镇")
    v = db.query("SELECT s.sha256 FROM violations v JOIN sources s ON s.id = v.source_id WHERE v.id = ?", [g])[0]
    page = client.get(f"/v/{g}").text
    assert "暴露垃圾" in page and "Exposed garbage" in page and "2024-05-01 09:00:01" in page
    assert v["sha256"] in page and "城关镇" in page and "91%" in page
    assert f'href="/v/{p}?"' in page  # the other violation in the same footage
    src = re.search(r'<video id="clip"[^>]*src="([^"]+)"', page).group(1)
    assert client.get(src, headers={"Range": "bytes=0-99"}).status_code == 206
    assert client.get(re.search(r'<img id="keyframe" src="([^"]+)"', page).group(1)).content[:2] == b"\xff\xd8"
    assert client.get("/v/99999").status_code == 404


def test_batch_reject_records_one_decision_per_item(client, db):
    token = logged_in(client, "ana")
    g, p = vid(db, "garbage", "城关镇"), vid(db, "parking", "城关镇")
    form = {"csrf_token": token, "action": "reject", "ids": [str(g), str(p), "99999"], "q": ""}
    assert client.post("/batch", data={**form, "reason": "bogus"}, follow_redirects=False).status_code == 400
    r = client.post("/batch", data={**form, "reason": "duplicate"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/?m=batch&n=2"
    assert [(d["violation_id"], d["reason"]) for d in db.query("SELECT * FROM decisions WHERE user = 'ana'")] == [
        (g, "duplicate"), (p, "duplicate")]
    assert {r["status"] for r in db.query("SELECT status FROM violations WHERE id IN (?, ?)", [g, p])} == {"rejected"}


# -- login protection ----------------------------------------------------------------------------------


def test_login_throttling_blocks_after_five_failures(app, client):
    clock = [1000.0]
    app.state.review.throttle.clock = lambda: clock[0]
    for _ in range(5):
        r = login(client, "ana", "wrong-password")
        assert r.status_code == 401 and "用户名或密码错误" in r.text
    r = login(client, "ana")  # even the right password is refused while blocked
    assert r.status_code == 429 and "次数过多" in r.text
    assert login(client, "adm").status_code == 303  # another user from the same address is not blocked
    clock[0] += 301
    assert login(client, "ana").status_code == 303


def test_disabled_user_cannot_log_in_and_loses_open_sessions(client, rws):
    r = login(client, "gone")  # the right password: the same answer as a wrong one, nothing revealed
    assert r.status_code == 401 and "用户名或密码错误" in r.text and "停用" not in r.text
    assert r.text.replace("gone", "") == login(client, "gone", "wrong-password").text.replace("gone", "")
    assert client.get("/", follow_redirects=False).status_code == 302
    logged_in(client, "ana")
    commands.user_disable(rws, "ana")
    assert client.get("/", follow_redirects=False).status_code == 302


# -- user commands ---------------------------------------------------------------------------------------


def test_user_add_validates_and_user_list_hides_hashes(rws):
    for name, role, password, message in (
        ("bob", "boss", "long-enough", "unknown role"),
        ("bob", "analyst", "short", "at least 10"),
        ("bob", "analyst", "12345678", "at least 10"),
        ("bob", "analyst", "1234567890", "too common"),
        ("bob", "analyst", "Password2024!", "too common"),
        ("bob", "analyst", "qwertyuiop", "too common"),
        ("bob", "analyst", "aaaaaaaaaaaa", "too common"),
        ("bobby", "analyst", "bobby-rules-ok", "user name"),
        ("", "analyst", "long-enough", "user name"),
        ("b b", "analyst", "long-enough", "user name"),
        ("ana", "analyst", "long-enough", "already exists"),
    ):
        with pytest.raises(ValueError, match=message):
            commands.user_add(rws, name, role, password)
    commands.user_add(rws, "bob", "assessor", "long-enough")
    users = {u["name"]: u for u in commands.user_list(rws)}
    assert users["bob"]["role"] == "assessor" and users["gone"]["disabled"] is True
    assert all("password_hash" not in u for u in users.values())
    stored = Store(rws.db).user("bob")["password_hash"]
    assert stored.startswith("$argon2") and "long-enough" not in stored
    with pytest.raises(LookupError):
        commands.user_disable(rws, "nobody")


def test_serve_refuses_a_workspace_without_a_database(tmp_path):
    with pytest.raises(ValueError, match="no evidence database"):
        commands.serve(Workspace(tmp_path / "empty"), config_mod.load())


def test_secret_file_is_reused_across_restarts(rws, client):
    logged_in(client, "ana")
    cookie = client.cookies.get("vaudit_session")
    again = TestClient(create_app(rws, config_mod.load()))
    again.cookies.set("vaudit_session", cookie)
    assert again.get("/", follow_redirects=False).status_code == 200


# -- exports ---------------------------------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export(client: TestClient, token: str, what: str, **form: str):
    return client.post(f"/exports/{what}", data={"csrf_token": token, **form}, follow_redirects=False)


def custody_events(db: Store, event: str) -> list[dict]:
    return [{**r, "payload": json.loads(r["payload"])}
            for r in db.query("SELECT actor, payload FROM custody WHERE event = ? ORDER BY seq", [event])]


def test_exports_page_is_for_assessors_and_admins_only(client, db):
    token = logged_in(client, "ana")
    assert 'href="/exports"' not in client.get("/").text  # no link for analysts
    r = client.get("/exports")
    assert r.status_code == 403 and "考核员和管理员" in r.text
    before = snapshot(db)
    for what in ("counts", "charts", "pack"):
        r = export(client, token, what, period="2024-05", format="xlsx")
        assert r.status_code == 403 and "无权" in r.text, what
    assert snapshot(db) == before  # nothing built, nothing logged
    for name in ("asa", "adm"):
        client.cookies.clear()
        logged_in(client, name)
        assert 'href="/exports"' in client.get("/").text
        page = client.get("/exports")
        assert page.status_code == 200 and "导出统计表与曝光材料" in page.text
        # last month in the configured zone is filled in; the form posts with this session's token
        assert f'name="period" value="{default_period(TZ)}"' in page.text
        assert csrf_of(page.text) == csrf_of(client.get("/").text)


def test_default_period_is_last_month_in_the_city_time_zone():
    assert default_period(TZ, datetime(2026, 1, 15, tzinfo=TZ)) == "2025-12"
    # 17:00 UTC on 30 Nov is already 1 Dec in Shanghai, so "last month" is November there
    assert default_period(TZ, datetime(2026, 11, 30, 17, 0, tzinfo=ZoneInfo("UTC"))) == "2026-11"


def test_assessor_downloads_counts_as_xlsx_and_json(client, db):
    token = logged_in(client, "asa")
    r = export(client, token, "counts", period="2024-05", status="confirmed", format="xlsx")
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    assert r.headers["content-disposition"] == 'attachment; filename="counts_2024-05.xlsx"'
    wb = load_workbook(io.BytesIO(r.content))
    grid = [list(row) for row in wb["汇总"].iter_rows(values_only=True)]
    assert grid[0] == ["区域", "暴露垃圾", "违规停车", "占道经营", "合计"]
    rows = {row[0]: row[1:] for row in grid[1:]}
    assert rows["东城街道"] == [0, 0, 1, 1]  # the one confirmed violation: a stall there on 2 May
    assert rows["城关镇"] == [0, 0, 0, 0] and rows["合计"] == [0, 0, 1, 1]  # pending ones are not counted
    assert "按区域" in wb.sheetnames and "说明" in wb.sheetnames

    r = export(client, token, "counts", period="2024-Q2", status="all", format="json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert 'filename="counts_2024-Q2_all.json"' in r.headers["content-disposition"]
    table = r.json()
    assert (table["period"], table["status"], table["total"]) == ("2024-Q2", "all", len(ITEMS))
    r = export(client, token, "counts", period="2024", format="csv")
    assert r.headers["content-type"].startswith("text/csv") and r.content.startswith("\ufeff排名".encode())
    assert [e["actor"] for e in custody_events(db, "export_counts")] == ["asa", "asa", "asa"]
    assert custody_events(db, "export_counts")[1]["payload"]["format"] == "json"


def test_assessor_downloads_the_charts_as_a_zip_of_pngs(client, db):
    token = logged_in(client, "asa")
    r = export(client, token, "charts", period="2024-05")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert 'filename="charts_2024-05.zip"' in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert sorted(z.namelist()) == ["by_district_2024-05.png", "trend_2024-05.png"]
        assert all(z.read(n).startswith(b"\x89PNG") for n in z.namelist())
    assert [e["actor"] for e in custody_events(db, "export_charts")] == ["asa"]


def test_assessor_downloads_a_pack_that_verifies_and_is_logged(client, db, rws, tmp_path):
    token = logged_in(client, "asa")
    stall = vid(db, "stall", "东城街道")
    r = export(client, token, "pack", period="2024-05", district="东城街道", blur_plates="1")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == content_disposition("pack_2024-05_东城街道.zip")
    assert int(r.headers["content-length"]) == len(r.content)
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        z.extractall(tmp_path / "pack")
    manifest = json.loads((tmp_path / "pack" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["violations"] == [stall] and manifest["made_by"] == "asa"
    assert manifest["district"] == "东城街道" and manifest["blurred"] == {"faces": False, "plates": True}
    done = subprocess.run([sys.executable, "-I", str(tmp_path / "pack" / "verify_pack.py")],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    logged = custody_events(db, "export_pack")
    assert len(logged) == 1 and logged[0]["actor"] == "asa"
    assert logged[0]["payload"]["violations"] == [stall] and logged[0]["payload"]["district"] == "东城街道"
    assert not list(rws.tmp.glob("review-pack-*"))  # the build folder is gone once the download has started
    assert client.get("/").status_code == 200  # the shared connection is still fine afterwards


def test_bad_export_input_shows_the_form_again_with_one_chinese_line(client, db):
    token = logged_in(client, "asa")
    before = snapshot(db)
    cases = [("counts", {"period": "2024-13"}, "统计周期须为"), ("counts", {"period": ""}, "统计周期须为"),
             ("charts", {"period": "next month"}, "统计周期须为"), ("pack", {"period": "2024-Q5"}, "统计周期须为"),
             ("counts", {"period": "2024-05", "format": "pdf"}, "文件格式"),
             ("counts", {"period": "2024-05", "status": "pending"}, "统计口径"),
             ("pack", {"period": "2024-05", "district": "不存在镇"}, "未知的区域")]
    for what, form, message in cases:
        r = export(client, token, what, **form)
        assert r.status_code == 400, (what, form)
        assert r.headers["content-type"].startswith("text/html") and "Traceback" not in r.text
        error = re.search(r'<p class="error" role="alert">([^<]*)</p>', r.text).group(1)
        assert message in error and "\n" not in error, (what, form, error)
        assert 'action="/exports/counts"' in r.text  # the form is shown again to correct
    r = export(client, token, "counts", period="<b>2024</b>")
    assert "&lt;b&gt;2024&lt;/b&gt;" in r.text and "<b>2024</b>" not in r.text  # what was typed, escaped
    assert snapshot(db) == before


def test_pack_of_altered_evidence_is_refused_with_a_message(client, db, rws):
    token = logged_in(client, "adm")
    stall = vid(db, "stall", "东城街道")
    clip = db.query("SELECT path FROM artifacts WHERE violation_id = ? AND kind = 'clip'", [stall])[0]["path"]
    data = bytearray(rws.abs(clip).read_bytes())
    data[2000] ^= 0xFF
    rws.abs(clip).write_bytes(bytes(data))
    r = export(client, token, "pack", period="2024-05")
    assert r.status_code == 409 and "无法生成材料包" in r.text and "vaudit verify" in r.text
    assert custody_events(db, "export_pack") == [] and not list(rws.tmp.glob("review-pack-*"))


def test_download_names_fall_back_to_ascii():
    assert content_disposition("counts_2024-05.xlsx") == 'attachment; filename="counts_2024-05.xlsx"'
    assert content_disposition("pack_2024-05_城关镇.zip") == (
        "attachment; filename=\"pack_2024-05_.zip\"; filename*=UTF-8''pack_2024-05_%E5%9F%8E%E5%85%B3%E9%95%87.zip")
