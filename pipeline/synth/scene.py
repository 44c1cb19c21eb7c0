"""A seeded random street, the camera's trajectory through it and the objects in it (world metres).

World frame: X to the right of the direction of travel, Y up, Z along the street. The road is
centred on X = 0 (traffic drives on the right: +X lanes go +Z); each side has a kerb-side strip
(marked bays, hatched no-parking zones, yellow kerbs), a kerb, a tiled sidewalk and shopfronts.
The camera always films from the right-hand side (sidewalk on foot or kerb lane in a slow vehicle).
Objects are textured planes standing on the ground; their label follows from WHERE they stand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import sprites
from .realbags import RealBags
from .sprites import PPM
from .textures import FACADE_PPM, GROUND_PPM, KerbSegment, Look, draw_building, draw_ground, random_look

CATEGORY = {"garbage": "garbage", "illegal_parking": "parking", "stall": "stall"}
NEAR = 0.3  # metres; geometry closer to the camera than this is clipped
CORRIDOR = 0.9  # metres either side of the camera's path kept free of objects


@dataclass
class Face:
    """A textured plane: world point of pixel (0, 0) plus world steps per column (u) and row (v)."""

    tex: np.ndarray
    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray


@dataclass
class Thing:
    """An object on the ground: a billboard (depth 0) or a box with end and side textures.

    `role` is the ground-truth meaning (violation category or negative kind, None for clutter) and
    `cls` the detector class (None = unlabelled). Footprint: X in [x0, x0 + width], Z from z0 (at
    t = 0, moving with vz) over `depth`.
    """

    role: str | None
    cls: int | None
    x0: float
    z0: float
    end: list[np.ndarray]  # end-face texture per animation frame
    side: np.ndarray | None = None
    vz: float = 0.0
    anim_hz: float = 0.0
    flip_side: bool = False

    @property
    def width(self) -> float:
        return self.end[0].shape[1] / PPM

    @property
    def depth(self) -> float:
        return 0.0 if self.side is None else self.side.shape[1] / PPM

    def z_at(self, t: float) -> float:
        return self.z0 + self.vz * t

    def footprint(self, margin: float = 0.0) -> tuple[float, float, float, float]:
        return (self.x0 - margin, self.x0 + self.width + margin, self.z0 - margin,
                self.z0 + self.depth + margin)

    def faces(self, t: float, cam: np.ndarray) -> list[Face]:
        """The faces a camera at `cam` can see at time t (a box shows at most one end and one side)."""
        z0 = self.z_at(t)
        tex = self.end[int(t * self.anim_hz) % len(self.end)]
        out = []
        if cam[2] < z0 or (self.depth > 0 and cam[2] > z0 + self.depth):
            z = z0 if cam[2] < z0 else z0 + self.depth
            out.append(_upright(tex, np.array([self.x0, 0, z]), np.array([1.0, 0, 0])))
        if self.side is not None and not self.x0 <= cam[0] <= self.x0 + self.width:
            x = self.x0 if cam[0] < self.x0 else self.x0 + self.width
            side = self.side[:, ::-1] if self.flip_side else self.side
            out.append(_upright(side, np.array([x, 0, z0]), np.array([0, 0, 1.0])))
        return out


def _upright(tex: np.ndarray, foot: np.ndarray, along: np.ndarray) -> Face:
    """A vertical face whose bottom-left stands at `foot`, extending along `along`."""
    h = tex.shape[0] / PPM
    return Face(tex, foot + np.array([0, h, 0]), along / PPM, np.array([0, -1.0 / PPM, 0]))


@dataclass
class Rig:
    """Camera trajectory: forward motion, slow pan, hand shake and roll, fixed intrinsics (hfov)."""

    x: float
    height: float
    z0: float
    speed: float
    pitch: float
    hfov: float
    pan_amp: float
    pan_period: float
    shake: float  # radians of jitter
    roll: float  # radians of roll amplitude
    step_hz: float
    phases: np.ndarray

    def pose(self, t: float) -> tuple[np.ndarray, float, float, float]:
        """(position, yaw, pitch, roll) at time t; yaw > 0 turns right, pitch > 0 looks down."""
        p = self.phases
        w = 2 * np.pi * self.step_hz * t
        bob = 0.02 * np.sin(w + p[0]) if self.step_hz else 0.0
        pos = np.array([self.x + 0.05 * np.sin(0.5 * w + p[1]), self.height + bob, self.z0 + self.speed * t])
        jit = [np.sin(w * k + p[2 + k]) / k for k in (1, 2, 3)]
        yaw = self.pan_amp * np.sin(2 * np.pi * t / self.pan_period + p[5]) + self.shake * (jit[0] + jit[2])
        pitch = self.pitch + self.shake * (jit[1] + 0.5 * np.sin(0.7 * w + p[6]))
        roll = self.roll * np.sin(0.5 * w + p[7])
        return pos, float(yaw), float(pitch), float(roll)


@dataclass
class Street:
    """Cross-section (X) and extent (Z) of one street plus its kerb-side markings per side (+1/-1)."""

    lane_w: float
    lanes: int
    strip_w: float
    walk_w: float
    z_range: tuple[float, float]
    segments: dict[int, list[KerbSegment]] = field(default_factory=dict)

    @property
    def kerb(self) -> float:
        return self.lanes * self.lane_w + self.strip_w

    @property
    def facade(self) -> float:
        return self.kerb + self.walk_w

    def segment_at(self, side: int, z0: float, z1: float) -> KerbSegment | None:
        """The kerb segment fully containing [z0, z1] on one side, if any."""
        for seg in self.segments[side]:
            if seg.z0 <= z0 and z1 <= seg.z1:
                return seg
        return None

    def carve(self, side: int, z0: float, z1: float, kind: str) -> None:
        """Overwrite [z0, z1] of one side's kerb strip with a new kind of marking."""
        keep = []
        for seg in self.segments[side]:
            if seg.z1 <= z0 or seg.z0 >= z1:
                keep.append(seg)
                continue
            if seg.z0 < z0:
                keep.append(KerbSegment(seg.z0, z0, "plain" if seg.kind == "bay" else seg.kind))
            if seg.z1 > z1:
                keep.append(KerbSegment(z1, seg.z1, "plain" if seg.kind == "bay" else seg.kind))
        keep.append(KerbSegment(z0, z1, kind))
        self.segments[side] = sorted(keep, key=lambda s: s.z0)


