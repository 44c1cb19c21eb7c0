"""Tests of the synthetic footage generator: reproducibility, geometry, video stream, data set."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from conftest import ROOT, SAMPLES, SHARED

from pipeline.synth import CLASSES, render_dataset, render_video
from pipeline.synth.realbags import RealBags
from pipeline.synth.render import camera_at, project, render_frame
from pipeline.synth.scene import build_scene
from pipeline.synth.textures import random_look

REAL_BAGS = SHARED / "data" / "woosong-trashbags"
SMALL = (320, 192)
CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, dict]:
    """One short clip with known settings, shared by the stream and ground-truth tests."""
    out = tmp_path_factory.mktemp("video")
    start = datetime(2026, 11, 3, 14, 22, 33, tzinfo=CST)
    gt = render_video(out, "clip", seed=11, duration=3.0, size=SMALL, fps=10.0, gop_s=1.0,
                      district="Futian", capture_start=start)
    return out, gt


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    kw = {"duration": 2.0, "size": SMALL}
    a = render_video(tmp_path / "a", "x", seed=5, **kw)
    b = render_video(tmp_path / "b", "x", seed=5, **kw)
    c = render_video(tmp_path / "c", "x", seed=6, **kw)
    assert a == b
    assert (tmp_path / "a/x.json").read_bytes() == (tmp_path / "b/x.json").read_bytes()
    assert (tmp_path / "a/x.mp4").read_bytes() == (tmp_path / "b/x.mp4").read_bytes()
    assert (tmp_path / "a/x.mp4").read_bytes() != (tmp_path / "c/x.mp4").read_bytes()
    assert a != c


def test_video_stream_matches_request(video) -> None:
    out, _ = video
    with av.open(str(out / "clip.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == SMALL
        assert stream.codec_context.name == "h264"
        assert Fraction(stream.average_rate) == 10
        assert container.metadata["creation_time"].startswith("2026-11-03T06:22:33")
        keys = [p.is_keyframe for p in container.demux(stream) if p.size]
    assert len(keys) == 30
    assert [i for i, k in enumerate(keys) if k] == [0, 10, 20]


def test_ground_truth_contract(video) -> None:
    out, gt = video
    assert json.loads((out / "clip.json").read_text()) == gt
    assert gt["capture_start"] == "2026-11-03T14:22:33+08:00"
    assert (gt["district"], gt["fps"], gt["size"], gt["seed"]) == ("Futian", 10.0, [320, 192], 11)
    assert gt["device"].split()[0].startswith(("DSJ", "ZFY"))
    assert gt["violations"], "seed 11 shows violations in its first 3 s"
    for v in gt["violations"]:
        assert v["category"] in {"garbage", "parking", "stall"}
        times = sorted(float(t) for t in v["boxes"])
        assert (times[0], times[-1]) == (v["start_s"], v["end_s"])
        for key, (x1, y1, x2, y2) in v["boxes"].items():
            assert key == f"{float(key):.2f}"
            assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 192
            assert (x2 - x1) * (y2 - y1) >= 0.002 * 320 * 192
    assert len({v["id"] for v in gt["violations"]}) == len(gt["violations"])
    kinds = {n["kind"] for n in gt["negatives"]}
    assert kinds <= {"moving_vehicle", "bay_parked_vehicle", "bin", "pedestrian", "shop_display"}
    assert all(n["start_s"] <= n["end_s"] for n in gt["negatives"])


def test_hevc_is_tagged_hvc1(tmp_path: Path) -> None:
    render_video(tmp_path, "h", seed=2, duration=1.0, size=SMALL, codec="hevc")
    with av.open(str(tmp_path / "h.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "hevc"
        assert stream.codec_tag == "hvc1"
        assert stream.frames == 25


def _clear_objects(scene, cam, t):
    """Labelled objects fully in view and not covered by anything, with their Seen records."""
    _, seen = render_frame(scene, cam, t)
    return [s for s in seen if scene.things[s.index].cls is not None and s.unoccluded == 1.0
            and s.in_frame == 1.0 and s.visible(cam.size)]


def test_boxes_match_drawn_pixels() -> None:
    checked = 0
    for seed in range(3):
        scene = build_scene(np.random.default_rng(seed), duration=10.0)
        t = 3.0
        cam = camera_at(scene.rig, t, (640, 360))
        full, _ = render_frame(scene, cam, t)
        for s in _clear_objects(scene, cam, t)[:3]:
            others = [th for i, th in enumerate(scene.things) if i != s.index]
            without, _ = render_frame(scene, cam, t, others)
            changed = np.any(full != without, axis=2)
            x1, y1, x2, y2 = s.box
            inside = changed[y1:y2, x1:x2]
            assert inside.mean() > 0.2
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            mx, my = 3 + (x2 - x1) // 6, 3 + (y2 - y1) // 6
            outside = changed.copy()
            outside[max(0, y1 - my):y2 + my, max(0, x1 - mx):x2 + mx] = False
            assert not outside.any()
            checked += 1
    assert checked >= 3


def test_projection_puts_objects_where_they_stand() -> None:
    """Projecting a billboard's solid texture pixels from world space lands on its drawn box,
    and static objects grow as the camera approaches."""
    scene = build_scene(np.random.default_rng(4), duration=10.0)
    rig = scene.rig
    size = (640, 360)
    hits = 0
    for t in (0.0, 2.0, 4.0):
        cam = camera_at(rig, t, size)
        for s in _clear_objects(scene, cam, t):
            faces = scene.things[s.index].faces(t, cam.C)
            if len(faces) != 1:
                continue
            face = faces[0]
            rows, cols = np.nonzero(face.tex[..., 3] > 127)
            uv = project(cam, face.origin + cols[:, None] * face.u + rows[:, None] * face.v)
            x1, y1, x2, y2 = s.box
            assert np.allclose(uv.min(0), (x1, y1), atol=1.5)
            assert np.allclose(uv.max(0), (x2 - 1, y2 - 1), atol=1.5)
            hits += 1
    assert hits >= 2
    static = [i for i, th in enumerate(scene.things) if th.cls is not None and th.vz == 0]
    areas = {}
    for t in (0.0, 3.0):
        _, seen = render_frame(scene, camera_at(rig, t, size), t)
        areas[t] = {s.index: (s.box[2] - s.box[0]) * (s.box[3] - s.box[1]) for s in seen
                    if s.index in static and s.in_frame == 1.0}
    common = set(areas[0.0]) & set(areas[3.0])
    assert common and all(areas[3.0][i] > areas[0.0][i] for i in common)


def test_labels_follow_where_vehicles_stand() -> None:
    """Class 1 cars stand on the sidewalk or a no-parking zone; parked class 3 cars stand in bays."""
    for seed in range(3):
        scene = build_scene(np.random.default_rng(seed), duration=20.0, density=2.0)
        street = scene.street
        for thing in scene.things:
            if thing.side is None or thing.cls not in (1, 3) or thing.vz:
                continue
            side = 1 if thing.x0 > 0 else -1
            inner = min(abs(thing.x0), abs(thing.x0 + thing.width))
            segment = street.segment_at(side, thing.z0, thing.z0 + thing.depth)
            on_walk = abs(thing.x0 + thing.width / 2) > street.kerb
            if thing.cls == 1:
                assert on_walk or segment.kind in ("hatch", "yellow")
            else:
                assert segment.kind == "bay" and inner > street.kerb - street.strip_w


def test_dataset_layout_and_labels(tmp_path: Path) -> None:
    data_yaml = render_dataset(tmp_path / "ds", seed=3, count=40, size=SMALL, val_fraction=0.15)
    meta = yaml.safe_load(data_yaml.read_text())
    assert Path(meta["path"]).is_absolute() and Path(meta["path"]) == (tmp_path / "ds").resolve()
    assert [meta["names"][k] for k in range(6)] == CLASSES
    seen_classes, counts = set(), {}
    for split in ("train", "val"):
        images = sorted((tmp_path / "ds/images" / split).glob("*.jpg"))
        labels = sorted((tmp_path / "ds/labels" / split).glob("*.txt"))
        assert [p.stem for p in images] == [p.stem for p in labels]
        counts[split] = len(images)
        for path in labels:
            for line in path.read_text().splitlines():
                cls, *xywh = line.split()
                assert int(cls) in range(6)
                assert all(0.0 <= float(v) <= 1.0 for v in xywh)
                w, h = float(xywh[2]) * SMALL[0], float(xywh[3]) * SMALL[1]
                assert min(w, h) >= 6
                seen_classes.add(int(cls))
        img = cv2.imread(str(images[0]))
        assert img.shape == (SMALL[1], SMALL[0], 3)
    assert counts == {"train": 34, "val": 6}
    assert seen_classes == set(range(6))


def test_dataset_is_reproducible(tmp_path: Path) -> None:
    a = render_dataset(tmp_path / "a", seed=9, count=4, size=SMALL).parent
    b = render_dataset(tmp_path / "b", seed=9, count=4, size=SMALL).parent
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "data.yaml")
    assert len(files) == 8
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


@pytest.mark.skipif(not REAL_BAGS.exists(), reason="real garbage-bag data set not present")
def test_real_bag_copy_paste(tmp_path: Path) -> None:
    bags = RealBags(REAL_BAGS)
    assert all("/train/" in str(path) for path, _ in bags.items)
    pile = bags.pile(np.random.default_rng(0), random_look(np.random.default_rng(0)))
    assert pile.shape[2] == 4 and (pile[..., 3] > 127).mean() > 0.3
    data_yaml = render_dataset(tmp_path, seed=1, count=12, size=SMALL, real_garbage_dir=REAL_BAGS)
    labels = "".join(p.read_text() for p in (data_yaml.parent / "labels").rglob("*.txt"))
    assert any(line.startswith("0 ") for line in labels.splitlines())


def test_shipped_samples_are_what_generate_py_renders(tmp_path):
    """samples/ must stay reproducible from samples/generate.py: a generator change that alters them
    has to re-render and re-measure them (they had drifted once, unnoticed). One clip, ~10 s."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", ROOT / "samples" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    district, name, seed, start = next(s for s in generate.SAMPLES if s[1] == "20261105_101500")
    generate.render(tmp_path, district, name, seed, start)
    shipped = SAMPLES / district / name
    assert json.loads((tmp_path / district / f"{name}.json").read_text(encoding="utf-8")) == \
        json.loads(shipped.with_suffix(".json").read_text(encoding="utf-8"))
    # same pixels (to within encoder/SIMD noise: a byte-exact check would tie the suite to one CPU and x264 build)
    a, b = _frames(tmp_path / district / f"{name}.mp4"), _frames(shipped.with_suffix(".mp4"))
    assert a.keys() == b.keys() == {0, 137, 499}
    for i in a:
        assert np.abs(a[i].astype(int) - b[i].astype(int)).mean() < 1.0, i


def _frames(path: Path, keep: tuple[int, ...] = (0, 137, 499)) -> dict[int, np.ndarray]:
    with av.open(str(path)) as c:
        return {i: f.to_ndarray(format="gray") for i, f in enumerate(c.decode(video=0)) if i in keep}
