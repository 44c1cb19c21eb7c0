"""Orchestration: lease a source, sample → detect → track → judge → evidence, commit it in one piece.

Decoding runs in its own thread behind a bounded queue, so the decoder and the detector keep both
cores busy while memory stays flat. A source is leased (with expiry) before it is processed and a
heartbeat thread renews the lease, so several ``vaudit run`` processes share a workspace, or, on
PostgreSQL, machines share one database, and a dead worker's source is picked up again.
Everything one source produces becomes visible in a single transaction; files are staged and renamed
into place inside it, and a sweep at start removes what a killed run left behind.
"""

from __future__ import annotations

import hashlib
import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import __version__, anchor, db, evidence
from .config import Config
from .detect import Detector, YoloDetector
from .events import EventBuilder
from .geometry import union_box
from .records import Detection, Frame, Source, Violation
from .sample import DecodeError, Sampler
from .store import LEASE_S, Job, LeaseLost, Store, worker_id
from .track import MotionEstimator
from .workspace import Workspace

_QUEUE_FRAMES = 16
_BEATS_PER_LEASE = 6
_WAIT_POLL_S = 1.0
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


def sweep(ws: Workspace, store: Store, owner: str, placed: bool = True) -> int:
    """Remove files a killed run left: staging folders of dead workers, and (``placed``), when no other
    worker is active, clips and keyframes that no committed row references."""
    staged = list(ws.tmp.iterdir()) if ws.tmp.exists() else []
    # leases are read after the listing: a worker makes its staging folder after taking its lease, so the
    # owner of any folder listed above that is still at work is among ``others``
    others = {r["lease_owner"] for r in store.active_leases(exclude_owner=owner)}
    removed = 0
    for d in staged:
        if not any(d.name.startswith(_safe_owner(o) + "-") for o in others):
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
            removed += 1
    if placed and not others:
        with store.tx():  # the write (chain) lock: no worker can be placing a committed file meanwhile
            referenced = store.referenced_paths()
            for base in (ws.clips, ws.frames):
                if not base.exists():
                    continue
                for p in base.rglob("*"):
                    if p.is_file() and ws.rel(p) not in referenced:
                        p.unlink()
                        removed += 1
    return removed


