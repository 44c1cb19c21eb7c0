"""Tracking and judging with records made by hand: one violation per object, not per frame."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import config as config_mod
from pipeline.events import violations_from
from pipeline.geometry import iou
from pipeline.records import Detection
from pipeline.track import warp_box

CFG = config_mod.load()


def det(t: float, cat: str, box, conf=0.8, idx=0) -> Detection:
    return Detection(idx, t, cat, cat, conf, tuple(float(x) for x in box))


def shift(dx: float, dy: float = 0.0, s: float = 1.0) -> np.ndarray:
    """Frame -> reference transform of a camera that panned by (-dx, -dy) and zoomed by 1/s."""
    return np.array([[s, 0, dx], [0, s, dy], [0, 0, 1.0]])


def run(frames: list[tuple[float, list[Detection], np.ndarray]], cfg=CFG):
    tracks, violations = violations_from(frames, cfg)
    return violations, tracks


def test_detections_below_their_category_threshold_are_not_evidence():
    """What bench/events.py relies on: a detector run at a lower floor gives what `vaudit run` gives."""
    thr = CFG.categories["garbage"].confidence
    box = (400, 300, 520, 400)
    weak = [(t * 0.5, [det(t * 0.5, "garbage", box, conf=thr * 0.9)], shift(0)) for t in range(6)]
    assert run(weak)[0] == []
    mixed = [(t, ds + [det(t, "garbage", (10, 10, 50, 50), conf=thr * 0.5)], m) for t, ds, m in
             [(t * 0.5, [det(t * 0.5, "garbage", box, conf=thr + 0.05)], shift(0)) for t in range(6)]]
    strong_only = [(t, ds[:1], m) for t, ds, m in mixed]
    assert run(mixed) == run(strong_only) and len(run(mixed)[0]) == 1


def test_panning_camera_keeps_one_object_one_violation():
    # the pile moves 120 px/sample across the image because the camera pans; in reference coords it stays
    frames = [(t * 0.5, [det(t * 0.5, "garbage", (500 - 120 * t, 300, 600 - 120 * t, 380))], shift(120 * t))
              for t in range(8)]
    vs, _ = run(frames)
    assert len(vs) == 1 and vs[0].hits == 8
    assert (vs[0].start_s, vs[0].end_s) == (0.0, 3.5)


def test_two_piles_side_by_side_are_two_violations():
    frames = [(t * 0.5, [det(t * 0.5, "garbage", (100, 300, 200, 380)), det(t * 0.5, "garbage", (700, 300, 800, 380))],
               shift(0)) for t in range(6)]
    vs, _ = run(frames)
    assert len(vs) == 2


def test_bags_heaped_into_one_pile_are_one_violation_with_the_pile_box():
    # three bags side by side, touching, seen on a panning camera: one pile, boxed whole as evidence
    bags = [(100, 300, 180, 380), (180, 310, 260, 380), (255, 290, 330, 380)]
    frames = [(t * 0.5, [det(t * 0.5, "garbage", (x1 - 40 * t, y1, x2 - 40 * t, y2), conf=0.5 + 0.1 * k, idx=k)
                         for k, (x1, y1, x2, y2) in enumerate(bags)], shift(40 * t)) for t in range(6)]
    vs, tracks = run(frames)
    assert len(vs) == 1 and vs[0].hits == 6 and set(vs[0].track_ids) == {t.id for t in tracks} and len(tracks) == 3
    t = vs[0].best.t_s
    assert vs[0].best.box == (100 - 80 * t, 290, 330 - 80 * t, 380)
    # parked cars touching in a row stay one violation each: only garbage merges touching tracks
    cars = [(t * 0.5, [det(t * 0.5, "parking", (100 + 120 * k, 300, 220 + 120 * k, 360), idx=k) for k in range(3)],
             shift(0)) for t in range(6)]
    assert len(run(cars)[0]) == 3


def test_occlusion_gap_is_bridged_and_blips_are_dropped():
    box = (400, 300, 520, 400)
    frames = [(t, [det(t, "stall", box)] if t not in (2.0, 2.5) else [], shift(0)) for t in np.arange(0, 5, 0.5)]
    frames.append((5.0, [det(5.0, "parking", (10, 10, 60, 60))], shift(0)))  # a single-frame blip
    vs, _ = run(frames)
    assert [(v.category, v.hits) for v in vs] == [("stall", 8)]


def test_vehicle_moving_on_its_own_is_not_parking():
    # static camera; the "parked" car moves one box height per 0.5 s: a car driving past
    driving = [(t * 0.5, [det(t * 0.5, "parking", (100 + 60 * t, 300, 220 + 60 * t, 360))], shift(0)) for t in range(6)]
    assert run(driving)[0] == []
    parked = [(t * 0.5, [det(t * 0.5, "parking", (100, 300, 220, 360))], shift(0)) for t in range(6)]
    assert len(run(parked)[0]) == 1


def test_object_seen_again_after_a_pan_away_and_back_is_one_violation():
    # the camera pans 1000 px away for 6 s and back: the stall leaves the view and returns to the same
    # reference place; a second stall that appears meanwhile elsewhere stays a violation of its own
    box = (400, 300, 520, 400)
    frames = [(t, [det(t, "stall", box)], shift(0)) for t in (0, 1, 2)]
    frames += [(t, [det(t, "stall", (100, 300, 220, 400))] if t == 5 or t == 6 else [], shift(1000)) for t in (3, 4, 5, 6, 7)]
    frames += [(t, [det(t, "stall", box)], shift(0)) for t in (9, 10, 11)]
    vs, _ = run(frames)
    assert [(v.start_s, v.end_s, v.hits) for v in vs] == [(0, 11, 6), (5, 6, 2)]


def test_same_place_after_long_absence_is_a_new_pass():
    box = (400, 300, 520, 400)
    frames = [(t, [det(t, "garbage", box)], shift(0)) for t in (0, 0.5, 1, 1.5)]
    frames += [(t, [det(t, "garbage", box)], shift(0)) for t in (20, 20.5, 21, 21.5)]
    assert len(run(frames)[0]) == 2


@pytest.mark.parametrize("s", [0.8, 1.0, 1.25])
def test_warp_box_round_trip(s):
    m = shift(30, -12, s)
    b = (10.0, 20.0, 110.0, 220.0)
    back = warp_box(warp_box(b, m), np.linalg.inv(m))
    assert iou(b, back) > 0.999


def test_box_the_model_calls_more_likely_a_hard_negative_is_ignored():
    car = (100, 300, 220, 360)
    frames = []
    for t in range(6):
        legal = Detection(0, t * 0.5, "vehicle", None, 0.8, car)
        frames.append((t * 0.5, [det(t * 0.5, "parking", car, conf=0.5), legal], shift(0)))
    assert run(frames)[0] == []
    frames = [(t * 0.5, [det(t * 0.5, "parking", car, conf=0.9), Detection(0, t * 0.5, "vehicle", None, 0.6, car)],
               shift(0)) for t in range(6)]
    assert len(run(frames)[0]) == 1


def test_nested_box_is_part_of_a_stall_but_a_second_vehicle_in_a_row():
    """A stall's canopy inside the stall's box is the same stall; a motorbike parked in front of another,
    its box inside the other's, is a second violation (configs/default.yaml: fold_nested)."""
    outer, inner = (300, 200, 460, 330), (330, 230, 450, 330)  # inner lies wholly inside outer
    for cat, expected in (("stall", 1), ("parking", 2)):
        frames = [(t * 0.5, [det(t * 0.5, cat, outer, 0.9), det(t * 0.5, cat, inner, 0.7)], shift(0)) for t in range(6)]
        assert len(run(frames)[0]) == expected, cat
    folding = CFG.model_copy(update={"categories": {
        k: cc.model_copy(update={"fold_nested": True}) for k, cc in CFG.categories.items()}})
    assert len(run(frames, folding)[0]) == 1


def test_a_box_given_two_violation_classes_counts_once_for_the_surer_one():
    # a van on the sidewalk that the detector also scores as a stall: one parking violation, no stall
    box = (300, 200, 420, 300)
    frames = [(t, [det(t, "parking", box, 0.8), det(t, "stall", (302, 198, 418, 302), 0.3)], shift(0)) for t in range(4)]
    vs, _ = run(frames)
    assert [v.category for v in vs] == ["parking"]
    # each class is weighed against its own threshold: a stall at 2x its threshold beats parking at 1.3x
    thr = {"garbage": 0.25, "parking": 0.45, "stall": 0.25}
    cfg = CFG.model_copy(update={"categories": {c: cc.model_copy(update={"confidence": thr[c]})
                                                for c, cc in CFG.categories.items()}})
    stall, parking = 2.0 * thr["stall"], 1.3 * thr["parking"]
    assert stall < parking  # raw confidences alone would pick parking
    frames = [(t, [det(t, "parking", box, parking), det(t, "stall", box, stall)], shift(0)) for t in range(4)]
    vs, _ = run(frames, cfg)
    assert [v.category for v in vs] == ["stall"]
