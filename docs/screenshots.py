"""Regenerate docs/review.png: the shipped samples, processed by the default model, under review.

    .venv/bin/python docs/screenshots.py

Ingests samples/ into a throwaway workspace, runs the pipeline on it, serves the review app on a free
localhost port and photographs the most confident 暴露垃圾 violation's review page in Debian's Chromium
(Playwright, never a downloaded browser), with its evidence clip paused on the first sighting.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn
from playwright.sync_api import sync_playwright

from pipeline import config as config_mod
from pipeline.ingest import ingest
from pipeline.review import commands
from pipeline.review.app import create_app
from pipeline.run import run
from pipeline.store import Store
from pipeline.workspace import Workspace

CHROMIUM = "/usr/bin/chromium"
OUT = ROOT / "docs" / "review.png"
PASSWORD = "screenshot-only-9"


def main() -> None:
    cfg = config_mod.load()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws").create()
        store = Store(ws.db_path)
        ingest(store, cfg, [ROOT / "samples"])
        store.close()
        run(ws, cfg)
        store = Store(ws.db_path)
        best = max((v for v in store.violations() if v["category"] == "garbage"), key=lambda v: v["confidence"])
        store.close()
        commands.user_add(ws, "ana", "analyst", PASSWORD)

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(create_app(ws, cfg), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1360, "height": 860}, locale="zh-CN")
                page.goto(f"{base}/v/{best['id']}")
                page.fill("input[name=name]", "ana")
                page.fill("input[name=password]", PASSWORD)
                page.keyboard.press("Enter")
                page.wait_for_url(f"{base}/v/{best['id']}")
                # polled from here: the app's CSP forbids the eval that wait_for_function needs
                until(page, "document.getElementById('clip').readyState >= 2")
                page.evaluate(f"document.getElementById('clip').currentTime = {cfg.categories['garbage'].clip_pre_s}")
                until(page, "!document.getElementById('clip').seeking && document.getElementById('clip').readyState >= 2")
                page.wait_for_timeout(800)  # the seeked frame painted, the spinner gone
                page.screenshot(path=str(OUT))
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
    print(f"wrote {OUT.relative_to(ROOT)} (violation {best['id']}, {Path(best['source_path']).name})")


def until(page, expression: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
