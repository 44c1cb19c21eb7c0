"""Teaching the model from the browser (issue 19), in a real headless Chromium: an analyst corrects a
violation's box on its keyframe (b, drag, Enter) and adds a violation the model missed on the paused clip
(n, drag, 3), from the keyboard and mouse alone. The added violation is then listed by `vaudit violations
--json`, counted by `vaudit export counts` and accepted by `vaudit verify`, each run as a real process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn

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


def vaudit(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "-w", str(ws), *args], capture_output=True,
                          text=True, check=False)


def drag(page, layer: str, a: tuple[float, float], b: tuple[float, float]) -> None:
    """Press at fraction ``a`` of the drawing layer, move in steps, release at ``b``."""
    box = page.locator(layer).bounding_box()
    page.mouse.move(box["x"] + a[0] * box["width"], box["y"] + a[1] * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + b[0] * box["width"], box["y"] + b[1] * box["height"], steps=6)
    page.mouse.up()


def test_analyst_corrects_a_box_and_adds_a_missed_violation(tmp_path):
    ws, store = build_workspace(tmp_path, [
        Known("城关镇", "garbage", datetime(2024, 5, 1, 9, 30, tzinfo=TZ), 2.0, 5.0, 0.62)])
    vid = store.query("SELECT id FROM violations")[0]["id"]
    store.close()
    commands.user_add(ws, "ana", "analyst", PASSWORD)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(ws, config_mod.load()), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            try:
                page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="zh-CN")
                page.set_default_timeout(20_000)
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
                page.goto(f"{base}/login?next=/v/{vid}")
                page.fill("input[name=name]", "ana")
                page.fill("input[name=password]", PASSWORD)
                page.keyboard.press("Enter")
                page.wait_for_url(f"{base}/v/{vid}")
                page.wait_for_function("document.getElementById('keyframe').complete"
                                       " && document.getElementById('clip').readyState >= 2")
                # b: correct the box on the keyframe; the digits are not relabels while drawing
                page.keyboard.press("b")
                page.wait_for_selector("#draw-layer")
                drag(page, "#draw-layer", (0.25, 0.2), (0.75, 0.9))
                page.keyboard.press("2")
                assert page.url == f"{base}/v/{vid}"
                page.keyboard.press("Enter")
                page.wait_for_url(f"{base}/v/{vid}?m=correct_box")
                assert "修正框" in page.inner_text("#history")
                # n: the clip pauses 2 s in; a stall the model missed is boxed and filed with 3
                page.wait_for_function("document.getElementById('clip').readyState >= 2")
                page.keyboard.press("ArrowRight")
                page.wait_for_function("() => !document.getElementById('clip').seeking")
                page.keyboard.press("n")
                page.wait_for_selector("#draw-layer")
                assert page.evaluate("document.getElementById('clip').paused")
                drag(page, "#draw-layer", (0.5, 0.5), (0.1, 0.05))  # dragged up-left: the same box
                page.keyboard.press("3")
                page.wait_for_url("**/v/*?m=add")
                new = int(page.url.split("/v/")[1].split("?")[0])
                assert new != vid and "人工补录（ana）" in page.inner_text("#origin")
                assert "占道经营" in page.inner_text("h1") and "已确认" in page.inner_text("#status")
                assert errors == []
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()

    store = Store(ws.db_path)
    try:
        fixed = store.query("SELECT x1, y1, x2, y2 FROM violations WHERE id = ?", [vid])[0]
        assert fixed == pytest.approx({"x1": 80, "y1": 48, "x2": 240, "y2": 216}, abs=3)  # 320x240 source
        added = store.query("SELECT * FROM violations WHERE id = ?", [new])[0]
        assert (added["origin"], added["added_by"], added["status"], added["category"]) == (
            "analyst", "ana", "confirmed", "stall")
        assert added["best_t_s"] == pytest.approx(2.0, abs=0.1)
        assert (added["x1"], added["y1"], added["x2"], added["y2"]) == pytest.approx((32, 12, 160, 120), abs=3)
    finally:
        store.close()
    listed = json.loads(vaudit(ws.root, "violations", "--json").stdout)
    assert {(x["id"], x["origin"], x["status"]) for x in listed} == {(vid, "model", "pending"),
                                                                      (new, "analyst", "confirmed")}
    counts = json.loads(vaudit(ws.root, "export", "counts", "--period", "2024-05", "--format", "json").stdout)
    assert "占道经营" in json.dumps(counts, ensure_ascii=False) and '"total": 1' in json.dumps(counts)
    checked = vaudit(ws.root, "verify")
    assert checked.returncode == 0 and "intact: 4 artifacts" in checked.stdout, checked.stdout
