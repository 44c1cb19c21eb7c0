"""Evidence clips must play in the browser the analysts use (Debian Chromium, headless)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_clip_reaches_canplay_in_chromium(tmp_path, sample_files, model_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    ws = tmp_path / "ws"
    run = [sys.executable, "-m", "pipeline.cli", "--workspace", str(ws)]
    subprocess.run([*run, "ingest", str(sample_files[0])], check=True, cwd=ROOT, capture_output=True)
    subprocess.run([*run, "run"], check=True, cwd=ROOT, capture_output=True)
    rows = json.loads(subprocess.run([*run, "violations", "--json"], check=True, cwd=ROOT, capture_output=True,
                                     text=True).stdout)
    assert rows, "the sample has violations"
    clip = ws / rows[0]["clip_path"]
    page_file = tmp_path / "p.html"
    page_file.write_text(f'<video id="v" src="{clip.as_uri()}" muted preload="auto"></video>', encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        page.goto(page_file.as_uri())
        state = page.evaluate("""() => new Promise(resolve => {
            const v = document.getElementById('v');
            if (v.readyState >= 3) return resolve({ok: true, duration: v.duration});
            v.addEventListener('canplay', () => resolve({ok: true, duration: v.duration}));
            v.addEventListener('error', () => resolve({ok: false, error: v.error && v.error.code}));
            setTimeout(() => resolve({ok: false, error: 'timeout'}), 15000);
        })""")
        browser.close()
    assert state["ok"], state
    assert state["duration"] > 1
