"""Sprites of the "city" style: vehicles, stalls and rubbish the default renderer never draws.

Cargo tricycles (电动三轮) and minivans (面包车) instead of saloon cars, ground-blanket stalls (地摊) and
big-umbrella fruit stalls instead of canopy tables, foam boxes (泡沫箱) and woven sacks (编织袋) instead of
bin bags. Same conventions as sprites.py: BGRA at PPM pixels per metre, cropped tight, lit by the look,
so the projected opaque pixels are exactly the labelled box.
"""

from __future__ import annotations

import cv2
import numpy as np

from .sprites import PPM, Canvas, _person_style, bgra, jitter
from .textures import Look, apply_look

TRICYCLE_COLOURS = [(170, 100, 30), (40, 40, 190), (60, 140, 60), (150, 150, 150), (30, 150, 220)]
VAN_COLOURS = [(240, 240, 240), (200, 200, 205), (150, 110, 60), (110, 110, 115), (60, 40, 30)]
SACK_COLOURS = [(225, 230, 235), (180, 205, 215), (200, 160, 110), (215, 215, 200)]
SACK_STRIPES = [(40, 40, 190), (170, 90, 30), (50, 140, 50)]
BLANKET_COLOURS = [(40, 40, 160), (140, 60, 30), (30, 110, 40), (60, 60, 60), (120, 40, 120)]
UMBRELLA_COLOURS = [(30, 30, 210), (190, 110, 20), (30, 170, 240), (40, 140, 40)]
CRATE_COLOURS = [(40, 40, 200), (170, 100, 20), (50, 150, 60), (30, 150, 230)]


