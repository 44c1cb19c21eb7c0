"""Dataset mode: independent random frames from many random streets as a YOLO detection data set.

Frames are drawn at random times and extra pans (not consecutive video frames), with per-image
blur, noise, overlay and JPEG quality, so the detector sees the variety rather than one look.
Images from one street all land in the same split, keeping val free of train streets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..records import CLASSES
from .effects import Sensor, jpeg, motion_blur, overlay
from .realbags import RealBags
from .render import camera_at, render_frame
from .scene import Scene, Thing, build_scene
from .video import local_start
from .weather import apply_weather

IMAGES_PER_STREET = 12
STREET_SECONDS = 20.0
DENSITY = 2.5  # more objects per street than a video, so random frames are rarely empty
BACKGROUND_SHARE = 0.1
MIN_SIDE_PX = 6


def render_dataset(out_dir: Path, *, seed: int, count: int, size: tuple[int, int] = (640, 384),
                   val_fraction: float = 0.15, real_garbage_dir: Path | None = None,
                   mix: dict[str, float] | None = None, style: str = "default") -> Path:
    """Writes a YOLO detection dataset (images/{train,val}, labels/{train,val}, data.yaml).

    Returns the data.yaml path."""
    out_dir = Path(out_dir).resolve()
    for sub in ("images/train", "images/val", "labels/train", "labels/val"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    real = RealBags(Path(real_garbage_dir)) if real_garbage_dir is not None else None
    rng = np.random.default_rng(seed)
    n_train = count - round(count * val_fraction)
    scene, sensor, left = None, None, 0
    for i in range(count):
        split = "train" if i < n_train else "val"
        if left == 0 or i == n_train:
            scene = build_scene(rng, duration=STREET_SECONDS, density=DENSITY, real_bags=real, mix=mix, style=style)
            sensor, left = Sensor(rng, size, scene.look.noise_sigma), IMAGES_PER_STREET
        left -= 1
        image, labels = _sample(scene, sensor, rng, size)
        (out_dir / "images" / split / f"{i:06d}.jpg").write_bytes(image)
        (out_dir / "labels" / split / f"{i:06d}.txt").write_text("".join(f"{line}\n" for line in labels))
    return _write_yaml(out_dir)


def _sample(scene: Scene, sensor: Sensor, rng: np.random.Generator, size: tuple[int, int]
            ) -> tuple[bytes, list[str]]:
    """One random frame of `scene` as JPEG bytes and its YOLO label lines."""
    t = rng.uniform(0, STREET_SECONDS)
    cam = camera_at(scene.rig, t, size, extra_yaw=float(rng.uniform(-0.25, 0.25)))
    things: list[Thing] = scene.things
    if rng.random() < BACKGROUND_SHARE:
        things = [thing for thing in things if thing.cls is None]
    frame, seen = render_frame(scene, cam, t, things)
    frame = apply_weather(frame, scene.look, rng)
    if rng.random() < 0.3:
        frame = motion_blur(frame, tuple(rng.uniform(-8, 8, 2)))
    frame = sensor.apply(frame, rng)
    if rng.random() < 0.5:
        when = local_start(rng)
        overlay(frame, when, scene.device, int(rng.integers(4)))
    w, h = size
    labels = []
    for s in seen:
        cls = things[s.index].cls
        if cls is None or not s.visible(size, min_area=0.0, min_side=MIN_SIDE_PX):
            continue
        x1, y1, x2, y2 = s.box
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        labels.append(f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    return jpeg(frame, int(rng.integers(35, 96))), labels


def _write_yaml(out_dir: Path) -> Path:
    """data.yaml in the Ultralytics format (absolute path, split folders, class names)."""
    names = "".join(f"  {k}: {name}\n" for k, name in enumerate(CLASSES))
    path = out_dir / "data.yaml"
    path.write_text(f"path: {out_dir}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return path
