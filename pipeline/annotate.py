"""What an analyst teaches the model besides a verdict: a corrected box, a violation the model missed,
a frame marked fully labelled. The review app and any script acting as an analyst call these same
functions; every write goes through ``Store`` and so through the custody log.

Adding a missed violation makes real evidence, as a run would: a stream-copied clip around the drawn
frame (from the keyframe before it) and an annotated keyframe, staged under ``review-tmp/`` (which
``vaudit run`` never sweeps) and renamed into place inside the transaction that records them.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import evidence
from .config import Config
from .frames import frame_at, keyframe_times
from .records import Box, Decision, Detection, Source, Violation
from .store import Store, checked_box, worker_id
from .workspace import Workspace


class AnnotationError(ValueError):
    """A request an analyst can fix (unknown category, a box outside the frame, no such frame...)."""


@dataclass(frozen=True)
class StagedAdd:
    """Evidence made for a violation to be added, waiting for its id (and final file names)."""

    source: Source
    run_id: int
    category: str
    t_s: float
    box: Box
    staged: evidence.Staged
    clip_range: tuple[float, float]
    folder: Path


def media_path(ws: Workspace, src: Source) -> str:
    """The file to decode: the workspace's read-only copy when ingest kept one, else the original."""
    return str(ws.abs(src.original_copy)) if src.original_copy else src.path


def current_run(store: Store, source_id: int) -> int:
    rows = store.query("SELECT current_run_id FROM sources WHERE id = ? AND status = 'ready'", [source_id])
    if not rows or rows[0]["current_run_id"] is None:
        raise AnnotationError(f"source {source_id} has not been processed by a run yet")
    return rows[0]["current_run_id"]


def stage_added(ws: Workspace, cfg: Config, src: Source, run_id: int, category: str, t_s: float, box: Box
                ) -> StagedAdd:
    """Cut the clip and draw the keyframe for a violation an analyst drew at ``t_s`` (no database access,
    so the review app runs it off the event loop)."""
    if category not in cfg.categories:
        raise AnnotationError(f"unknown category {category!r}: one of {', '.join(cfg.categories)}")
    duration = src.probe.duration_s
    if not 0 <= t_s <= max(duration, 0.0) + 0.5:
        raise AnnotationError(f"time {t_s:.2f} s is outside the footage (0-{duration:.1f} s)")
    box = checked_box(box, src.probe.width, src.probe.height)
    media = media_path(ws, src)
    keys, last = keyframe_times(media)
    v = Violation(category, t_s, t_s, 1.0, 1, Detection(0, t_s, category, category, 1.0, box), ())
    start, end = evidence.clip_range(v, cfg, keys, max(duration, last))
    folder = _stage_folder(ws)
    try:
        files = evidence.cut_clip(src, media, start, end, folder / "clip")
        image, shown_t = frame_at(media, t_s, src.probe.rotation, cfg.sampling.max_side)
        kf = folder / "keyframe.jpg"
        evidence.annotate_keyframe(image, [(box, category, 1.0)], (src.probe.width, src.probe.height), cfg,
                                   src.wall_clock(shown_t), shown_t, src.district, kf)
        files.append(evidence.StagedFile("keyframe", kf, shown_t, shown_t, None))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return StagedAdd(src, run_id, category, t_s, box, evidence.Staged(files), (start, end), folder)


def _stage_folder(ws: Workspace) -> Path:
    """A private folder under ``review-tmp/`` named as the review app names its builds (``pack~host~pid~start~``),
    so a review server starting meanwhile leaves it alone while this process lives, and sweeps it after."""
    ws.review_tmp.mkdir(mode=0o700, exist_ok=True)
    owner = worker_id().replace(":", "~")
    return Path(tempfile.mkdtemp(prefix=f"pack~{owner}~", dir=ws.review_tmp))


def commit_added(ws: Workspace, store: Store, cfg: Config, staged: StagedAdd, user: str,
                 note: str | None = None) -> int:
    """Record the staged violation as confirmed, added by ``user``; returns its id."""
    v = Violation(staged.category, staged.t_s, staged.t_s, 1.0, 1,
                  Detection(0, staged.t_s, staged.category, staged.category, 1.0, staged.box), ())
    try:
        return store.add_violation(
            staged.source.id, staged.run_id, staged.category, staged.t_s, staged.box, user,
            lambda vid: evidence.place(ws, staged.staged, evidence.final_stem(ws, staged.source, v, vid, cfg)),
            staged.clip_range, note)
    finally:
        shutil.rmtree(staged.folder, ignore_errors=True)


def add_missed(ws: Workspace, store: Store, cfg: Config, source_id: int, t_s: float, box: Box, category: str,
               user: str, note: str | None = None) -> int:
    """Stage and commit in one call (scripts; the app splits the two around its event loop)."""
    staged = stage_added(ws, cfg, store.source(source_id), current_run(store, source_id), category, t_s, box)
    return commit_added(ws, store, cfg, staged, user, note)


def correct_box(store: Store, violation_id: int, box: Box, user: str, note: str | None = None) -> int:
    """Redraw a violation's box on its keyframe; the decision keeps the box, the violation row takes it."""
    return store.record_decision(Decision(violation_id, user, "correct_box", box=tuple(box), note=note))


def mark_complete(store: Store, frame_id: int, user: str) -> int:
    """Every violation on this sampled frame is boxed (model's, corrected or added)."""
    return store.mark_frame_complete(frame_id, user)
