import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import ffmpeg, make_video

from pipeline.ingest import IngestError, ingest, probe, read_manifest, sha256_file, time_from_name
from pipeline.store import Store

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("VID_20261103_142233.mp4", datetime(2026, 11, 3, 14, 22, 33, tzinfo=TZ)),
        ("20261103_142233.MOV", datetime(2026, 11, 3, 14, 22, 33, tzinfo=TZ)),
        ("2026-11-03 14-22-33.mp4", datetime(2026, 11, 3, 14, 22, 33, tzinfo=TZ)),
        ("DSJ_20261103142233_0001.mp4", datetime(2026, 11, 3, 14, 22, 33, tzinfo=TZ)),
        ("clip.mp4", None),
        ("VID_20261399_142233.mp4", None),
    ],
)
def test_capture_time_from_file_name(name, expected):
    assert time_from_name(name, TZ) == expected


def test_probe_reads_metadata_and_rotation(tmp_path):
    raw = make_video(tmp_path / "raw.mp4", seconds=2, size="320x240")
    p = tmp_path / "a.mp4"
    ffmpeg("-i", str(raw), "-c", "copy", "-metadata", "creation_time=2026-11-03T06:22:33Z",
           "-metadata:s:v:0", "rotate=90", str(p))
    pr = probe(p)
    assert pr.codec == "h264" and pr.fps == 25 and not pr.vfr
    assert pr.rotation in (90, 270)
    assert (pr.width, pr.height) == (240, 320)  # upright
    assert abs(pr.duration_s - 2) < 0.1
    assert pr.creation_time == datetime(2026, 11, 3, 6, 22, 33, tzinfo=ZoneInfo("UTC"))


def test_folder_ingest_rejects_bad_files_and_keeps_going(tmp_path, cfg):
    root = tmp_path / "footage"
    good = make_video(root / "城关镇" / "张三 2026" / "VID_20261103_142233.mp4")
    make_video(root / "城关镇" / "other 'quoted' clip.MP4", seconds=2)
    (root / "城关镇" / "empty.mp4").write_bytes(b"")
    (root / "xihu").mkdir(parents=True)
    (root / "xihu" / "random.mp4").write_bytes(os.urandom(50_000))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:duration=1", "-frames:v", "1", str(tmp_path / "x.jpg"))
    (root / "xihu" / "photo.mov").write_bytes((tmp_path / "x.jpg").read_bytes())
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(root / "xihu" / "audio_only.mp4"))
    no_moov = make_video(tmp_path / "full.mp4", seconds=2)
    (root / "xihu" / "cut_off.mp4").write_bytes(no_moov.read_bytes()[: no_moov.stat().st_size // 2])
    (root / "notes.txt").write_text("not footage")
    dup = root / "东城街道" / "same_content.mp4"
    dup.parent.mkdir()
    dup.write_bytes(good.read_bytes())

    store = Store(tmp_path / "ws" / "evidence.db")
    report = ingest(store, cfg, [root], inspector="张三")
    reasons = dict(report.rejected)
    assert len(report.added) == 2
    assert len(report.duplicates) == 1  # same bytes as the VID_ file, under another name
    assert reasons[str((root / "城关镇" / "empty.mp4").absolute())] == "empty file (0 bytes)"
    assert "not a video" in reasons[str((root / "xihu" / "random.mp4").absolute())]
    assert "still image" in reasons[str((root / "xihu" / "photo.mov").absolute())]
    assert "no video stream" in reasons[str((root / "xihu" / "audio_only.mp4").absolute())]
    assert "cut off" in reasons[str((root / "xihu" / "cut_off.mp4").absolute())]
    rows = {Path(r["path"]).name: r for r in store.query("SELECT * FROM sources WHERE status = 'ready'")}
    vid = next(r for r in rows.values() if r["sha256"] == sha256_file(good))
    assert rows["other 'quoted' clip.MP4"]["district"] == "城关镇"  # first folder level under the root
    assert vid["inspector"] == "张三"
    named = make_video(tmp_path / "solo" / "VID_20261103_142233.mp4", seconds=1)
    ingest(store, cfg, [named], district="dongcheng")
    row = store.query("SELECT * FROM sources WHERE sha256 = ?", [sha256_file(named)])[0]
    assert row["capture_start"] == "2026-11-03T14:22:33+08:00" and row["capture_start_origin"] == "filename"
    assert row["district"] == "东城街道"
    assert rows["other 'quoted' clip.MP4"]["capture_start_origin"] == "mtime-guess"
    paths = store.query("SELECT path FROM source_paths WHERE source_id = ?", [vid["id"]])
    assert len(paths) == 2  # the duplicate is one source with two paths

    # ingesting again changes nothing
    again = ingest(store, cfg, [root])
    assert again.added == [] and len(again.duplicates) == 3
    assert store.query("SELECT count(*) n FROM sources")[0]["n"] == 3 + len(reasons)


def test_manifest_and_district_option(tmp_path, cfg):
    v = make_video(tmp_path / "in" / "clip.mp4")
    m = tmp_path / "m.csv"
    m.write_text("file,district,inspector,capture_start\nclip.mp4,xihu,李四,2026-10-01T09:00:00\n", encoding="utf-8")
    store = Store(tmp_path / "ws" / "evidence.db")
    ingest(store, cfg, [v], manifest=m)
    row = store.query("SELECT * FROM sources")[0]
    assert row["district"] == "西湖乡"  # alias from config
    assert row["inspector"] == "李四"
    assert row["capture_start"] == "2026-10-01T09:00:00+08:00" and row["capture_start_origin"] == "manifest"


def test_bad_manifest_names_the_line(tmp_path, cfg):
    m = tmp_path / "m.csv"
    m.write_text("file,capture_start\na.mp4,2026-10-01\nb.mp4,yesterday\n")
    with pytest.raises(IngestError, match="line 3"):
        read_manifest(m, TZ)
    m.write_text("name,district\na.mp4,x\n")
    with pytest.raises(IngestError, match="line 1"):
        read_manifest(m, TZ)


def test_missing_path_is_an_error(tmp_path, cfg):
    store = Store(tmp_path / "evidence.db")
    with pytest.raises(IngestError, match="no such file"):
        ingest(store, cfg, [tmp_path / "nope"])


def test_unreadable_file_is_rejected_as_permission_denied(tmp_path):
    """As root nothing is unreadable, so the ingest runs as `nobody` (setpriv) when the tests run as root."""
    import shutil
    import subprocess
    import sys
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="vaudit-perm-"))  # outside pytest's 0700 tree, so nobody can enter it
    folder = base / "in"
    v = make_video(folder / "locked.mp4", seconds=1)
    make_video(folder / "open.mp4", seconds=2)
    v.chmod(0o000)
    ws = base / "ws"
    ws.mkdir()
    for p in (base, folder, ws):
        p.chmod(0o777)
    (folder / "open.mp4").chmod(0o644)
    cmd = [sys.executable, "-m", "pipeline.cli", "--workspace", str(ws), "ingest", str(folder)]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False,
                       env={**os.environ, "HOME": str(ws), "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 0, r.stderr
    assert "added 1" in r.stdout and "rejected 1" in r.stdout
    assert "locked.mp4: permission denied" in r.stdout
    shutil.rmtree(base)
