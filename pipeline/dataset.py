"""Reviewed footage as a YOLO training set (``vaudit dataset``): what the analysts decided, as boxes.

Each reviewed source's sampled frames (the very frames its run's detector saw, decoded again with the
run's own sampling settings) become images; labels come from the analysts' decisions:

- confirmed violations (and ones rejected as duplicates: a real object reported twice) are positives
  on every frame of their track: the run's detections, gaps between them interpolated, moved and scaled
  as the analyst's corrected box moved the keyframe's box;
- violations an analyst added carry the drawn box to the frames around it with the camera motion the
  pipeline estimates (the three categories stand still in the world), at most ``CARRY_S`` away;
- detections rejected as false or as no violation are hard negatives: their frames are images with no
  box there;
- a frame with a known object whose box is unknown (a pending violation, footage rejected as unclear,
  an added violation's span beyond the carried boxes) is left out; frames marked complete by an analyst
  are kept even with no box at all (background).

Train and validation are split by source file (never by frame), by a fixed hash of the SHA-256. Only
the violation classes are labelled here, so ``labelled_classes`` tells training to count loss for them
alone (vehicles, bins and people in these frames are not taught as background). The manifest names
every source by SHA-256 and every decision used; the output is byte-for-byte the same on a re-run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from .annotate import media_path
from .config import Config
from .records import CLASSES, Box, Frame
from .sample import Sampler
from .store import Store
from .track import MotionEstimator, warp_box
from .workspace import Workspace

CARRY_S = 2.5  # an added box is carried this far (seconds) by camera motion; beyond it the frame is unknown
POSITIVE_REJECTS = {"duplicate"}  # a duplicate is a real object, reported twice
NEGATIVE_REJECTS = {"false_detection", "not_a_violation"}
LABELLED = [CLASSES.index(c) for c in ("garbage", "illegal_parking", "stall")]
JPEG_QUALITY = 92


class DatasetError(ValueError):
    """Nothing to build from, or an output folder that is not ours to replace."""


@dataclass
class Item:
    """One violation as the dataset uses it."""

    id: int
    source_id: int
    category: str
    status: str
    origin: str
    reason: str | None
    use: str  # "positive" | "hard_negative" | "unknown"
    t_s: float | None
    box: Box | None
    corrected: Box | None
    added_by: str | None
    start_s: float
    end_s: float
    detections: dict[float, Box] = field(default_factory=dict)  # sampled time -> box


def _split(sha: str, salt: str = "vaudit-dataset-split") -> str:
    return hashlib.sha256(f"{salt}:{sha}".encode()).hexdigest()


def split_sources(shas: list[str], val_share: float) -> dict[str, str]:
    """sha -> "train" | "val": the ``val_share`` of sources whose salted hash is lowest (at least one when
    there are two or more), so adding footage later moves few sources between splits."""
    ranked = sorted(shas, key=_split)
    n_val = 0 if len(shas) < 2 else max(1, round(len(shas) * val_share))
    return {sha: ("val" if i < n_val else "train") for i, sha in enumerate(ranked)}


def _use(status: str, reason: str | None) -> str:
    if status == "confirmed" or (status == "rejected" and reason in POSITIVE_REJECTS):
        return "positive"
    if status == "rejected" and reason in NEGATIVE_REJECTS:
        return "hard_negative"
    return "unknown"


def reviewed_items(store: Store) -> dict[int, list[Item]]:
    """Every violation of each source's current run, by source id, for sources with at least one decision."""
    rows = store.query(
        """SELECT v.id, v.source_id, v.category, v.status, v.origin, v.added_by, v.best_t_s, v.x1, v.y1, v.x2, v.y2,
                  v.start_s, v.end_s,
                  (SELECT reason FROM decisions d WHERE d.violation_id = v.id AND d.action = 'reject'
                   ORDER BY d.id DESC LIMIT 1) AS reason,
                  (SELECT count(*) FROM decisions d WHERE d.violation_id = v.id AND d.action = 'correct_box') AS fixes
           FROM violations v JOIN sources s ON s.id = v.source_id
           WHERE v.run_id = s.current_run_id AND s.status = 'ready'
             AND v.source_id IN (SELECT v2.source_id FROM violations v2 JOIN decisions d ON d.violation_id = v2.id)
           ORDER BY v.source_id, v.id""")
    dets = defaultdict(dict)
    for d in store.query(
            """SELECT d.violation_id, f.t_s, d.x1, d.y1, d.x2, d.y2 FROM detections d JOIN frames f ON f.id = d.frame_id
               JOIN violations v ON v.id = d.violation_id JOIN sources s ON s.id = v.source_id
               WHERE v.run_id = s.current_run_id ORDER BY d.id"""):
        dets[d["violation_id"]][d["t_s"]] = (d["x1"], d["y1"], d["x2"], d["y2"])
    out: dict[int, list[Item]] = defaultdict(list)
    for r in rows:
        box = (r["x1"], r["y1"], r["x2"], r["y2"]) if r["x1"] is not None else None
        out[r["source_id"]].append(Item(
            r["id"], r["source_id"], r["category"], r["status"], r["origin"], r["reason"],
            _use(r["status"], r["reason"]), r["best_t_s"], box, box if r["fixes"] else None, r["added_by"],
            r["start_s"], r["end_s"], dict(dets[r["id"]])))
    return out


