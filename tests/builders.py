"""Build real workspaces with known violations, without running the detector.

Sources are real H.264 files made with ffmpeg; clips and keyframes are made by the real evidence code
and committed through the real store, so review and export tests see exactly what a run produces,
with answers known in advance.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from pipeline import config as config_mod
from pipeline import evidence
from pipeline.ingest import ingest
from pipeline.records import Decision, Detection, Frame, Violation
from pipeline.store import Store
from pipeline.workspace import Workspace, write_config


@dataclass
class Known:
    """One violation to plant. ``status`` is applied through a real review decision by ``user``."""

    district: str
    category: str
    capture_start: datetime  # of its source video (tz-aware)
    start_s: float = 2.0
    end_s: float = 5.0
    confidence: float = 0.8
    status: str = "pending"  # pending | confirmed | rejected
    source_key: str | None = None  # violations sharing a key share one source video
    user: str = "analyst1"


def _video(path: Path, seconds: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(1_700_000_000 + seed * 86_400).strftime("%Y%m%d_%H%M%S")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size=320x240:rate=25:duration={seconds}", "-f", "lavfi", "-i",
         f"sine=frequency={200 + seed}:duration={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25",
         "-c:a", "aac", "-shortest", "-metadata", f"comment=seed {seed} {stamp}", str(path)],
        check=True,
    )
    return path


def build_workspace(tmp: Path, items: list[Known], seconds: int = 8,
                    database: str | None = None) -> tuple[Workspace, Store]:
    """A workspace holding exactly ``items`` as violations (one run), with real clips and keyframes;
    its database is ``database`` (a PostgreSQL URL), else the workspace's own SQLite file."""
    cfg = config_mod.load()
    ws = Workspace(tmp / "ws", database=database).create()
    if database:  # so that `vaudit -w WS ...` in a subprocess finds it too
        write_config(ws.root, database, None)
    store = Store(ws.db)
    groups: dict[str, list[Known]] = {}
    for i, k in enumerate(items):
        groups.setdefault(k.source_key or f"src{i}", []).append(k)
    run_id = store.start_run("builder", "builder.pt", "0" * 64, cfg.snapshot(), cfg.sha256(), "test")
    for n, (key, ks) in enumerate(groups.items()):
        video = _video(tmp / "footage" / f"{key}.mp4", seconds, n)
        ingest(store, cfg, [video], district=ks[0].district)
        sid = store.query("SELECT id FROM sources ORDER BY id DESC LIMIT 1")[0]["id"]
        cs = ks[0].capture_start.isoformat()
        with store.tx() as c:  # the capture time a real file would carry in its metadata
            c.execute("UPDATE sources SET capture_start = ?, capture_start_origin = 'metadata' WHERE id = ?", (cs, sid))
        job = store.claim_job(run_id, "builder", "builder:1")
        assert job is not None and job.source.id == sid
        src = job.source
        frames, dets, violations = [], [], []
        for j, k in enumerate(ks):
            f = Frame(k.start_s, j, True, np.empty(0, np.uint8))
            d = Detection(j, k.start_s, k.category, k.category, k.confidence, (40.0, 40.0, 200.0, 180.0), track_id=j)
            frames.append(f)
            dets.append(d)
            violations.append(Violation(k.category, k.start_s, k.end_s, k.confidence, 3, d, (j,)))
        stage = ws.tmp / f"builder-{sid}"
        stage.mkdir(parents=True, exist_ok=True)
        staged = []
        for j, v in enumerate(violations):
            start, end = evidence.clip_range(v, cfg, [float(t) for t in range(seconds)], src.probe.duration_s)
            files = evidence.cut_clip(src, src.path, start, end, stage / f"v{j}")
            img = np.full((240, 320, 3), 90, np.uint8)
            kf = stage / f"v{j}.jpg"
            evidence.annotate_keyframe(img, [(v.best.box, v.category, v.confidence)], (320, 240), cfg,
                                       src.wall_clock(v.start_s), v.start_s, src.district, kf)
            files.append(evidence.StagedFile("keyframe", kf, v.start_s, v.start_s, None))
            staged.append(evidence.Staged(files))
        vids = store.commit_source(
            job, frames, dets, violations,
            lambda j, vid, v, staged=staged, src=src: evidence.place(
                ws, staged[j], evidence.final_stem(ws, src, v, vid, cfg)),
            {}, src.sha256,
        )
        for vid, k in zip(vids, ks, strict=True):
            if k.status == "confirmed":
                store.record_decision(Decision(vid, k.user, "confirm"))
            elif k.status == "rejected":
                store.record_decision(Decision(vid, k.user, "reject", reason="false_detection"))
    store.finish_run(run_id, {"builder": True})
    return ws, store
