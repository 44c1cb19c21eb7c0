"""The review workstation in a real headless Chromium: log in, then review three violations with the
keyboard alone, and check the evidence DB holds exactly those decisions; and an assessor downloads a
counts workbook from the exports page.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from openpyxl import load_workbook

from pipeline import config as config_mod
from pipeline.review import commands
from pipeline.review.app import create_app
from pipeline.store import Store
from tests.builders import Known, build_workspace

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct-horse-9"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")]


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, Path, list[int]]]:
    """A real workspace with three pending violations, served by uvicorn on a free localhost port."""
    start = datetime(2024, 5, 1, 9, 30, tzinfo=TZ)
    ws, store = build_workspace(tmp_path, [
        Known("城关镇", "garbage", start, 2.0, 5.0, 0.93, source_key="street"),
        Known("城关镇", "parking", start, 4.0, 6.5, 0.61, source_key="street"),
        Known("城关镇", "garbage", datetime(2024, 5, 1, 10, 5, tzinfo=TZ), 2.0, 4.0, 0.47),
    ])
    ids = [r["id"] for r in store.query("SELECT id FROM violations ORDER BY start_time, start_s")]
    store.close()
    commands.user_add(ws, "ana", "analyst", PASSWORD)
    commands.user_add(ws, "asa", "assessor", PASSWORD)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(ws, config_mod.load()), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", ws.db_path, ids
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_keyboard_review_of_three_violations(served):
    base, db_path, (first, second, third) = served
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 860}, locale="zh-CN")
            page.set_default_timeout(15_000)
            page.goto(f"{base}/v/{first}")
            assert "/login" in page.url  # the review page is behind the login
            page.fill("input[name=name]", "ana")
            page.fill("input[name=password]", PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/v/{first}")
            review_by_keyboard(page, base, first, second, third)
        finally:
            browser.close()

    store = Store(db_path)
    try:
        decisions = store.query("SELECT violation_id, user, action, reason, category FROM decisions ORDER BY id")
        assert [tuple(d.values()) for d in decisions] == [
            (first, "ana", "confirm", None, None),
            (second, "ana", "reject", "duplicate", None),
            (third, "ana", "relabel", None, "stall"),
        ]
        rows = {r["id"]: (r["status"], r["category"]) for r in store.query("SELECT id, status, category FROM violations")}
        assert rows == {first: ("confirmed", "garbage"), second: ("rejected", "parking"), third: ("pending", "stall")}
    finally:
        store.close()


def test_assessor_downloads_counts_from_the_exports_page(served, tmp_path):
    base = served[0]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(locale="zh-CN", accept_downloads=True)
            page.set_default_timeout(15_000)
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{base}/login")
            page.fill("input[name=name]", "asa")
            page.fill("input[name=password]", PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url(f"{base}/")
            page.click("header >> text=导出")
            page.wait_for_url(f"{base}/exports")
            page.fill("input[name=period]", "2024-13")  # a bad period comes back as one line on the form
            page.click("text=下载统计表")
            assert "统计周期须为" in page.inner_text(".error")
            page.fill("input[name=period]", "2024-05")
            page.select_option("select[name=status]", "all")
            with page.expect_download() as info:
                page.click("text=下载统计表")
            download = info.value
            assert download.suggested_filename == "counts_2024-05_all.xlsx"
            download.save_as(tmp_path / "counts.xlsx")
            assert blocked == []
        finally:
            browser.close()
    grid = list(load_workbook(tmp_path / "counts.xlsx")["汇总"].iter_rows(values_only=True))
    assert grid[0][0] == "区域" and ("城关镇", 2, 1, 0, 3) in grid  # two garbage, one parking


def review_by_keyboard(page, base: str, first: int, second: int, third: int) -> None:
    kb = page.keyboard
    # the clip really plays: enough data for playback, served with Range by /media
    page.wait_for_function("document.getElementById('clip').readyState >= 3")
    kb.press("?")
    assert page.is_visible("#shortcuts")
    kb.press("?")
    assert page.is_hidden("#shortcuts")
    # keys typed into a form field are text, not commands
    page.focus("textarea[name=note]")
    kb.type("cx3")
    assert page.input_value("textarea[name=note]") == "cx3" and page.url == f"{base}/v/{first}"
    page.fill("textarea[name=note]", "")
    page.evaluate("document.activeElement.blur()")
    # space plays and pauses; the arrows seek two seconds
    kb.press(" ")
    page.wait_for_function("!document.getElementById('clip').paused")
    kb.press(" ")
    page.wait_for_function("document.getElementById('clip').paused")
    before = page.evaluate("document.getElementById('clip').currentTime")
    kb.press("ArrowRight")
    after = page.evaluate("document.getElementById('clip').currentTime")
    assert after == pytest.approx(before + 2, abs=0.05)

    kb.press("c")  # confirm: the next pending one opens
    page.wait_for_url(f"{base}/v/{second}?m=confirm")
    assert "已确认" in page.inner_text(".flash")
    kb.press("x")
    assert page.is_visible("#reject-picker")
    kb.press("2")  # 重复 (duplicate)
    page.wait_for_url(f"{base}/v/{third}?m=reject")
    kb.press("3")  # relabel to 占道经营; the item stays open for its verdict
    page.wait_for_url(f"{base}/v/{third}?m=relabel")
    assert "占道经营" in page.inner_text("h1") and "改类" in page.inner_text("#history")
    kb.press("j")  # queue order is pending first: the confirmed one comes next
    page.wait_for_url(f"{base}/v/{first}?")
