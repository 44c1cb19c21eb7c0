"""Orchestration: lease a source, sample → detect → track → judge → evidence, commit it in one piece.

Decoding runs in its own thread behind a bounded queue, so the decoder and the detector keep both
cores busy while memory stays flat. A source is leased (with expiry) before it is processed, so
several ``vaudit run`` processes share a workspace and a crashed worker's source is picked up again.
Everything one source produces becomes visible in a single transaction; files are staged and renamed
into place inside it, and a sweep at start removes what a killed run left behind.
"""

from __future__ import annotations

import hashlib
import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import __version__, anchor, evidence
from .config import Config
from .detect import Detector, YoloDetector
from .events import EventBuilder
from .records import Detection, Frame, Violation
from .sample import DecodeError, Sampler
from .store import Job, LeaseLost, Store, worker_id
from .track import MotionEstimator
from .workspace import Workspace

_QUEUE_FRAMES = 16
_RENEW_EVERY_S = 60.0
_CLIP_WORKERS = 2


@dataclass
class RunSummary:
    run_id: int
    run_key: str
    processed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    violations: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, summed over sources
    counts: dict[str, int] = field(default_factory=dict)  # frames sampled, frames decoded
    kept: int = 0  # reviewed sources left with their earlier results (not re-processed by this run key)


def run_key(model_sha256: str, config_sha256: str) -> str:
    """Same model + config + version = same run: re-running it only completes what is missing."""
    return hashlib.sha256(f"{model_sha256}:{config_sha256}:{__version__}".encode()).hexdigest()[:16]


def sweep(ws: Workspace, store: Store, owner: str) -> int:
    """Remove files a killed run left: staging folders of dead workers, and, when no other worker is
    active, clips and keyframes that no committed row references."""
    others = {r["lease_owner"] for r in store.active_leases(exclude_owner=owner)}
    removed = 0
    if ws.tmp.exists():
        for d in ws.tmp.iterdir():
            if not any(d.name.startswith(_safe_owner(o) + "-") for o in others):
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
                removed += 1
    if not others:
        referenced = store.referenced_paths()
        for base in (ws.clips, ws.frames):
            if not base.exists():
                continue
            for p in base.rglob("*"):
                if p.is_file() and ws.rel(p) not in referenced:
                    p.unlink()
                    removed += 1
    return removed


def _safe_owner(owner: str) -> str:
    return owner.replace(":", "_").replace("/", "_")


def run(
    ws: Workspace,
    cfg: Config,
    model_path: Path | None = None,
    detector: Detector | None = None,
    progress: Callable[[str, dict], None] | None = None,
    max_sources: int | None = None,
    reprocess_reviewed: bool = False,
) -> RunSummary:
    """Process every source this model + config has not processed yet. Safe to run concurrently. Sources
    whose current results an analyst has reviewed keep them unless ``reprocess_reviewed``."""
    ws.create()
    store = Store(ws.db_path)
    try:
        det = detector or YoloDetector(cfg, model_path)
        key = run_key(det.sha256, cfg.sha256())
        run_id = store.start_run(key, " + ".join(map(str, det.paths)), det.sha256, cfg.snapshot(), cfg.sha256(), __version__)
        owner = worker_id()
        sweep(ws, store, owner)
        summary = RunSummary(run_id, key)
        t0 = time.perf_counter()
        while max_sources is None or summary.processed < max_sources:
            job = store.claim_job(run_id, key, owner, reprocess_reviewed=reprocess_reviewed)
            if job is None:
                break
            if progress:
                progress("source", {"path": job.source.path, "duration_s": job.source.probe.duration_s})
            try:
                n, timings, counts = process_source(ws, store, cfg, det, job, progress)
            except DecodeError as e:
                store.mark_rejected(job.source.id, f"undecodable: {e}")
                summary.rejected.append((job.source.path, str(e)))
                continue
            except (evidence.EvidenceError, OSError) as e:
                store.fail_job(job, f"{type(e).__name__}: {e}")
                summary.failed.append((job.source.path, str(e)))
                continue
            except LeaseLost as e:
                summary.failed.append((job.source.path, str(e)))
                continue
            summary.processed += 1
            summary.violations += n
            for k, v in timings.items():
                summary.timings[k] = summary.timings.get(k, 0.0) + v
            for k, v in counts.items():
                summary.counts[k] = summary.counts.get(k, 0) + v
        summary.timings["total"] = time.perf_counter() - t0
        summary.kept = store.status_counts(key)["kept"]
        store.finish_run(run_id, {"processed": summary.processed, "failed": len(summary.failed),
                                  "rejected": len(summary.rejected), "violations": summary.violations,
                                  "kept_reviewed": summary.kept,
                                  "timings": {k: round(v, 3) for k, v in summary.timings.items()},
                                  "counts": summary.counts})
        anchor.witness_quietly(ws, store, "run")  # the signed head, outside the database
        return summary
    finally:
        store.close()


def _decode_thread(sampler: Sampler, motion: MotionEstimator, full: tuple[int, int], q: queue.Queue,
                   stop: threading.Event, timing: dict) -> None:
    t = time.perf_counter()
    try:
        for frame in sampler:
            t1 = time.perf_counter()
            timing["decode"] += t1 - t
            # camera motion needs only consecutive frames: estimated here, it overlaps with detection
            item = (frame, motion.update(frame, full))
            timing["motion"] += time.perf_counter() - t1
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.5)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
            t = time.perf_counter()
        timing["decode"] += time.perf_counter() - t
        q.put(None)
    except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
        q.put(e)


