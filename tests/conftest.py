"""Shared fixtures: real files made with ffmpeg, real workspaces, the shipped model and samples."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline import config as config_mod
from pipeline.workspace import Workspace, write_config

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SAMPLES = ROOT / "samples"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_video(path: Path, seconds: float = 3, size: str = "320x240", rate: int = 25, extra: tuple = (),
               codec: tuple = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}", *codec, *extra, str(path))
    return path


@pytest.fixture
def cfg():
    return config_mod.load()


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws").create()


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    files = sorted(SAMPLES.rglob("*.mp4"))
    assert files, f"no sample footage under {SAMPLES}: the shipped samples are missing"
    return files


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The default config's main model: a missing model fails the tests that need it, never skips them."""
    path = config_mod.load().model.resolved_path()
    assert path.exists(), f"the default model {path} is missing"
    return path


def listing_key(rows: list[dict]) -> list[tuple]:
    """What must not change between runs of the same footage: each violation, down to its clip's hash."""
    return sorted((Path(r["source_path"]).name, r["category"], r["start_s"], r["end_s"], r["clip_sha256"])
                  for r in rows)


@pytest.fixture(scope="session")
def reference_listing(tmp_path_factory, model_path) -> list[tuple]:
    """The shipped samples through one uninterrupted `vaudit run` (SQLite): what every other way of
    processing them (killed and resumed, concurrent, several machines) must equal."""
    import json
    import sys

    ws = tmp_path_factory.mktemp("ref") / "ws"
    cli = [sys.executable, "-m", "pipeline.cli", "--workspace", str(ws)]
    subprocess.run([*cli, "ingest", str(SAMPLES)], cwd=ROOT, check=True, capture_output=True, timeout=600)
    subprocess.run([*cli, "run"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    out = subprocess.run([*cli, "violations", "--json"], cwd=ROOT, check=True, capture_output=True, text=True,
                         timeout=600).stdout
    return listing_key(json.loads(out))


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# -- the evidence database on both engines ---------------------------------------------------------------
# PostgreSQL is a real server from Debian's packages, started once per session in a temporary folder (as
# the `postgres` user when the tests run as root), one fresh database per test, removed at the end.

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_server():
    from pipeline import pgtemp

    server = pgtemp.start()
    yield server
    server.stop()


def new_pg_database(server, request) -> str:
    import re
    import uuid

    name = re.sub(r"\W", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:8]
    url = server.create_database(name)
    request.addfinalizer(lambda: server.drop_database(name))
    return url


@pytest.fixture
def pg_url(pg_server, request) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    return new_pg_database(pg_server, request)


def copy_workspace(template: Workspace, dest: Path, request) -> Workspace:
    """A copy of a built workspace for one test: its folder, and its PostgreSQL database if it has one
    (``CREATE DATABASE ... TEMPLATE``: a file copy on the server, as cheap as copying the SQLite file)."""
    import uuid

    root = shutil.copytree(template.root, dest)
    if template.database is None:
        return Workspace(root)
    server = request.getfixturevalue("pg_server")
    name = f"copy_{uuid.uuid4().hex}"
    request.addfinalizer(lambda: server.drop_database(name))
    url = server.create_database(name, template=template.database.rsplit("/", 1)[1])
    write_config(root, url, None)  # the copied workspace.yaml named the template's database
    return Workspace(root, database=url)


def database_for(engine: str, request) -> str | None:
    """None for SQLite (the workspace's own evidence.db), else a fresh PostgreSQL database's URL."""
    if engine == "sqlite":
        return None
    return new_pg_database(request.getfixturevalue("pg_server"), request)
