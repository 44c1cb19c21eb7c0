"""Video mode: a seeded inspection walk/drive rendered to MP4 plus its exact ground-truth JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from .effects import Sensor, motion_blur, overlay
from .encode import VideoWriter
from .render import Seen, camera_at, render_frame
from .scene import CATEGORY, Scene, build_scene
from .weather import apply_weather

CST = timezone(timedelta(hours=8))  # China Standard Time, the bodycam clock
DISTRICTS = ["Futian", "Luohu", "Nanshan", "Baoan", "Longgang", "Longhua", "Yantian", "Guangming"]
NEGATIVE_KINDS = ("moving_vehicle", "bay_parked_vehicle", "bin", "pedestrian", "shop_display")
SPARE_VIOLATIONS = 3  # placed beyond the target so ones that are barely seen can be dropped
MIN_VISIBLE_S = 3.0
PREVIEW_SIZE = (192, 108)
PREVIEW_STEP_S = 0.2


def render_video(out_dir: Path, name: str, *, seed: int, duration: float = 20.0,
                 size: tuple[int, int] = (1280, 720), fps: float = 25.0, gop_s: float = 1.0,
                 codec: str = "h264", district: str | None = None, capture_start: datetime | None = None,
                 crf: int = 23, style: str = "default") -> dict:
    """Writes out_dir/NAME.mp4 and out_dir/NAME.json; returns the ground-truth dict. ``style`` picks the
    renderer's city (scene.STYLES)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    target = int(rng.integers(2, 7))
    scene = build_scene(rng, duration=duration, violations=target + SPARE_VIOLATIONS, style=style)
    _keep_watchable(scene, duration, target)
    district = district or str(rng.choice(DISTRICTS))
    start = local_start(rng, capture_start)
    sensor = Sensor(rng, size, scene.look.noise_sigma)
    corner = int(rng.integers(4))
    tracks: dict[int, dict[str, list[int]]] = {}
    with VideoWriter(out_dir / f"{name}.mp4", size, fps, gop_s=gop_s, codec=codec, crf=crf,
                     capture_start=start) as writer:
        for i in range(round(duration * fps)):
            t = i / fps
            frame, seen = _frame(scene, sensor, seed, i, t, size, fps)
            overlay(frame, start + timedelta(seconds=t), scene.device, corner)
            writer.write(frame)
            _track(tracks, seen, t, size)
    gt = _ground_truth(scene, tracks, seed=seed, fps=fps, size=size, district=district, start=start)
    if style != "default":  # named only when not the default, so earlier footage's JSON is unchanged
        gt["style"] = style
    (out_dir / f"{name}.json").write_text(json.dumps(gt, indent=1))
    return gt


def local_start(rng: np.random.Generator, given: datetime | None = None) -> datetime:
    """The given start in +08:00 (naive times are taken as local), or a seeded working-hours time."""
    if given is None:
        day = datetime(2026, 11, 3, tzinfo=CST) + timedelta(days=int(rng.integers(0, 60)))
        return day + timedelta(seconds=int(rng.integers(8 * 3600, 18 * 3600)))
    return given.replace(tzinfo=CST) if given.tzinfo is None else given.astimezone(CST)


def _keep_watchable(scene: Scene, duration: float, target: int) -> None:
    """Keep the first `target` violations seen for >= 3 s (or half a short clip); drop the rest.

    A cheap low-resolution preview pass measures visibility with the same rule as the real render.
    """
    seen_s: dict[int, float] = {}
    for t in np.arange(0.0, duration, PREVIEW_STEP_S):
        _, seen = render_frame(scene, camera_at(scene.rig, t, PREVIEW_SIZE), t)
        for s in seen:
            if s.visible(PREVIEW_SIZE):
                seen_s[s.index] = seen_s.get(s.index, 0.0) + PREVIEW_STEP_S
    need = min(MIN_VISIBLE_S, duration / 2) - PREVIEW_STEP_S / 2
    kept, things = 0, []
    for index, thing in enumerate(scene.things):
        if thing.role in CATEGORY:
            if kept >= target or seen_s.get(index, 0.0) < need:
                continue
            kept += 1
        things.append(thing)
    scene.things = things


def _frame(scene: Scene, sensor: Sensor, seed: int, i: int, t: float, size: tuple[int, int], fps: float
           ) -> tuple[np.ndarray, list[Seen]]:
    """One rendered frame with shake blur and sensor noise (seeded per frame), plus what is seen."""
    cam = camera_at(scene.rig, t, size)
    frame, seen = render_frame(scene, cam, t)
    frame = apply_weather(frame, scene.look, np.random.default_rng([seed, i, 1]))
    _, yaw0, pitch0, _ = scene.rig.pose(t - 0.5 / fps)
    _, yaw1, pitch1, _ = scene.rig.pose(t)
    focal, gain = cam.K[0, 0], scene.look.blur_gain
    frame = motion_blur(frame, (focal * (yaw1 - yaw0) * gain, focal * (pitch1 - pitch0) * gain))
    return sensor.apply(frame, np.random.default_rng([seed, i])), seen


def _track(tracks: dict[int, dict[str, list[int]]], seen: list[Seen], t: float,
           size: tuple[int, int]) -> None:
    """Record the box of every object visible at time t under its key 't with 2 decimals'."""
    for s in seen:
        if s.visible(size):
            tracks.setdefault(s.index, {})[f"{t:.2f}"] = list(s.box)


def _ground_truth(scene: Scene, tracks: dict[int, dict[str, list[int]]], *, seed: int, fps: float,
                  size: tuple[int, int], district: str, start: datetime) -> dict:
    """The NAME.json contract: violations with per-frame boxes, negatives with their visible span."""
    violations, negatives = [], []
    for index in sorted(tracks, key=lambda k: (float(next(iter(tracks[k]))), k)):
        thing, boxes = scene.things[index], tracks[index]
        times = [float(k) for k in boxes]
        span = {"start_s": min(times), "end_s": max(times)}
        if thing.role in CATEGORY:
            violations.append({"id": f"v{len(violations) + 1:02d}", "category": CATEGORY[thing.role], **span,
                               "boxes": boxes})
        elif thing.role in NEGATIVE_KINDS:
            negatives.append({"kind": thing.role, **span})
    return {"capture_start": start.isoformat(), "district": district, "device": scene.device,
            "fps": float(fps), "size": [int(size[0]), int(size[1])], "seed": int(seed),
            "violations": violations, "negatives": negatives}