def process_source(ws: Workspace, store: Store, cfg: Config, det: Detector, job: Job,
                   progress: Callable[[str, dict], None] | None = None
                   ) -> tuple[int, dict[str, float], dict[str, int]]:
    src = job.source
    full = (src.probe.width, src.probe.height)
    timings = {"decode": 0.0, "motion": 0.0, "detect": 0.0, "track": 0.0, "events": 0.0, "clips": 0.0, "db": 0.0}
    media = str(ws.abs(src.original_copy)) if src.original_copy else src.path
    sampler = Sampler(media, cfg.sampling.rate, src.probe.rotation, cfg.sampling.max_side,
                      cfg.sampling.scene_keyframes)
    q: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
    stop = threading.Event()
    th = threading.Thread(target=_decode_thread, args=(sampler, MotionEstimator(), full, q, stop, timings),
                          daemon=True)
    th.start()
    events = EventBuilder(cfg)
    frames: list[Frame] = []  # images dropped once used: only t_s/index are kept
    dets: list[Detection] = []
    det_track: dict[int, int] = {}
    # track id -> (confidence, frame index, JPEG file): best views wait on disk, not in memory, so a
    # long video's thousands of tracks do not grow the process
    best: dict[int, tuple[float, int, Path]] = {}
    stage = ws.tmp / f"{_safe_owner(job.owner)}-{src.id}"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "best").mkdir(parents=True)
    last_renew = time.monotonic()

    def consume(batch: list[tuple[Frame, np.ndarray]]) -> None:
        t = time.perf_counter()
        found = det.detect([f for f, _ in batch], full)
        timings["detect"] += time.perf_counter() - t
        t = time.perf_counter()
        by_frame: dict[int, list[Detection]] = {}
        for d in found:
            by_frame.setdefault(d.frame_index, []).append(d)
        for f, to_ref in batch:
            fd, assigned = events.add(f.t_s, by_frame.get(f.index, []), to_ref)
            base = len(dets)
            dets.extend(fd)
            for k, tid in assigned.items():
                det_track[base + k] = tid
                conf = fd[k].confidence
                if tid not in best or conf > best[tid][0]:
                    path = stage / "best" / f"{tid}.jpg"
                    cv2.imwrite(str(path), f.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
                    best[tid] = (conf, f.index, path)
            frames.append(Frame(f.t_s, f.index, f.keyframe, np.empty(0, np.uint8)))
        timings["track"] += time.perf_counter() - t

    try:
        batch: list[tuple[Frame, np.ndarray]] = []
        while True:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                break
            batch.append(item)
            if len(batch) >= getattr(det, "batch", 4):
                consume(batch)
                if progress:
                    progress("frames", {"n": len(batch), "t_s": batch[-1][0].t_s})
                batch = []
            if time.monotonic() - last_renew > _RENEW_EVERY_S:
                store.renew_lease(job)
                last_renew = time.monotonic()
        if batch:
            consume(batch)
            if progress:
                progress("frames", {"n": len(batch), "t_s": batch[-1][0].t_s})
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        stop.set()
        th.join(timeout=10)

    t = time.perf_counter()
    _, violations, track_violation = events.finish()
    timings["events"] = time.perf_counter() - t

    t = time.perf_counter()
    duration = max(src.probe.duration_s, sampler.stats.last_t_s)
    keyframes = sampler.stats.keyframe_times or [0.0]
    frame_time = {f.index: f.t_s for f in frames}
    on_frame: dict[int, list[int]] = {}
    for k, d in enumerate(dets):
        on_frame.setdefault(d.frame_index, []).append(k)

    def make_evidence(i: int, v: Violation) -> evidence.Staged:
        start, end = evidence.clip_range(v, cfg, keyframes, duration)
        files = evidence.cut_clip(src, media, start, end, stage / f"v{i}")
        tid = max(v.track_ids, key=lambda k: best.get(k, (0.0,))[0])
        _, fidx, jpg = best[tid]
        image = cv2.imread(str(jpg), cv2.IMREAD_COLOR)
        boxes = [(dets[k].box, dets[k].category, dets[k].confidence) for k in on_frame.get(fidx, [])
                 if track_violation.get(det_track.get(k, -1)) == i]
        kf_t = frame_time[fidx]
        kf_path = stage / f"v{i}.jpg"
        evidence.annotate_keyframe(image, boxes, full, cfg, src.wall_clock(kf_t), kf_t, src.district, kf_path)
        files.append(evidence.StagedFile("keyframe", kf_path, kf_t, kf_t, None))
        return evidence.Staged(files)

    staged: list[evidence.Staged] = []
    try:
        # ffmpeg cuts run as subprocesses: two at a time keep both cores busy at the end of a source
        with ThreadPoolExecutor(max_workers=_CLIP_WORKERS) as pool:
            futures = [pool.submit(make_evidence, i, v) for i, v in enumerate(violations)]
            try:
                for i, fut in enumerate(futures):
                    staged.append(fut.result())
                    if progress:
                        progress("clip", {"i": i + 1, "n": len(violations)})
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        timings["clips"] = time.perf_counter() - t

        t = time.perf_counter()
        det_violation = {k: track_violation[tid] for k, tid in det_track.items() if tid in track_violation}
        store.commit_source(
            job, frames, dets, violations, det_violation,
            lambda i, vid, v: evidence.place(ws, staged[i], evidence.final_stem(ws, src, v, vid, cfg)),
            timings, src.sha256,
        )
        timings["db"] = time.perf_counter() - t
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return len(violations), timings, {"frames": len(frames), "decoded": sampler.stats.decoded,
                                      "decode_errors": sampler.stats.decode_errors}