def _moved(b: Box, was: Box, now: Box) -> Box:
    """``b`` moved and scaled as the keyframe's box ``was`` became ``now`` (in units of the box's size)."""
    sx, sy = (b[2] - b[0]) / max(1e-6, was[2] - was[0]), (b[3] - b[1]) / max(1e-6, was[3] - was[1])
    return (b[0] + (now[0] - was[0]) * sx, b[1] + (now[1] - was[1]) * sy,
            b[2] + (now[2] - was[2]) * sx, b[3] + (now[3] - was[3]) * sy)


def track_boxes(item: Item, times: list[float]) -> dict[float, Box]:
    """A model violation's box at each sampled time of its track: detections, gaps interpolated, and the
    analyst's correction applied to all of them."""
    known = sorted(item.detections.items())
    if not known:
        return {item.t_s: item.box} if item.t_s is not None and item.box else {}
    out = dict(known)
    for (t0, b0), (t1, b1) in itertools.pairwise(known):
        for t in times:
            if t0 < t < t1:
                w = (t - t0) / (t1 - t0)
                out[t] = tuple(a + (b - a) * w for a, b in zip(b0, b1, strict=True))
    if item.corrected and item.t_s is not None:
        was = item.detections.get(item.t_s) or min(known, key=lambda kv: abs(kv[0] - item.t_s))[1]
        out = {t: _moved(b, was, item.corrected) for t, b in out.items()}
    return out


def _clip(b: Box, w: int, h: int) -> Box | None:
    x1, y1, x2, y2 = max(0.0, b[0]), max(0.0, b[1]), min(float(w), b[2]), min(float(h), b[3])
    return (x1, y1, x2, y2) if x2 - x1 >= 2 and y2 - y1 >= 2 else None