@dataclass
class Scene:
    """Everything needed to render any time t: street textures, buildings, objects, camera, look."""

    street: Street
    rig: Rig
    look: Look
    ground: Face
    buildings: list[Face]
    things: list[Thing]
    device: str


def random_street(rng: np.random.Generator) -> Street:
    """Lane count and widths and sidewalk width; extent and markings come with `mark_kerbs`."""
    return Street(lane_w=rng.uniform(3.0, 3.6), lanes=int(rng.integers(1, 3)), strip_w=rng.uniform(2.2, 2.6),
                  walk_w=rng.uniform(4.0, 7.0), z_range=(0.0, 0.0))


def mark_kerbs(rng: np.random.Generator, street: Street, z_range: tuple[float, float]) -> None:
    """Set the street's extent and a random sequence of kerb-side markings on both sides."""
    street.z_range = z_range
    for side in (-1, 1):
        segs, z = [], z_range[0]
        while z < z_range[1]:
            kind = str(rng.choice(["bay", "hatch", "yellow", "plain"], p=[0.45, 0.15, 0.15, 0.25]))
            length = 6.0 * int(rng.integers(2, 6)) if kind == "bay" else rng.uniform(8, 25)
            segs.append(KerbSegment(z, z + length, kind))
            z += length
        street.segments[side] = segs


def random_rig(rng: np.random.Generator, street: Street, z0: float) -> Rig:
    """A walking inspector on the right sidewalk (70 %) or a slow vehicle in the right lane."""
    walking = rng.random() < 0.7
    if walking:
        x = street.kerb + rng.uniform(0.3, 0.7) * street.walk_w
        height, speed, shake = rng.uniform(1.2, 1.7), rng.uniform(0.8, 2.0), 0.004
        step_hz = rng.uniform(1.6, 2.2)
    else:
        x = street.kerb - street.strip_w - street.lane_w / 2
        height, speed, shake = rng.uniform(1.2, 1.6), rng.uniform(2.0, 5.0), 0.002
        step_hz = rng.uniform(0.8, 1.5)
    return Rig(x=x, height=height, z0=z0, speed=speed, pitch=np.deg2rad(rng.uniform(2, 10)),
               hfov=np.deg2rad(rng.uniform(55, 75)), pan_amp=np.deg2rad(rng.uniform(0, 15)),
               pan_period=rng.uniform(8, 20), shake=shake * rng.uniform(0.5, 2.0),
               roll=np.deg2rad(rng.uniform(0.3, 2.0)), step_hz=step_hz, phases=rng.uniform(0, 2 * np.pi, 8))


