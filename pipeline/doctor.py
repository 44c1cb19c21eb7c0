"""`vaudit doctor`: check the environment and say what to fix, before a batch fails halfway."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .workspace import Workspace

MIN_FREE_GB = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _ffmpeg() -> Check:
    exe = shutil.which("ffmpeg")
    if not exe or not shutil.which("ffprobe"):
        return Check("ffmpeg", False, "ffmpeg/ffprobe not on PATH", "sudo apt-get install -y ffmpeg")
    first = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False).stdout.splitlines()[0]
    return Check("ffmpeg", True, first)


def _font() -> Check:
    from .fonts import cjk_font_path

    p = cjk_font_path()
    return Check("CJK font", bool(p), p or "no CJK font: Chinese labels on keyframes would not render",
                 "" if p else "sudo apt-get install -y fonts-noto-cjk")


def _model(cfg: Config, model: Path | None) -> Check:
    from .detect import ModelError, YoloDetector

    try:
        det = YoloDetector(cfg, model)
    except ModelError as e:
        return Check("model", False, str(e), "pass --model FILE or set model.path in the config")
    return Check("model", True, f"{' + '.join(map(str, det.paths))} ({det.backend} {det.precision}, sha256 {det.sha256[:12]}…, classes "
                                f"{', '.join(det.names.values())})")


def _workspace(ws: Workspace) -> list[Check]:
    checks = []
    try:
        ws.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=ws.root):
            pass
        checks.append(Check("workspace", True, f"{ws.root} is writable"))
    except OSError as e:
        return [Check("workspace", False, f"{ws.root}: {e.strerror}", "choose another --workspace or fix permissions")]
    try:
        free = shutil.disk_usage(ws.evidence).free / 1e9
    except OSError as e:
        return [*checks, Check("free disk", False, f"evidence folder {ws.evidence}: {e.strerror}",
                               "mount the shared evidence folder, or fix --evidence / workspace.yaml")]
    checks.append(Check("free disk", free >= MIN_FREE_GB, f"{free:.1f} GB free under {ws.evidence}",
                        "" if free >= MIN_FREE_GB else f"free at least {MIN_FREE_GB} GB: clips need room"))
    if isinstance(ws.db, str):
        checks.append(_server(ws.db))
    elif ws.db_path.exists():
        try:
            with sqlite3.connect(f"file:{ws.db_path}?mode=ro", uri=True) as c:
                res = c.execute("PRAGMA integrity_check").fetchone()[0]
            checks.append(Check("database", res == "ok", f"{ws.db_path}: integrity_check {res}",
                                "" if res == "ok" else "restore the latest `vaudit backup`"))
        except sqlite3.DatabaseError as e:
            checks.append(Check("database", False, f"{ws.db_path}: {e}", "restore the latest `vaudit backup`"))
    else:
        checks.append(Check("database", True, "no evidence.db yet (made by the first ingest)"))
    return checks


def _server(url: str) -> Check:
    """A PostgreSQL evidence database: reachable, its schema version, the server's checksum failures."""
    from . import db
    from .store import SCHEMA_VERSION, Store, StoreError

    try:
        store = Store(url, migrate=False)
    except StoreError as e:
        return Check("database", False, str(e), "check the URL, that the server runs and that this machine may "
                                                "connect (pg_hba.conf)")
    try:
        version, res = store.schema_version(), db.integrity(store.conn)
    finally:
        store.close()
    fix = "" if version == SCHEMA_VERSION else f"run `vaudit db migrate` (schema {version}, this vaudit {SCHEMA_VERSION})"
    if version > SCHEMA_VERSION:
        fix = "upgrade vaudit on this machine: the database is newer"
    return Check("database", res == "ok" and not fix, f"{db.safe_url(url)}: schema version {version}, {res}", fix)


def _browser() -> Check:
    exe = shutil.which("chromium")
    return Check("chromium (tests, optional)", True, exe or "not installed: only the browser tests need it")


def doctor(ws: Workspace, cfg: Config, model: Path | None = None) -> list[Check]:
    return [_ffmpeg(), _font(), _model(cfg, model), *_workspace(ws), _browser()]