# vehicles -------------------------------------------------------------------------------------
def tricycle_textures(rng: np.random.Generator, look: Look) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(side, rear, front) of one electric cargo tricycle; the side has its front at the right end."""
    st = {
        "length": rng.uniform(2.5, 3.2), "width": rng.uniform(1.05, 1.3), "bed": rng.uniform(0.55, 0.7),
        "wall": rng.uniform(0.3, 0.5), "cab": rng.random() < 0.5, "cab_h": rng.uniform(1.55, 1.85),
        "body": jitter(rng, TRICYCLE_COLOURS[rng.integers(len(TRICYCLE_COLOURS))], 15),
        "cargo": int(rng.integers(0, 3)), "seed": int(rng.integers(1 << 30)),
    }
    return _tricycle_side(st, look), _tricycle_end(st, look, True), _tricycle_end(st, look, False)


def _tricycle_side(st: dict, look: Look) -> np.ndarray:
    L, bed, wall, body = st["length"], st["bed"], st["wall"], st["body"]
    cv = Canvas(L, st["cab_h"] + 0.6)
    tyre, metal = bgra((25, 25, 25)), bgra((70, 70, 75))
    split = L * 0.62  # cargo bed behind, rider's part in front
    cv.rect(0.05, bed - 0.08, split, bed, metal)  # chassis rail
    cv.rect(0.0, bed, split, bed + wall, body)  # bed side wall
    cv.line(0.0, bed + wall * 0.5, split, bed + wall * 0.5, bgra(np.asarray(body[:3]) * 0.7), 0.03)
    _cargo(cv, np.random.default_rng(st["seed"]), 0.1, split - 0.1, bed + wall, st["cargo"])
    if st["cab"]:
        cv.poly([(split, bed - 0.05), (L - 0.05, bed - 0.05), (L, bed + 0.5), (L - 0.25, st["cab_h"]),
                 (split, st["cab_h"])], body)
        cv.poly([(split + 0.12, bed + 0.55), (L - 0.12, bed + 0.55), (L - 0.3, st["cab_h"] - 0.1),
                 (split + 0.12, st["cab_h"] - 0.1)], bgra((80, 65, 55)))
    else:
        cv.rect(split + 0.05, bed, split + 0.45, bed + 0.12, bgra((30, 30, 30)))  # seat
        cv.line(split + 0.45, bed, L - 0.3, bed - 0.05, body, 0.12)  # footboard
        cv.line(L - 0.3, 0.3, L - 0.45, bed + 0.55, metal, 0.05)  # fork and steering column
        cv.line(L - 0.6, bed + 0.55, L - 0.3, bed + 0.6, bgra((30, 30, 30)), 0.04)  # handlebar
        cv.poly([(L - 0.45, 0.45), (L - 0.2, 0.5), (L - 0.3, bed + 0.3), (L - 0.5, bed + 0.2)], body)
    for wx in (0.45, L - 0.32):
        cv.ring(wx, 0.27, 0.24, tyre, 0.07)
        cv.ellipse(wx, 0.27, 0.08, 0.08, bgra((160, 160, 160)))
    cv.shadow(0.1, L - 0.1)
    return cv.done(look)


def _tricycle_end(st: dict, look: Look, rear: bool) -> np.ndarray:
    W, bed, wall, body = st["width"], st["bed"], st["wall"], st["body"]
    cv = Canvas(W, st["cab_h"] + 0.6)
    tyre = bgra((25, 25, 25))
    if rear:
        for wx in (0.02, W - 0.2):
            cv.rect(wx, 0.0, wx + 0.18, 0.5, tyre)
        cv.rect(0.1, bed - 0.1, W - 0.1, bed, bgra((70, 70, 75)))
        if st["cab"] or st["cargo"]:
            cv.rect(0.2, bed + wall, W - 0.2, st["cab_h"] if st["cab"] else bed + wall + 0.45,
                    bgra(np.asarray(body[:3]) * 0.8) if st["cab"] else jitter(np.random.default_rng(st["seed"]),
                                                                                SACK_COLOURS[0], 10))
        cv.rect(0.0, bed, W, bed + wall, body)
        cv.rect(W / 2 - 0.2, bed + 0.05, W / 2 + 0.2, bed + 0.17, bgra((30, 190, 230)))  # yellow plate
        for lx in (0.04, W - 0.14):
            cv.rect(lx, bed + wall - 0.15, lx + 0.1, bed + wall - 0.03, bgra((40, 40, 210)))
    else:
        cx = W / 2
        cv.rect(cx - 0.1, 0.0, cx + 0.1, 0.5, tyre)
        top = st["cab_h"] if st["cab"] else bed + 0.7
        cv.poly([(cx - 0.35, 0.4), (cx + 0.35, 0.4), (cx + 0.45, top), (cx - 0.45, top)], body)
        if st["cab"]:
            cv.rect(cx - 0.38, bed + 0.5, cx + 0.38, top - 0.1, bgra((85, 70, 60)))
        else:
            cv.line(cx - 0.35, top + 0.05, cx + 0.35, top + 0.05, bgra((30, 30, 30)), 0.04)
        cv.ellipse(cx, bed + 0.15, 0.1, 0.07, bgra((225, 240, 250)))
        # the bed behind is wider than the cab: its corners show on both sides
        cv.rect(0.0, bed, 0.2, bed + wall, body)
        cv.rect(W - 0.2, bed, W, bed + wall, body)
    cv.shadow(0.0, W)
    return cv.done(look)


def _cargo(cv: Canvas, rng: np.random.Generator, x0: float, x1: float, y: float, kind: int) -> None:
    """What a parked tricycle carries above its bed wall: nothing, sacks or stacked crates."""
    x = x0
    while kind and x < x1 - 0.3:
        w = rng.uniform(0.35, 0.6)
        if kind == 1:
            cv.ellipse(x + w / 2, y + 0.12, w / 2, 0.18, jitter(rng, SACK_COLOURS[rng.integers(len(SACK_COLOURS))], 10))
        else:
            cv.rect(x, y, x + w, y + rng.uniform(0.2, 0.45), jitter(rng, CRATE_COLOURS[rng.integers(len(CRATE_COLOURS))], 15))
        x += w + 0.05


def van_textures(rng: np.random.Generator, look: Look) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(side, rear, front) of one boxy minivan (面包车); the side has its front at the right end."""
    st = {
        "length": rng.uniform(3.8, 4.5), "width": rng.uniform(1.55, 1.7), "height": rng.uniform(1.8, 2.0),
        "body": jitter(rng, VAN_COLOURS[rng.integers(len(VAN_COLOURS))], 12),
        "glass": jitter(rng, (60, 50, 40), 12), "stripe": rng.random() < 0.4,
        "stripe_colour": jitter(rng, SACK_STRIPES[rng.integers(len(SACK_STRIPES))], 10),
    }
    return _van_side(st, look), _van_end(st, look, True), _van_end(st, look, False)