class Placer:
    """Places objects without overlapping footprints, keeping the camera's own path clear."""

    def __init__(self, rng: np.random.Generator, street: Street, rig: Rig, look: Look,
                 real_bags: RealBags | None) -> None:
        self.rng, self.street, self.rig, self.look, self.real_bags = rng, street, rig, look, real_bags
        self.things: list[Thing] = []

    def add(self, thing: Thing, x0: float | None, *, static: bool = True, avoid_camera: bool = True) -> bool:
        """Keep `thing` at left edge x0 unless there is no room (None), it overlaps a static object
        or it stands in the camera's path."""
        if x0 is None:
            return False
        thing.x0 = x0
        fx0, fx1, fz0, fz1 = thing.footprint(0.3)
        if avoid_camera and fx0 < self.rig.x + CORRIDOR and fx1 > self.rig.x - CORRIDOR:
            return False
        for other in self.things:
            if other.vz == 0 and static:
                ox0, ox1, oz0, oz1 = other.footprint()
                if fx0 < ox1 and fx1 > ox0 and fz0 < oz1 and fz1 > oz0:
                    return False
        self.things.append(thing)
        return True

    def walk_x(self, side: int, width: float, where: str) -> float | None:
        """Left edge X for an object of `width` on a sidewalk: by the kerb, mid-walk or at the shops.

        On the camera's sidewalk the camera's corridor is kept free; None when nothing fits.
        """
        s, rng = self.street, self.rng
        lo, hi = s.kerb + 0.1, s.facade - 0.2
        bands = [(lo, hi)]
        if side > 0 and lo < self.rig.x < hi:
            bands = [(lo, self.rig.x - CORRIDOR), (self.rig.x + CORRIDOR, hi)]
        bands = [(a, b - width) for a, b in bands if b - a >= width]
        if not bands:
            return None
        if where == "kerb":
            a, b = bands[0]
            b = min(b, a + 0.8)
        elif where == "facade":
            a, b = bands[-1]
            a = max(a, b - 0.4)
        else:
            a, b = bands[int(rng.integers(len(bands)))]
        x = rng.uniform(a, b)
        return x if side > 0 else -x - width

    def strip_x(self, side: int, width: float) -> float:
        """Left edge X for an object standing in the kerb-side strip, close to the kerb."""
        x = self.street.kerb - width - self.rng.uniform(0.15, 0.4)
        return x if side > 0 else -x - width

    # violations ---------------------------------------------------------------------------
    def garbage(self, z: float) -> bool:
        rng, side = self.rng, self._side(0.75)
        if self.real_bags is not None and rng.random() < 0.5:
            tex = self.real_bags.pile(rng, self.look)
        else:
            tex = sprites.garbage_pile(rng, self.look, rng.uniform(0.6, 2.0))
        w = tex.shape[1] / PPM
        x = self.walk_x(side, w, str(rng.choice(["kerb", "mid", "facade"]))) if rng.random() < 0.8 \
            else self.strip_x(side, w)
        return self.add(Thing("garbage", 0, 0.0, z, [tex]), x)

    def parking(self, z: float) -> bool:
        rng, side = self.rng, self._side(0.8)
        kind = rng.choice(["sidewalk_car", "zone_car", "bikes"], p=[0.35, 0.3, 0.35])
        if kind == "bikes":
            ok = False
            for k in range(int(rng.integers(1, 4))):
                tex = sprites.two_wheeler(rng, self.look)
                x = self.walk_x(side, tex.shape[1] / PPM, "kerb" if rng.random() < 0.6 else "facade")
                ok |= self.add(Thing("illegal_parking", 1, 0.0, z + 0.7 * k, [tex]), x)
            return ok
        car = self._car(rng.random() < 0.5)
        car.role, car.cls, car.z0 = "illegal_parking", 1, z
        if kind == "sidewalk_car":
            x = self.walk_x(side, car.width, "kerb")
            return self.add(car, None if x is None else x - side * rng.uniform(0, 0.8))
        if not self.add(car, self.strip_x(side, car.width)):
            return False
        self.street.carve(side, z - rng.uniform(1, 4), z + car.depth + rng.uniform(1, 4),
                          str(rng.choice(["hatch", "yellow"])))
        return True

    def stall(self, z: float) -> bool:
        rng, side = self.rng, self._side(0.8)
        front, end = sprites.stall_textures(rng, self.look, rng.uniform(1.5, 3.0), rng.uniform(0.9, 1.4))
        x = self.walk_x(side, end.shape[1] / PPM, str(rng.choice(["kerb", "facade"])))
        return self.add(Thing("stall", 2, 0.0, z, [end], side=front), x)

    # negatives ----------------------------------------------------------------------------
    def _car(self, heading_fwd: bool, vz: float = 0.0) -> Thing:
        side_tex, rear, front = sprites.car_textures(self.rng, self.look)
        return Thing(None, None, 0.0, 0.0, [rear if heading_fwd else front], side=side_tex, vz=vz,
                     flip_side=not heading_fwd)

    def bay_car(self, z: float) -> bool:
        side = self._side(0.6)
        seg = self.street.segment_at(side, z, z + 5.0)
        if seg is None or seg.kind != "bay":
            return False
        car = self._car(self.rng.random() < 0.5)
        car.role, car.cls = "bay_parked_vehicle", 3
        car.z0 = seg.z0 + 6.0 * int((z - seg.z0) // 6.0) + (6.0 - car.depth) / 2
        return self.add(car, self.strip_x(side, car.width))

    def moving_car(self, t_meet: float) -> bool:
        """A car driving in a lane; it meets or overtakes the camera around t_meet.

        A car in the camera's own lane starts ahead and drives faster, so it never runs through it.
        """
        rng, s = self.rng, self.street
        oncoming = rng.random() < 0.5
        lane = int(rng.integers(0, s.lanes))
        v = rng.uniform(3, 12)
        car = self._car(not oncoming, vz=-v if oncoming else v)
        centre = (lane + 0.5) * s.lane_w
        cam_z = self.rig.z0 + self.rig.speed * t_meet
        if oncoming:
            car.z0 = cam_z + v * t_meet + rng.uniform(3, 10)
        elif abs(centre - self.rig.x) < s.lane_w / 2:
            car.vz = max(v, self.rig.speed + 2)
            car.z0 = self.rig.z0 + rng.uniform(8, 30)
        else:
            car.z0 = cam_z - v * t_meet + rng.uniform(5, 30)
        car.role, car.cls = "moving_vehicle", 3
        x0 = (-centre if oncoming else centre) - car.width / 2
        return self.add(car, x0, static=False, avoid_camera=False)

    def bin(self, z: float) -> bool:
        side = self._side(0.6)
        tex = sprites.tidy_bin(self.rng, self.look)
        x = self.walk_x(side, tex.shape[1] / PPM, str(self.rng.choice(["kerb", "facade"])))
        return self.add(Thing("bin", 4, 0.0, z, [tex]), x)

    def pedestrian(self, z: float) -> bool:
        rng = self.rng
        frames = sprites.person_frames(rng, self.look)
        side = self._side(0.6)
        x = self.walk_x(side, frames[0].shape[1] / PPM, "mid")
        v = rng.uniform(0.9, 1.6) * rng.choice([-1, 1])
        return self.add(Thing("pedestrian", 5, 0.0, z, frames, vz=v, anim_hz=abs(v) * 2.5), x, static=False)

    def shop_display(self, z: float) -> bool:
        side = self._side(0.6)
        front = sprites.shop_display(self.rng, self.look)
        end_w = int(self.rng.uniform(0.4, 0.7) * PPM)
        end = cv2.resize(front, (end_w, front.shape[0]), interpolation=cv2.INTER_AREA)
        w = end.shape[1] / PPM
        x = self.street.facade - w - 0.1 if side > 0 else -self.street.facade + 0.1
        return self.add(Thing("shop_display", None, 0.0, z, [end], side=front), x)

    def tree(self, z: float) -> bool:
        side = self._side(0.5)
        tex = sprites.tree(self.rng, self.look)
        w = tex.shape[1] / PPM
        x = self.street.kerb + 0.6 - w / 2
        return self.add(Thing(None, None, 0.0, z, [tex]), x if side > 0 else -x - w)

    def _side(self, p_right: float) -> int:
        return 1 if self.rng.random() < p_right else -1


VIOLATIONS = ("garbage", "parking", "stall")
STATIC_NEGATIVES = ("bay_car", "bin", "pedestrian", "shop_display")


def build_scene(rng: np.random.Generator, *, duration: float, density: float = 1.0,
                violations: int | None = None, real_bags: RealBags | None = None,
                mix: dict[str, float] | None = None, style: str = "default") -> Scene:
    """A street with a camera path of `duration` seconds, violations and hard negatives along it.

    Video mode (density 1) staggers the violations (default 2-6) so each passes the camera at a
    different time; dataset mode (density > 1) crowds the street so random frames show many objects.
    ``mix`` weights the violation kinds after the first three (more of a class the detector finds hard).
    ``style`` "city" draws another city's vehicles, stalls, rubbish and weather (city.py).
    """
    look, placer_type = _style(style, rng)
    street = random_street(rng)
    rig = random_rig(rng, street, 0.0)
    cam_end = rig.speed * duration
    mark_kerbs(rng, street, (-15.0, cam_end + 100.0))
    placer = placer_type(rng, street, rig, look, real_bags)
    n_viol = int(rng.integers(2, 7) * density) if violations is None else violations
    earliest = min(4.0, duration / 2) if density == 1 else 0.0
    for k in range(n_viol):
        z = rig.speed * rng.uniform(earliest, duration + 0.5) + rng.uniform(3, 8)
        if k < 3:
            kind = VIOLATIONS[k % 3]
        elif mix is None:
            kind = str(rng.choice(VIOLATIONS))
        else:
            w = np.array([mix.get(v, 0.0) for v in VIOLATIONS], float)
            kind = str(rng.choice(VIOLATIONS, p=w / w.sum()))
        for _ in range(10):
            if getattr(placer, kind)(z):
                break
            z += rng.uniform(1, 4)
    for _ in range(int(rng.integers(10, 20) * density)):
        getattr(placer, str(rng.choice(STATIC_NEGATIVES)))(rng.uniform(3, cam_end + 40))
    for _ in range(int(rng.integers(2, 6) * density)):
        placer.moving_car(rng.uniform(0, duration))
    for z in np.arange(rng.uniform(0, 10), cam_end + 80, rng.uniform(8, 14)):
        if rng.random() < 0.6:
            placer.tree(float(z))
    return Scene(street=street, rig=rig, look=look, ground=_ground(rng, street, look),
                 buildings=_buildings(rng, street, look), things=placer.things, device=_device(rng))


STYLES = ("default", "city")


def _style(style: str, rng: np.random.Generator) -> tuple[Look, type[Placer]]:
    """The look and the placer of a style (the default style draws exactly what it always drew)."""
    if style == "default":
        return random_look(rng), Placer
    if style == "city":
        from .city import CityPlacer  # imported here: city.py builds on this module
        from .weather import city_look

        return city_look(rng), CityPlacer
    raise ValueError(f"unknown renderer style {style!r}: one of {', '.join(STYLES)}")


def _ground(rng: np.random.Generator, street: Street, look: Look) -> Face:
    x_range = (-street.facade - 0.5, street.facade + 0.5)
    tex = draw_ground(rng, look, x_range=x_range, z_range=street.z_range, kerb_x=street.kerb,
                      strip_w=street.strip_w, lane_w=street.lane_w, lanes=street.lanes,
                      segments=street.segments)
    step = 1.0 / GROUND_PPM
    return Face(tex, np.array([x_range[0], 0.0, street.z_range[0]]), np.array([step, 0, 0]),
                np.array([0, 0, step]))


def _buildings(rng: np.random.Generator, street: Street, look: Look) -> list[Face]:
    """Facades on both sides; the right side runs its texture along -Z so its signs read correctly."""
    faces = []
    for side in (-1, 1):
        z = street.z_range[0]
        while z < street.z_range[1]:
            width, height = rng.uniform(6, 18), rng.uniform(7, 25)
            tex = draw_building(rng, look, width, height)
            w = tex.shape[1] / FACADE_PPM
            step = 1.0 / FACADE_PPM
            x = side * street.facade
            start = z if side < 0 else z + w
            faces.append(Face(tex, np.array([x, tex.shape[0] * step, start]), np.array([0, 0, -side * step]),
                              np.array([0, -step, 0])))
            z += w
    return faces


def _device(rng: np.random.Generator) -> str:
    """A bodycam-style device id such as 'DSJ-A8 0012345'."""
    model = str(rng.choice(["DSJ-A8", "DSJ-V7", "ZFY-K3", "DSJ-T9"]))
    return f"{model} {int(rng.integers(0, 10_000_000)):07d}"
