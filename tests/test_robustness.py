"""Hostile footage folders, crashes and concurrent runs: every file ends done or rejected with a reason,
and nothing is lost or duplicated. The corpus is made here with ffmpeg, not committed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, database_for, ffmpeg, listing_key, make_video

pytestmark = pytest.mark.slow
VAUDIT = [sys.executable, "-m", "pipeline.cli"]


def vaudit(ws: Path, *args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*VAUDIT, "--workspace", str(ws), *args], capture_output=True, text=True, check=check,
                          cwd=ROOT, **kw)


def h264(extra: tuple = ()) -> tuple:
    return ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", *extra)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, sample_files) -> tuple[Path, dict[str, str]]:
    """name -> expected outcome: 'done' or a phrase the rejection reason must contain."""
    root = tmp_path_factory.mktemp("corpus") / "上传 footage"
    tmp = root.parent / "scratch"
    tmp.mkdir()
    exp: dict[str, str] = {}

    def put(name: str, outcome: str) -> Path:
        exp[name] = outcome
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        return root / name

    put("zero.mp4", "empty file").write_bytes(b"")
    put("random.mp4", "not a video").write_bytes(os.urandom(30_000))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:duration=1", "-frames:v", "1", str(tmp / "x.jpg"))
    shutil.copy(tmp / "x.jpg", put("photo.mov", "still image"))
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", str(put("audio_only.mp4", "no video stream")))
    full = make_video(tmp / "full.mp4", seconds=4, extra=("-movflags", "+faststart"))
    data = full.read_bytes()
    put("truncated_mdat.mp4", "done").write_bytes(data[: int(len(data) * 0.6)])  # moov first, data cut
    plain = make_video(tmp / "plain.mp4", seconds=4)
    put("no_moov.mp4", "cut off").write_bytes(plain.read_bytes()[: plain.stat().st_size // 2])
    raw = make_video(tmp / "portrait_raw.mp4", seconds=3, size="240x320")
    ffmpeg("-i", str(raw), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(put("手机 竖屏.mp4", "done")))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3", "-vf",
           "setpts='if(lt(N,30),N/25/TB,(30/25+(N-30)/10)/TB)'", "-fps_mode", "vfr", *h264(),
           str(put("vfr.mp4", "done")))
    sample = sample_files[0]
    ffmpeg("-t", "8", "-i", str(sample), "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params",
           "log-level=error", str(put("hevc.mp4", "done")))
    ffmpeg("-t", "4", "-i", str(sample), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
           str(put("hevc.mkv", "done")))
    ffmpeg("-t", "8", "-i", str(sample), "-c", "copy", "-f", "mpegts", str(put("bodycam/DSJ 0001.ts", "done")))
    ffmpeg("-t", "4", "-i", str(sample), "-c:v", "mjpeg", "-q:v", "8", "-an", str(put("old cam.avi", "done")))
    make_video(put("4k.mp4", "done"), seconds=1, size="3840x2160")
    ffmpeg("-i", str(plain), "-c", "copy", "-output_ts_offset", "3600", str(put("late_start.mp4", "done")))
    # a bodycam that restarted its clock mid-file: two TS segments with a 1000 s timestamp jump, byte-joined
    seg_a, seg_b = tmp / "a.ts", tmp / "b.ts"
    ffmpeg("-t", "4", "-i", str(sample), "-c", "copy", "-f", "mpegts", str(seg_a))
    ffmpeg("-ss", "4", "-t", "4", "-i", str(sample), "-c", "copy", "-output_ts_offset", "1000", "-f", "mpegts",
           str(seg_b))
    put("clock_jump.ts", "done").write_bytes(seg_a.read_bytes() + seg_b.read_bytes())
    ts = tmp / "mid.ts"
    ffmpeg("-t", "8", "-i", str(sample), "-c", "copy", "-f", "mpegts", str(ts))
    blob = bytearray(ts.read_bytes())
    mid = len(blob) // 2
    blob[mid: mid + 60_000] = os.urandom(60_000)
    put("corrupt_middle.ts", "done").write_bytes(bytes(blob))
    shutil.copy(plain, put("它's \"quoted\" name.mp4", "done"))
    (root / "loop").mkdir()
    (root / "loop" / "again").symlink_to(root, target_is_directory=True)
    (root / "dangling.mp4").symlink_to(root / "nowhere.mp4")
    exp["dangling.mp4"] = "broken link"
    shutil.copy(plain, root / "same_bytes_other_name.mp4")  # duplicate of the quoted one: one source
    return root, exp


def test_hostile_folder_every_file_done_or_rejected(corpus, model_path, tmp_path):
    root, exp = corpus
    ws = tmp_path / "ws"
    r = vaudit(ws, "ingest", str(root), "--district", "西湖乡", timeout=300)
    assert r.returncode == 0, r.stderr
    r = vaudit(ws, "run", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    with sqlite3.connect(ws / "evidence.db") as c:
        c.row_factory = sqlite3.Row
        # every path a file was seen under (a duplicate's too) -> its source's outcome
        rows = {Path(x["path"]).relative_to(root).as_posix(): dict(x) for x in c.execute(
            "SELECT coalesce(p.path, s.path) AS path, s.status, s.reason, j.status AS job FROM sources s"
            " LEFT JOIN source_paths p ON p.source_id = s.id LEFT JOIN jobs j ON j.source_id = s.id")}
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for name, outcome in exp.items():
        row = rows.get(name)
        assert row is not None, f"{name} was not recorded"
        if outcome == "done":
            assert row["status"] == "ready" and row["job"] == "done", (name, row)
        else:
            assert row["status"] == "rejected" and outcome in row["reason"], (name, row)
            assert "\n" not in row["reason"] and "Traceback" not in row["reason"]
    assert rows["same_bytes_other_name.mp4"]["job"] == "done"  # another path of the same source
    n_sources = len({(r["status"], r["reason"]) for r in rows.values()})
    assert n_sources < len(rows)
    # rotated video: clips keep the display matrix, so they play upright like the original
    assert vaudit(ws, "verify").returncode == 0


def test_hevc_and_avi_get_browser_proxies(corpus, model_path, tmp_path):
    root, _ = corpus
    ws = tmp_path / "ws"
    for name in ("hevc.mp4", "old cam.avi"):
        vaudit(ws, "ingest", str(root / name), check=True)
    vaudit(ws, "run", check=True, timeout=600)
    rows = json.loads(vaudit(ws, "violations", "--json", check=True).stdout)
    by_source = {Path(r["source_path"]).name: r for r in rows}
    assert set(by_source) == {"hevc.mp4", "old cam.avi"}, "both files hold sample violations"
    for r in rows:
        assert r["proxy_path"] and r["proxy_path"].endswith("_proxy.mp4")
        codec = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                "stream=codec_name", "-of", "csv=p=0", str(ws / r["proxy_path"])],
                               capture_output=True, text=True, check=False).stdout.strip()
        assert codec == "h264"
    assert by_source["old cam.avi"]["clip_path"].endswith(".mkv")  # MJPEG packets kept as they were
    assert by_source["hevc.mp4"]["clip_path"].endswith(".mp4")


@pytest.mark.parametrize("seed,engine", [(1, "sqlite"), (2, "sqlite"), (3, "sqlite"), (1, "postgresql")])
def test_sigkill_at_random_points_then_resume(seed, engine, model_path, sample_files, tmp_path, reference_listing,
                                              request):
    import random

    ws = tmp_path / "ws"
    if url := database_for(engine, request):
        vaudit(ws, "db", "use", url, check=True)
    vaudit(ws, "ingest", str(ROOT / "samples"), check=True)
    rng = random.Random(seed)
    for _ in range(2):
        p = subprocess.Popen([*VAUDIT, "--workspace", str(ws), "run"], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.5, 12.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
    vaudit(ws, "run", check=True, timeout=600)
    rows = json.loads(vaudit(ws, "violations", "--json", check=True).stdout)
    assert listing_key(rows) == reference_listing
    files = {p.relative_to(ws).as_posix() for d in ("clips", "frames") for p in (ws / d).rglob("*") if p.is_file()}
    assert files == {r["clip_path"] for r in rows} | {r["keyframe_path"] for r in rows}
    assert not any((ws / "tmp").iterdir())
    assert vaudit(ws, "verify").returncode == 0


def test_concurrent_runs_share_the_work(model_path, sample_files, tmp_path, reference_listing):
    ws = tmp_path / "ws"
    vaudit(ws, "ingest", str(ROOT / "samples"), check=True)
    procs = [subprocess.Popen([*VAUDIT, "--workspace", str(ws), "run"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert not any("locked" in o + e for o, e in outs)
    processed = sum(int(o.split(":")[1].split("sources processed")[0]) for o, _ in outs)
    assert processed == len(sample_files)  # every source exactly once across the three workers
    with sqlite3.connect(ws / "evidence.db") as c:
        assert c.execute("SELECT count(*) FROM frames GROUP BY source_id HAVING count(DISTINCT run_id) > 1"
                         ).fetchall() == []
    rows = json.loads(vaudit(ws, "violations", "--json", check=True).stdout)
    assert listing_key(rows) == reference_listing


def test_disk_full_while_writing_a_clip_fails_that_source_only(model_path, sample_files, tmp_path):
    """A file-size limit on the run (RLIMIT_FSIZE) makes ffmpeg fail mid-clip like a full disk would."""
    import resource

    ws = tmp_path / "ws"
    big = tmp_path / "in" / "big.mp4"
    big.parent.mkdir()
    ffmpeg("-i", str(sample_files[0]), "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-an", str(big))
    small = make_video(tmp_path / "in" / "small.mp4", seconds=2)  # its clips (if any) stay far under the limit
    vaudit(ws, "ingest", str(big), str(small), check=True)
    vaudit(ws, "status", check=True)  # creates the database before the limit applies
    limit = 3_000_000  # larger than the database and a normal clip, smaller than a clip of big.mp4

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    assert big.stat().st_size > 3 * limit
    r = subprocess.run([*VAUDIT, "--workspace", str(ws), "run"], cwd=ROOT, capture_output=True, text=True,
                       preexec_fn=cap, timeout=600, check=False)
    assert r.returncode == 1 and "big.mp4" in r.stdout and "ffmpeg" in r.stdout, r.stdout + r.stderr
    assert "1 sources processed" in r.stdout
    rows = json.loads(vaudit(ws, "violations", "--json", check=True).stdout)
    assert rows == []  # nothing of the failed source is visible
    assert "failed 1" in vaudit(ws, "status", check=True).stdout
    assert not any((ws / "tmp").iterdir())
    assert vaudit(ws, "verify").returncode == 0


def test_doctor_reports_and_fails_on_a_missing_model(tmp_path, model_path):
    ok = vaudit(tmp_path / "ws", "doctor")
    assert ok.returncode == 0, ok.stdout
    for name in ("ffmpeg", "CJK font", "model", "workspace", "free disk", "database"):
        assert name in ok.stdout
    bad = vaudit(tmp_path / "ws", "doctor", "--model", str(tmp_path / "nope.pt"))
    assert bad.returncode == 1
    assert "FAIL model: model file not found" in bad.stdout and "fix:" in bad.stdout