def _van_side(st: dict, look: Look) -> np.ndarray:
    L, H, body = st["length"], st["height"], st["body"]
    cv = Canvas(L, H)
    cv.rect(0.0, 0.25, L, H - 0.05, body)
    cv.poly([(L - 0.6, H - 0.05), (L - 0.05, 1.05), (L, 1.05), (L, 0.25), (L - 0.6, 0.25)], body)
    cv.rect(0.15, 1.15, L - 0.7, H - 0.2, st["glass"])
    for k in range(1, 4):
        x = 0.15 + (L - 0.85) * k / 4
        cv.line(x, 1.15, x, H - 0.2, body, 0.06)
    cv.line(L * 0.45, 0.3, L * 0.45, H - 0.1, bgra(np.asarray(body[:3]) * 0.6), 0.02)  # sliding door
    if st["stripe"]:
        cv.rect(0.0, 0.75, L, 0.88, st["stripe_colour"])
    cv.rect(0.0, 0.22, L, 0.36, bgra((35, 35, 35)))
    for wx in (0.55, L - 0.75):
        cv.ellipse(wx, 0.29, 0.29, 0.29, bgra((25, 25, 25)))
        cv.ellipse(wx, 0.29, 0.14, 0.14, bgra((150, 150, 150)))
    return cv.done(look)


def _van_end(st: dict, look: Look, rear: bool) -> np.ndarray:
    W, H, body = st["width"], st["height"], st["body"]
    cv = Canvas(W, H)
    for wx in (0.1, W - 0.3):
        cv.rect(wx, 0.0, wx + 0.2, 0.3, bgra((20, 20, 20)))
    cv.rect(0.0, 0.2, W, H - 0.05, body)
    cv.rect(0.15, 1.1 if rear else 1.0, W - 0.15, H - 0.15, st["glass"])
    if rear:
        for lx in (0.02, W - 0.12):
            cv.rect(lx, 0.55, lx + 0.1, 1.0, bgra((40, 40, 210)))
        cv.rect(W / 2 - 0.22, 0.45, W / 2 + 0.22, 0.59, bgra((150, 60, 20)))
    else:
        cv.rect(0.2, 0.5, W - 0.2, 0.7, bgra((40, 40, 40)))  # grille
        for lx in (0.05, W - 0.3):
            cv.rect(lx, 0.72, lx + 0.25, 0.85, bgra((225, 240, 250)))
        cv.rect(W / 2 - 0.22, 0.3, W / 2 + 0.22, 0.44, bgra((150, 60, 20)))
    cv.rect(0.0, 0.2, W, 0.3, bgra((40, 40, 40)))
    cv.shadow(0.0, W)
    return cv.done(look)


# rubbish ----------------------------------------------------------------------------------------
def rubbish(rng: np.random.Generator, look: Look, width: float) -> np.ndarray:
    """A dumped heap of white foam boxes and woven sacks, with scattered foam bits."""
    cv = Canvas(width + 0.6, 2.0)
    mid = (width + 0.6) / 2
    foam_share = rng.uniform(0.2, 0.8)
    items = []
    for _ in range(int(rng.integers(3, 10))):
        x = mid + rng.uniform(-0.45, 0.45) * width
        heap = 0.5 * max(0.0, 1 - abs(x - mid) / (width / 2 + 0.1))
        items.append((x, rng.uniform(0, heap), rng.random() < foam_share))
    for x, y, foam in sorted(items, key=lambda it: -it[1]):
        (_foam_box if foam else _sack)(cv, rng, x, y)
    for _ in range(int(rng.integers(4, 14))):  # broken foam and paper on the ground
        x = mid + rng.uniform(-0.65, 0.65) * width
        s = rng.uniform(0.03, 0.09)
        cv.poly([(x, 0.0), (x + s, 0.0), (x + s * 0.8, s * 0.6), (x + 0.1 * s, s * 0.5)],
                jitter(rng, (235, 238, 240), 12))
    cv.shadow(mid - width / 2, mid + width / 2)
    return cv.done(look)


