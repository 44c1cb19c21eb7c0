"""The "city" style: another city's streets, for measuring how vaudit learns from an office's reviews.

Same street geometry, camera and labelling rules as the default style (scene.py): what stands where
decides the label. What differs is what stands there and the weather: cargo tricycles and minivans
parked on the pavement or in no-parking zones (and driving or parked in bays as vehicles), ground-blanket
and big-umbrella stalls, heaps of foam boxes and woven sacks, under rain, fog or sodium-lit dusk. The
shipped model was trained on none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .city_sprites import blanket_stall, rubbish, tricycle_textures, umbrella_stall, van_textures
from .scene import Face, Placer, Thing, _upright
from .sprites import PPM

GROUND_LIFT = 0.01  # metres: a blanket lies just above the pavement texture


@dataclass
class FlatThing(Thing):
    """Something lying on the ground (a blanket of goods: ``top``, rows along +X, columns along +Z) with an
    upright part (``end``: the vendor) on its far edge as seen from the camera."""

    top: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.top.shape[0] / PPM

    @property
    def depth(self) -> float:
        return self.top.shape[1] / PPM

    def faces(self, t: float, cam: np.ndarray) -> list[Face]:
        z0 = self.z_at(t)
        step = 1.0 / PPM
        ground = Face(self.top, np.array([self.x0, GROUND_LIFT, z0]), np.array([0, 0, step]), np.array([step, 0, 0]))
        tex = self.end[0]
        x = self.x0 + (self.width - tex.shape[1] / PPM) / 2
        far = z0 + self.depth if cam[2] < z0 + self.depth / 2 else z0
        return [ground, _upright(tex, np.array([x, 0.0, far]), np.array([1.0, 0, 0]))]


class CityPlacer(Placer):
    """Placer with the city's own violations and vehicles; negatives and clutter as in the default style."""

    def _vehicle(self, make: Callable, heading_fwd: bool, vz: float = 0.0) -> Thing:
        side_tex, rear, front = make(self.rng, self.look)
        return Thing(None, None, 0.0, 0.0, [rear if heading_fwd else front], side=side_tex, vz=vz,
                     flip_side=not heading_fwd)

    def _car(self, heading_fwd: bool, vz: float = 0.0) -> Thing:
        """City traffic: mostly minivans and cargo tricycles, some saloon cars."""
        kind = int(self.rng.choice(3, p=[0.45, 0.35, 0.2]))
        if kind == 2:
            return super()._car(heading_fwd, vz)
        return self._vehicle(van_textures if kind == 0 else tricycle_textures, heading_fwd, vz)

    def garbage(self, z: float) -> bool:
        rng, side = self.rng, self._side(0.75)
        tex = rubbish(rng, self.look, rng.uniform(0.6, 1.8))
        w = tex.shape[1] / PPM
        x = self.walk_x(side, w, str(rng.choice(["kerb", "mid", "facade"]))) if rng.random() < 0.8 \
            else self.strip_x(side, w)
        return self.add(Thing("garbage", 0, 0.0, z, [tex]), x)

    def parking(self, z: float) -> bool:
        rng, side = self.rng, self._side(0.8)
        kind = str(rng.choice(["pavement_tricycle", "pavement_van", "zone"], p=[0.45, 0.25, 0.3]))
        if kind == "zone":
            v = self._car(rng.random() < 0.5)
        else:
            v = self._vehicle(tricycle_textures if kind == "pavement_tricycle" else van_textures, rng.random() < 0.5)
        v.role, v.cls, v.z0 = "illegal_parking", 1, z
        if kind != "zone":
            x = self.walk_x(side, v.width, "kerb")
            return self.add(v, None if x is None else x - side * rng.uniform(0, 0.5))
        if not self.add(v, self.strip_x(side, v.width)):
            return False
        self.street.carve(side, z - rng.uniform(1, 4), z + v.depth + rng.uniform(1, 4),
                          str(rng.choice(["hatch", "yellow"])))
        return True

    def stall(self, z: float) -> bool:
        rng, side = self.rng, self._side(0.8)
        if rng.random() < 0.55:
            top, vendor = blanket_stall(rng, self.look)
            thing: Thing = FlatThing("stall", 2, 0.0, z, [vendor], top=top)
            where = str(rng.choice(["kerb", "mid", "facade"]))
        else:
            front, end = umbrella_stall(rng, self.look, rng.uniform(1.0, 1.8), rng.uniform(0.8, 1.2))
            thing = Thing("stall", 2, 0.0, z, [end], side=front)
            where = str(rng.choice(["kerb", "facade"]))
        return self.add(thing, self.walk_x(side, thing.width, where))