class Heartbeat:
    """Every ``lease_s / 6`` seconds, from its own thread and database connection: marks the run alive and
    renews the lease on the source being processed, so neither a long decode nor a slow clip cut lets it
    lapse. A worker that dies stops beating; once its lease runs out another worker (on any machine)
    takes its source, and ``vaudit status`` shows it gone."""

    def __init__(self, target: str | Path, run_id: int, lease_s: float):
        self.run_id = run_id
        self.lease_s = lease_s
        self._job: Job | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._store = Store(target, migrate=False)
        self._store.beat(run_id, lease_s)
        self._thread = threading.Thread(target=self._beat, name="vaudit-heartbeat", daemon=True)
        self._thread.start()

    @contextmanager
    def holding(self, job: Job) -> Iterator[None]:
        with self._lock:
            self._job = job
        try:
            yield
        finally:
            with self._lock:
                self._job = None

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / _BEATS_PER_LEASE):
            with self._lock:
                job = self._job
            try:
                self._store.beat(self.run_id, self.lease_s)
                if job is not None:
                    # False once the job is committed (or taken over): commit_source decides which, not us
                    self._store.renew_lease(job, self.lease_s)
            except db.DatabaseError as e:  # the next beat tries again; the lease has five beats to spare
                print(f"warning: lease not renewed: {e}", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._store.close()


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
    lease_s: float = LEASE_S,
    worker: str | None = None,
    wait: bool = False,
) -> RunSummary:
    """Process every source this model + config has not processed yet. Safe to run concurrently, from
    one machine or (on PostgreSQL) many: ``worker`` names this one in leases (default: the host name).
    ``wait``: with nothing left to take, stay while other workers hold sources, to take over any whose
    worker dies (its lease runs out); return when none is held. Sources whose current results an analyst
    has reviewed keep them unless ``reprocess_reviewed``."""
    ws.create()
    store = Store(ws.db)
    heartbeat: Heartbeat | None = None
    try:
        det = detector or YoloDetector(cfg, model_path)
        key = run_key(det.sha256, cfg.sha256())
        run_id = store.start_run(key, " + ".join(map(str, det.paths)), det.sha256, cfg.snapshot(), cfg.sha256(), __version__)
        owner = worker_id(worker)
        sweep(ws, store, owner)
        heartbeat = Heartbeat(ws.db, run_id, lease_s)
        summary = RunSummary(run_id, key)
        t0 = time.perf_counter()
        while max_sources is None or summary.processed < max_sources:
            job = store.claim_job(run_id, key, owner, lease_s, reprocess_reviewed=reprocess_reviewed)
            if job is None:
                if wait and store.active_leases(exclude_owner=owner):
                    time.sleep(_WAIT_POLL_S)  # one small query a second while the others finish
                    continue
                break
            if progress:
                progress("source", {"path": job.source.path, "duration_s": job.source.probe.duration_s})
            try:
                with heartbeat.holding(job):
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
        sweep(ws, store, owner, placed=False)  # what workers that died meanwhile left in staging
        store.finish_run(run_id, {"processed": summary.processed, "failed": len(summary.failed),
                                  "rejected": len(summary.rejected), "violations": summary.violations,
                                  "kept_reviewed": summary.kept,
                                  "timings": {k: round(v, 3) for k, v in summary.timings.items()},
                                  "counts": summary.counts})
        anchor.witness_quietly(ws, store, "run")  # the signed head, outside the database
        return summary
    finally:
        if heartbeat:
            heartbeat.stop()
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


@dataclass
class _Observed:
    """What detecting and tracking one source left: the sampled frames (without images), every kept
    detection with its track id, and each track's best view waiting on disk."""

    frames: list[Frame] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    # track id -> (confidence, frame index, JPEG file): best views wait on disk, not in memory, so a
    # long video's thousands of tracks do not grow the process
    best: dict[int, tuple[float, int, Path]] = field(default_factory=dict)


def process_source(ws: Workspace, store: Store, cfg: Config, det: Detector, job: Job,
                   progress: Callable[[str, dict], None] | None = None
                   ) -> tuple[int, dict[str, float], dict[str, int]]:
    """Sample, detect and track one source, judge its violations, stage their evidence and commit it all."""
    src = job.source
    timings = {"decode": 0.0, "motion": 0.0, "detect": 0.0, "track": 0.0, "events": 0.0, "clips": 0.0, "db": 0.0}
    media = str(ws.abs(src.original_copy)) if src.original_copy else src.path
    sampler = Sampler(media, cfg.sampling.rate, src.probe.rotation, cfg.sampling.max_side,
                      cfg.sampling.scene_keyframes)
    stage = ws.tmp / f"{_safe_owner(job.owner)}-{src.id}"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "best").mkdir(parents=True)
    try:
        events = EventBuilder(cfg)
        seen = _observe(det, job, sampler, events, stage, timings, progress)
        t = time.perf_counter()
        _, violations = events.finish()
        timings["events"] = time.perf_counter() - t

        t = time.perf_counter()
        staged = _stage_evidence(src, media, cfg, sampler, seen, violations, stage, progress)
        timings["clips"] = time.perf_counter() - t

        t = time.perf_counter()
        store.commit_source(
            job, seen.frames, seen.detections, violations,
            lambda i, vid, v: evidence.place(ws, staged[i], evidence.final_stem(ws, src, v, vid, cfg)),
            timings, src.sha256,
        )
        timings["db"] = time.perf_counter() - t
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return len(violations), timings, {"frames": len(seen.frames), "decoded": sampler.stats.decoded,
                                      "decode_errors": sampler.stats.decode_errors}