def _foam_box(cv: Canvas, rng: np.random.Generator, x: float, y: float) -> None:
    """A white expanded-polystyrene fish/fruit box, lid askew or missing, with grey edges and dirt."""
    w, h = rng.uniform(0.45, 0.7), rng.uniform(0.25, 0.4)
    a = np.deg2rad(rng.uniform(-10, 10))
    c, s = np.cos(a), np.sin(a)

    def rot(px_: float, py_: float) -> tuple[float, float]:
        return x + px_ * c - py_ * s, y + px_ * s + py_ * c

    white = jitter(rng, (238, 240, 242), 10)
    cv.poly([rot(-w / 2, 0), rot(w / 2, 0), rot(w / 2, h), rot(-w / 2, h)], white)
    cv.poly([rot(-w / 2 + 0.03, h - 0.05), rot(w / 2 - 0.03, h - 0.05), rot(w / 2 - 0.03, h - 0.02),
             rot(-w / 2 + 0.03, h - 0.02)], jitter(rng, (190, 195, 200), 8))  # rim groove
    if rng.random() < 0.5:
        d = rng.uniform(-0.1, 0.1)
        cv.poly([rot(-w / 2 + d, h), rot(w / 2 + d, h), rot(w / 2 + d, h + 0.06), rot(-w / 2 + d, h + 0.06)],
                jitter(rng, (228, 232, 235), 8))
    if rng.random() < 0.6:
        cv.ellipse(*rot(rng.uniform(-w / 3, w / 3), rng.uniform(0.05, h - 0.1)), rng.uniform(0.03, 0.08), 0.03,
                   jitter(rng, (120, 140, 150), 20))


def _sack(cv: Canvas, rng: np.random.Generator, x: float, y: float) -> None:
    """A woven polypropylene sack: a lumpy pale oblong with coloured stripes and a tied ear."""
    w, h = rng.uniform(0.45, 0.75), rng.uniform(0.35, 0.6)
    base = jitter(rng, SACK_COLOURS[rng.integers(len(SACK_COLOURS))], 10)
    lump = rng.uniform(-0.04, 0.04, 6)
    cv.poly([(x - w / 2, y), (x + w / 2, y), (x + w / 2 + lump[0], y + h * 0.5), (x + w / 2 - 0.05 + lump[1], y + h),
             (x + lump[2], y + h + lump[3]), (x - w / 2 + 0.05 + lump[4], y + h), (x - w / 2 + lump[5], y + h * 0.5)],
            base)
    stripe = jitter(rng, SACK_STRIPES[rng.integers(len(SACK_STRIPES))], 10)
    for k in (0.3, 0.38):
        cv.line(x - w / 2 + 0.02, y + h * k, x + w / 2 - 0.02, y + h * k, stripe, 0.025)
    cv.poly([(x - 0.05, y + h), (x + 0.05, y + h), (x + 0.02, y + h + 0.1), (x - 0.03, y + h + 0.1)], base)