def build(ws: Workspace, store: Store, cfg: Config, out: Path, val_share: float = 0.2) -> dict:
    """Write the dataset to ``out`` (images/, labels/, data.yaml, manifest.json); returns the manifest."""
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").exists():
        raise DatasetError(f"{out} exists and is not a vaudit dataset: give an empty or new folder")
    items = reviewed_items(store)
    if not items:
        raise DatasetError("no reviewed footage: confirm, reject or add violations in `vaudit serve` first")
    class_of = {cat: CLASSES.index(cls) for cls, cat in cfg.model.classes.items()}
    srcs = {r["id"]: r for r in store.query(
        f"""SELECT s.id, s.sha256, s.path, s.width, s.height, s.rotation, s.original_copy, s.current_run_id,
                   r.model_sha256, r.config FROM sources s JOIN runs r ON r.id = s.current_run_id
            WHERE s.id IN ({",".join("?" * len(items))})""", list(items))}
    splits = split_sources([s["sha256"] for s in srcs.values()], val_share)
    complete = {(r["source_id"], r["t_s"]) for r in store.query(
        "SELECT f.source_id, f.t_s FROM frame_reviews fr JOIN frames f ON f.id = fr.frame_id"
        " JOIN sources s ON s.id = f.source_id WHERE f.run_id = s.current_run_id")}
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("images/train", "images/val", "labels/train", "labels/val"):
        (tmp / sub).mkdir(parents=True)
    manifest_sources, manifest_frames, decisions = [], [], []
    for sid in sorted(items, key=lambda k: srcs[k]["sha256"]):
        s = srcs[sid]
        frames, used = _source_frames(ws, store, s, items[sid], class_of, complete)
        split = splits[s["sha256"]]
        for t, (image, labels, is_complete) in sorted(frames.items()):
            name = f"{s['sha256'][:16]}_{round(t * 1000):08d}"
            _ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            (tmp / "images" / split / f"{name}.jpg").write_bytes(jpg.tobytes())
            (tmp / "labels" / split / f"{name}.txt").write_text("".join(f"{x}\n" for x in labels))
            manifest_frames.append({"image": f"images/{split}/{name}.jpg", "source_sha256": s["sha256"], "t_s": t,
                                    "boxes": len(labels), "complete": is_complete})
        manifest_sources.append({"sha256": s["sha256"], "path": s["path"], "split": split, "run_id": s["current_run_id"],
                                 "model_sha256": s["model_sha256"], "frames": len(frames)})
        for it in items[sid]:
            decisions.append({"violation_id": it.id, "source_sha256": s["sha256"], "category": it.category,
                              "status": it.status, "origin": it.origin, "reason": it.reason, "use": it.use,
                              "corrected": it.corrected is not None, "added_by": it.added_by,
                              "start_s": round(it.start_s, 3), "end_s": round(it.end_s, 3),
                              "frames": used.get(it.id, 0)})
    manifest = {
        "format": "vaudit-reviewed-dataset/1", "classes": CLASSES, "labelled_classes": LABELLED,
        "val_share": val_share, "split_rule": "by source: the share of sources whose SHA-256 hashes lowest",
        "carry_s": CARRY_S, "sources": manifest_sources, "decisions": decisions, "frames": manifest_frames,
        "counts": {
            "sources": len(manifest_sources),
            "train_images": sum(1 for f in manifest_frames if f["image"].startswith("images/train")),
            "val_images": sum(1 for f in manifest_frames if f["image"].startswith("images/val")),
            "boxes": sum(f["boxes"] for f in manifest_frames),
            **{use: sum(1 for d in decisions if d["use"] == use) for use in ("positive", "hard_negative", "unknown")},
            "added": sum(1 for d in decisions if d["origin"] == "analyst"),
            "complete_frames": sum(1 for f in manifest_frames if f["complete"])},
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    (tmp / "data.yaml").write_text(yaml.safe_dump(
        {"path": str(out), "train": "images/train", "val": "images/val", "names": dict(enumerate(CLASSES))},
        sort_keys=False))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest


def _source_frames(ws: Workspace, store: Store, s: dict, items: list[Item], class_of: dict[str, int],
                   complete: set) -> tuple[dict[float, tuple[np.ndarray, list[str], bool]], dict[int, int]]:
    """(sampled time -> (image, YOLO label lines, marked complete)) for one source, and frames per violation."""
    times = [r["t_s"] for r in store.query("SELECT t_s FROM frames WHERE source_id = ? AND run_id = ? ORDER BY t_s",
                                           [s["id"], s["current_run_id"]])]
    w, h = s["width"], s["height"]
    boxes: dict[float, list[tuple[int, Box, int]]] = defaultdict(list)
    negatives: set[float] = set()
    unknown: set[float] = set()
    added = [it for it in items if it.use == "positive" and it.origin == "analyst"]
    for it in items:
        if it.origin == "analyst":
            continue
        if it.use == "positive":
            for t, b in track_boxes(it, times).items():
                boxes[t].append((class_of[it.category], b, it.id))
        elif it.use == "hard_negative":
            negatives.update(it.detections)
        else:
            unknown.update(it.detections)
    run_cfg = json.loads(store.query("SELECT config FROM runs WHERE id = ?", [s["current_run_id"]])[0]["config"] or "{}")
    sampling = {**cfg_sampling(run_cfg)}
    sampler = Sampler(media_path(ws, store.source(s["id"])), sampling["rate"], s["rotation"] or 0,
                      sampling["max_side"], sampling["scene_keyframes"])
    motion = MotionEstimator()
    images: dict[float, np.ndarray] = {}
    to_ref: dict[float, np.ndarray] = {}
    wanted = set(times)
    for f in sampler:
        if added:
            to_ref[f.t_s] = motion.update(f, (w, h))
        if f.t_s in wanted:
            images[f.t_s] = f.image
    for it in added:
        _carry(it, times, to_ref, boxes, unknown, class_of)
    out, used = {}, defaultdict(int)
    for t in times:
        if t not in images or t in unknown:
            continue
        is_complete = (s["id"], t) in complete
        if not (boxes.get(t) or t in negatives or is_complete):
            continue
        lines = []
        for cls, b, vid in sorted(boxes.get(t, []), key=lambda x: (x[0], x[1])):
            c = _clip(b, w, h)
            if c is None:
                continue
            used[vid] += 1
            cx, cy, bw, bh = (c[0] + c[2]) / 2 / w, (c[1] + c[3]) / 2 / h, (c[2] - c[0]) / w, (c[3] - c[1]) / h
            lines.append(f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
        out[t] = (images[t], lines, is_complete)
    return out, used


def _carry(it: Item, times: list[float], to_ref: dict[float, np.ndarray], boxes: dict, unknown: set,
           class_of: dict[str, int]) -> None:
    """An added violation's drawn box on the sampled frames around it, moved by the camera's motion; the
    rest of its span is unknown."""
    if it.t_s is None or it.box is None or not to_ref:
        return
    t0 = min(to_ref, key=lambda t: abs(t - it.t_s))
    ref = warp_box(it.box, to_ref[t0])
    lo, hi = min(it.start_s, it.t_s), max(it.end_s, it.t_s)
    for t in times:
        if abs(t - it.t_s) <= CARRY_S and t in to_ref:
            boxes[t].append((class_of[it.category], warp_box(ref, np.linalg.inv(to_ref[t])), it.id))
        elif lo - 0.5 <= t <= hi + 0.5:
            unknown.add(t)


def cfg_sampling(run_cfg: dict) -> dict:
    """The sampling settings a run recorded in its config snapshot (defaults for a snapshot without them)."""
    sampling = run_cfg.get("sampling") or {}
    return {"rate": float(sampling.get("rate", 1.0)), "max_side": int(sampling.get("max_side", 1280)),
            "scene_keyframes": bool(sampling.get("scene_keyframes", True))}


__all__ = ["DatasetError", "Frame", "build", "split_sources", "track_boxes"]