def _observe(det: Detector, job: Job, sampler: Sampler, events: EventBuilder, stage: Path,
             timings: dict[str, float], progress: Callable[[str, dict], None] | None) -> _Observed:
    """Decode in a thread; detect in batches and feed each frame to the events builder as it comes."""
    src = job.source
    full = (src.probe.width, src.probe.height)
    q: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
    stop = threading.Event()
    th = threading.Thread(target=_decode_thread, args=(sampler, MotionEstimator(), full, q, stop, timings),
                          daemon=True)
    th.start()
    seen = _Observed()

    def consume(batch: list[tuple[Frame, np.ndarray]]) -> None:
        t = time.perf_counter()
        found = det.detect([f for f, _ in batch], full)
        timings["detect"] += time.perf_counter() - t
        t = time.perf_counter()
        by_frame: dict[int, list[Detection]] = {}
        for d in found:
            by_frame.setdefault(d.frame_index, []).append(d)
        for f, to_ref in batch:
            for d in events.add(f.t_s, by_frame.get(f.index, []), to_ref):
                seen.detections.append(d)
                tid = d.track_id
                if tid is not None and (tid not in seen.best or d.confidence > seen.best[tid][0]):
                    path = stage / "best" / f"{tid}.jpg"
                    cv2.imwrite(str(path), f.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
                    seen.best[tid] = (d.confidence, f.index, path)
            seen.frames.append(Frame(f.t_s, f.index, f.keyframe, np.empty(0, np.uint8)))  # image dropped
        timings["track"] += time.perf_counter() - t
        if progress:
            progress("frames", {"n": len(batch), "t_s": batch[-1][0].t_s})

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
                batch = []
        if batch:
            consume(batch)
    finally:
        stop.set()
        th.join(timeout=10)
    return seen


def _stage_evidence(src: Source, media: str, cfg: Config, sampler: Sampler, seen: _Observed,
                    violations: list[Violation], stage: Path,
                    progress: Callable[[str, dict], None] | None) -> list[evidence.Staged]:
    """Each violation's clip (stream copy) and annotated keyframe, written to the staging folder."""
    full = (src.probe.width, src.probe.height)
    duration = max(src.probe.duration_s, sampler.stats.last_t_s)
    keyframes = sampler.stats.keyframe_times or [0.0]
    frame_time = {f.index: f.t_s for f in seen.frames}

    def make(i: int, v: Violation) -> evidence.Staged:
        start, end = evidence.clip_range(v, cfg, keyframes, duration)
        files = evidence.cut_clip(src, media, start, end, stage / f"v{i}")
        tid = max(v.track_ids, key=lambda k: seen.best.get(k, (0.0,))[0])
        _, fidx, jpg = seen.best[tid]
        image = cv2.imread(str(jpg), cv2.IMREAD_COLOR)
        parts = [d for d in seen.detections if d.frame_index == fidx and d.track_id in v.track_ids]
        # one box per violation: a pile's bags are drawn as the pile
        boxes = [(union_box(d.box for d in parts), v.category, max(d.confidence for d in parts))]
        kf_t = frame_time[fidx]
        kf_path = stage / f"v{i}.jpg"
        evidence.annotate_keyframe(image, boxes, full, cfg, src.wall_clock(kf_t), kf_t, src.district, kf_path)
        files.append(evidence.StagedFile("keyframe", kf_path, kf_t, kf_t, None))
        return evidence.Staged(files)

    staged: list[evidence.Staged] = []
    # ffmpeg cuts run as subprocesses: two at a time keep both cores busy at the end of a source
    with ThreadPoolExecutor(max_workers=_CLIP_WORKERS) as pool:
        futures = [pool.submit(make, i, v) for i, v in enumerate(violations)]
        try:
            for i, fut in enumerate(futures):
                staged.append(fut.result())
                if progress:
                    progress("clip", {"i": i + 1, "n": len(violations)})
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return staged