# stalls -----------------------------------------------------------------------------------------
def blanket_stall(rng: np.random.Generator, look: Look) -> tuple[np.ndarray, np.ndarray]:
    """(top, vendor): a ground blanket seen from above (rows along X, columns along Z) with goods laid
    out on it, and the vendor sitting on a stool behind it with a bundle of stock."""
    length, depth = rng.uniform(1.4, 2.4), rng.uniform(0.9, 1.4)
    rows, cols = round(length * PPM), round(depth * PPM)
    top = np.zeros((rows, cols, 4), np.uint8)
    cloth = np.asarray(jitter(rng, BLANKET_COLOURS[rng.integers(len(BLANKET_COLOURS))], 15), np.uint8)
    top[:] = cloth
    if rng.random() < 0.5:  # a checked or striped cloth
        step = int(rng.integers(8, 20))
        top[::step, :, :3] = np.clip(cloth[:3].astype(int) + 50, 0, 255)
        top[:, ::step, :3] = np.clip(cloth[:3].astype(int) + 50, 0, 255)
    for _ in range(int(rng.integers(10, 30))):  # goods: shoes, toys, phone cases, socks
        r, c = int(rng.integers(4, rows - 12)), int(rng.integers(4, cols - 12))
        h_, w_ = int(rng.integers(5, 14)), int(rng.integers(5, 14))
        colour = tuple(int(v) for v in rng.integers(20, 250, 3)) + (255,)
        if rng.random() < 0.5:
            cv2.rectangle(top, (c, r), (c + w_, r + h_), colour, -1)
        else:
            cv2.ellipse(top, (c + w_ // 2, r + h_ // 2), (w_ // 2 + 1, h_ // 2 + 1), 0, 0, 360, colour, -1)
    top = apply_look(top, look)
    # the vendor: seated, so about 1.1 m tall, with a bag of stock beside the stool
    style = _person_style(rng)
    cv = Canvas(1.1, 1.25)
    cv.rect(0.35, 0.0, 0.75, 0.35, jitter(rng, (40, 40, 180), 20))  # plastic stool
    _seated(cv, style, 0.55)
    if rng.random() < 0.7:
        cv.ellipse(0.15, 0.2, 0.14, 0.2, jitter(rng, SACK_COLOURS[rng.integers(len(SACK_COLOURS))], 10))
    cv.shadow(0.2, 0.9)
    return top, cv.done(look)


def _seated(cv: Canvas, st: dict, x: float) -> None:
    """A person sitting on a low stool, seen from the front: knees up, shins to the ground."""
    sw = st["width"]
    seat, shoulder = 0.38, 0.38 + 0.55
    for side in (-1, 1):
        cv.line(x + side * 0.1, seat, x + side * 0.14, 0.5, st["trousers"], 0.13)  # thigh towards the camera
        cv.line(x + side * 0.14, 0.5, x + side * 0.14, 0.04, st["trousers"], 0.11)  # shin
        cv.ellipse(x + side * 0.14, 0.03, 0.07, 0.035, bgra((30, 30, 30)))
        cv.line(x + side * sw / 2, shoulder, x + side * 0.16, 0.55, st["shirt"], 0.09)  # arms on the knees
    cv.poly([(x - sw / 2, shoulder), (x + sw / 2, shoulder), (x + sw * 0.4, seat), (x - sw * 0.4, seat)], st["shirt"])
    cv.ellipse(x, shoulder + 0.12, 0.09, 0.11, st["skin"])
    cv.ellipse(x, shoulder + 0.15, 0.095, 0.08, st["hair"], arc=(180, 360))


def umbrella_stall(rng: np.random.Generator, look: Look, length: float, depth: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(front, side) of a fruit stall under one big umbrella: crates and baskets on the ground, a vendor
    standing beside them, no table."""
    st = {
        "colours": [jitter(rng, c, 15) for c in rng.choice(UMBRELLA_COLOURS, 2)],
        "plain": rng.random() < 0.4, "radius": rng.uniform(0.85, 1.15), "pole": rng.uniform(2.0, 2.4),
        "vendor": _person_style(rng), "seed": int(rng.integers(1 << 30)),
    }
    return _umbrella(st, look, length, vendor=True), _umbrella(st, look, depth, vendor=False)


def _umbrella(st: dict, look: Look, w: float, *, vendor: bool) -> np.ndarray:
    rng = np.random.default_rng(st["seed"])
    r, top = st["radius"], st["pole"]
    cw = max(w, 2 * r) + 0.2
    cv = Canvas(cw, top + 0.5)
    cx = cw / 2
    cv.line(cx, 0.0, cx, top, bgra((200, 200, 200)), 0.04)
    x = cx - w / 2
    while x < cx + w / 2 - 0.35:  # crates of fruit, sometimes two high
        cw_ = rng.uniform(0.4, 0.55)
        crate = jitter(rng, CRATE_COLOURS[rng.integers(len(CRATE_COLOURS))], 15)
        layers = int(rng.integers(1, 3))
        for k in range(layers):
            cv.rect(x, k * 0.3, x + cw_, k * 0.3 + 0.27, crate)
        fruit = jitter(rng, rng.choice([(30, 140, 240), (40, 50, 200), (60, 190, 230), (40, 160, 60)]), 15)
        for fx in np.arange(x + 0.06, x + cw_ - 0.04, 0.1):
            cv.ellipse(fx, layers * 0.3 + 0.02, 0.06, 0.05, fruit)
        x += cw_ + 0.03
    if vendor:
        from .sprites import _person

        _person(cv, st["vendor"], min(cw - 0.3, cx + w / 2 + 0.1), 0.0)
    n = 8
    for k in range(n):  # the canopy: a shallow dome of gores
        colour = st["colours"][0] if st["plain"] else st["colours"][k % 2]
        cv.ellipse(cx, top - 0.05, r, 0.45, colour, arc=(180 + 180 * k / n, 180 + 180 * (k + 1) / n + 1))
    cv.rect(cx - r, top - 0.1, cx + r, top - 0.02, st["colours"][1])  # valance
    cv.shadow(cx - w / 2, cx + w / 2)
    return cv.done(look)
