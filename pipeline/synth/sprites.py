"""Object textures (BGRA sprites at a fixed metric scale) for everything placed in the street.

Each sprite is drawn with OpenCV primitives, cropped tight to its opaque pixels and lit with the
street's look, so its pixel size divided by PPM is the object's size in metres and its visible
pixel box after projection is exactly the labelled box. Random shapes and colours per object are
the point: the detector must learn categories, not one drawing.
"""

from __future__ import annotations

import cv2
import numpy as np

from .textures import Look, apply_look

PPM = 80.0  # sprite pixels per metre
AA = cv2.LINE_AA
CAR_COLOURS = [(235, 235, 235), (190, 190, 195), (40, 40, 40), (30, 30, 170), (150, 90, 30),
               (60, 60, 60), (120, 130, 140), (20, 60, 120), (210, 200, 170)]
BAG_COLOURS = [(25, 25, 25), (40, 40, 40), (225, 225, 225), (170, 90, 30), (60, 140, 60),
               (130, 130, 130), (40, 50, 170), (70, 200, 220)]
BIN_COLOURS = [(50, 130, 40), (160, 90, 30), (110, 110, 110), (40, 40, 170)]


def px(m: float) -> int:
    """Metres to sprite pixels."""
    return round(m * PPM)


def bgra(c) -> tuple[int, int, int, int]:
    """An opaque BGRA colour from any BGR sequence."""
    return int(c[0]), int(c[1]), int(c[2]), 255


def jitter(rng: np.random.Generator, c, amount: float = 20) -> tuple[int, int, int, int]:
    """A colour varied slightly around a base, as real paint and plastic vary."""
    return bgra(np.clip(np.asarray(c, float) + rng.uniform(-amount, amount, 3), 0, 255))


class Canvas:
    """A BGRA drawing surface in metres with y measured up from the ground line."""

    def __init__(self, w_m: float, h_m: float) -> None:
        self.img = np.zeros((px(h_m) + 1, px(w_m) + 1, 4), np.uint8)

    def p(self, x: float, y: float) -> tuple[int, int]:
        return px(x), self.img.shape[0] - 1 - px(y)

    def rect(self, x0, y0, x1, y1, c) -> None:
        cv2.rectangle(self.img, self.p(x0, y1), self.p(x1, y0), c, -1, AA)

    def poly(self, pts, c) -> None:
        cv2.fillPoly(self.img, [np.array([self.p(x, y) for x, y in pts], np.int32)], c, AA)

    def ellipse(self, x, y, rx, ry, c, angle: float = 0.0, arc=(0, 360)) -> None:
        cv2.ellipse(self.img, self.p(x, y), (max(1, px(rx)), max(1, px(ry))), angle, arc[0], arc[1],
                    c, -1, AA)

    def line(self, x0, y0, x1, y1, c, t_m: float) -> None:
        cv2.line(self.img, self.p(x0, y0), self.p(x1, y1), c, max(1, px(t_m)), AA)

    def ring(self, x, y, r, c, t_m: float) -> None:
        cv2.circle(self.img, self.p(x, y), px(r), c, max(1, px(t_m)), AA)

    def shadow(self, x0, x1) -> None:
        """A soft contact shadow (alpha < 0.5, so it never counts towards the object's box)."""
        sh = np.zeros_like(self.img)
        cx, cy = self.p((x0 + x1) / 2, 0)
        cv2.ellipse(sh, (cx, cy), (max(1, px((x1 - x0) / 2)), px(0.06)), 0, 0, 360, (0, 0, 0, 100),
                    -1, AA)
        sh = cv2.GaussianBlur(sh, (0, 0), 3)
        keep = self.img[..., 3:4].astype(np.float32) / 255
        self.img[:] = (self.img * keep + sh * (1 - keep)).astype(np.uint8)

    def done(self, look: Look) -> np.ndarray:
        """Crop to the non-transparent pixels and bake in the street lighting."""
        ys, xs = np.nonzero(self.img[..., 3])
        crop = self.img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        return apply_look(crop, look)


def garbage_pile(rng: np.random.Generator, look: Look, width: float) -> np.ndarray:
    """Clustered bags, cardboard boxes and loose bits; sometimes an overflowing bin in the middle."""
    cv = Canvas(width + 0.6, 2.0)
    mid = (width + 0.6) / 2
    if rng.random() < 0.25:
        _bin_body(cv, rng, mid - 0.35, 0.7, 1.0, open_lid=True)
    items = []
    for _ in range(int(rng.integers(4, 14))):
        x = mid + rng.uniform(-0.45, 0.45) * width
        heap = 0.45 * max(0.0, 1 - abs(x - mid) / (width / 2 + 0.1))
        items.append((x, rng.uniform(0, heap), rng.random() < 0.25))
    for x, y, is_box in sorted(items, key=lambda it: -it[1]):
        if is_box:
            _cardboard(cv, rng, x, y)
        else:
            _bag(cv, rng, x, y)
    for _ in range(int(rng.integers(3, 12))):
        x = mid + rng.uniform(-0.6, 0.6) * width
        cv.ellipse(x, 0.03, rng.uniform(0.03, 0.08), 0.025, jitter(rng, rng.integers(40, 240, 3), 0),
                   angle=float(rng.uniform(-30, 30)))
    cv.shadow(mid - width / 2, mid + width / 2)
    return cv.done(look)


def _bag(cv: Canvas, rng: np.random.Generator, x: float, y: float) -> None:
    """One rubbish bag: a shaded blob with a tied knot."""
    rx = rng.uniform(0.16, 0.32)
    ry = rx * rng.uniform(0.7, 1.05)
    base = np.asarray(BAG_COLOURS[rng.integers(len(BAG_COLOURS))], float)
    cv.ellipse(x, y + ry, rx, ry, jitter(rng, base * 0.7, 8), angle=float(rng.uniform(-20, 20)))
    cv.ellipse(x - rx * 0.15, y + ry * 1.1, rx * 0.75, ry * 0.7, jitter(rng, base, 10))
    cv.ellipse(x - rx * 0.3, y + ry * 1.4, rx * 0.25, ry * 0.2,
               jitter(rng, np.minimum(base + 60, 255), 5))
    cv.poly([(x - 0.05, y + 1.9 * ry), (x + 0.05, y + 1.9 * ry), (x, y + 2 * ry + 0.1)],
            jitter(rng, base * 0.8, 5))


def _cardboard(cv: Canvas, rng: np.random.Generator, x: float, y: float) -> None:
    """A tilted cardboard box with a tape line."""
    w, h = rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.45)
    a = np.deg2rad(rng.uniform(-15, 15))
    c, s = np.cos(a), np.sin(a)
    corners = [(-w / 2, 0), (w / 2, 0), (w / 2, h), (-w / 2, h)]
    pts = [(x + cx * c - cy * s, y + cx * s + cy * c) for cx, cy in corners]
    cv.poly(pts, jitter(rng, (70, 130, 175), 20))
    (ax, ay), (bx, by) = pts[2], pts[3]
    cv.line(ax, ay, bx, by, jitter(rng, (150, 190, 210), 10), 0.03)  # taped lid edge


def _bin_body(cv: Canvas, rng: np.random.Generator, x0: float, w: float, h: float,
              *, open_lid: bool) -> None:
    """A wheelie bin body with lid, label and wheels."""
    colour = np.asarray(BIN_COLOURS[rng.integers(len(BIN_COLOURS))], float)
    cv.ellipse(x0 + 0.1, 0.06, 0.06, 0.06, bgra((20, 20, 20)))
    cv.ellipse(x0 + w - 0.1, 0.06, 0.06, 0.06, bgra((20, 20, 20)))
    cv.poly([(x0 + 0.03, 0.08), (x0 + w - 0.03, 0.08), (x0 + w, h), (x0, h)], jitter(rng, colour, 15))
    cv.rect(x0 + 0.1 * w, 0.45 * h, x0 + 0.9 * w, 0.65 * h, jitter(rng, (230, 230, 230), 10))
    cv.ellipse(x0 + w / 2, 0.55 * h, 0.06, 0.06, jitter(rng, colour, 10))
    lid = jitter(rng, colour * 0.75, 10)
    if open_lid:
        cv.poly([(x0, h), (x0 - 0.1, h + 0.5), (x0 - 0.05, h + 0.52), (x0 + 0.05, h)], lid)
    else:
        cv.rect(x0 - 0.03, h, x0 + w + 0.03, h + 0.07, lid)


def tidy_bin(rng: np.random.Generator, look: Look) -> np.ndarray:
    """A closed street bin: the hard negative for garbage."""
    w, h = rng.uniform(0.5, 0.8), rng.uniform(0.85, 1.15)
    cv = Canvas(w + 0.2, h + 0.2)
    _bin_body(cv, rng, 0.1, w, h, open_lid=False)
    cv.shadow(0.1, 0.1 + w)
    return cv.done(look)


def person_frames(rng: np.random.Generator, look: Look, n: int = 4) -> list[np.ndarray]:
    """A pedestrian seen from front/back in n walking phases (legs and arms swing)."""
    style = _person_style(rng)
    frames = []
    for k in range(n):
        cv = Canvas(0.9, style["height"] + 0.1)
        _person(cv, style, 0.45, np.sin(2 * np.pi * k / n))
        cv.shadow(0.2, 0.7)
        frames.append(cv.done(look))
    return frames


def _person_style(rng: np.random.Generator) -> dict:
    return {
        "height": rng.uniform(1.55, 1.85),
        "shirt": jitter(rng, rng.integers(20, 240, 3), 0),
        "trousers": jitter(rng, rng.choice([(40, 40, 40), (120, 70, 30), (90, 90, 90), (180, 170, 150)]), 15),
        "skin": jitter(rng, (120, 160, 205), 15),
        "hair": jitter(rng, (20, 20, 25), 8),
        "width": rng.uniform(0.38, 0.5),
    }


def _person(cv: Canvas, st: dict, x: float, swing: float) -> None:
    """Head, torso, arms and legs of one figure centred at x."""
    h, sw = st["height"], st["width"]
    hip, shoulder = 0.5 * h, 0.8 * h
    for side in (-1, 1):
        lift = 0.06 * max(0.0, side * swing)
        cv.line(x + side * 0.08, hip, x + side * (0.1 + 0.03 * swing), lift + 0.04, st["trousers"], 0.13)
        cv.ellipse(x + side * (0.1 + 0.03 * swing), lift + 0.03, 0.07, 0.035, bgra((30, 30, 30)))
        cv.line(x + side * sw / 2, shoulder, x + side * (sw / 2 + 0.05), hip + 0.02 - 0.05 * side * swing,
                st["shirt"], 0.09)
    cv.poly([(x - sw / 2, shoulder + 0.03), (x + sw / 2, shoulder + 0.03), (x + sw * 0.4, hip - 0.03),
             (x - sw * 0.4, hip - 0.03)], st["shirt"])
    cv.ellipse(x, 0.9 * h, 0.09, 0.11, st["skin"])
    cv.ellipse(x, 0.93 * h, 0.095, 0.08, st["hair"], arc=(180, 360))


def car_textures(rng: np.random.Generator, look: Look) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(side, rear, front) textures of one car; the side has its front at the right end."""
    length, width = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.9)
    height = rng.uniform(1.4, 1.75)
    style = {
        "body": np.asarray(CAR_COLOURS[rng.integers(len(CAR_COLOURS))], float) + rng.uniform(-10, 10, 3),
        "glass": jitter(rng, (70, 55, 45), 15),
        "cabin": (rng.uniform(0.15, 0.3), rng.uniform(0.7, 0.85)),
        "plate": rng.choice([(150, 60, 20), (90, 190, 80)]),
    }
    return (_car_side(style, look, length, height), _car_end(style, look, width, height, True),
            _car_end(style, look, width, height, False))


def _car_side(st: dict, look: Look, length: float, height: float) -> np.ndarray:
    cv = Canvas(length, height)
    body = bgra(np.clip(st["body"], 0, 255))
    c0, c1 = st["cabin"]
    cv.rect(0.05, 0.15, length - 0.05, 0.35, bgra((25, 25, 25)))
    cv.poly([(0.0, 0.3), (length, 0.3), (length, 0.8), (length * c1 + 0.2, 0.95), (0.05, 0.98)], body)
    cv.poly([(length * c0, 0.95), (length * (c0 + 0.1), height), (length * (c1 - 0.12), height),
             (length * c1 + 0.2, 0.95)], body)
    cv.poly([(length * c0 + 0.12, 0.99), (length * (c0 + 0.1) + 0.05, height - 0.06),
             (length * (c1 - 0.12), height - 0.06), (length * c1 + 0.05, 0.99)], st["glass"])
    cv.line(length * 0.5, 0.99, length * 0.5, height - 0.06, body, 0.06)
    cv.rect(length - 0.12, 0.65, length, 0.78, bgra((210, 240, 250)))
    cv.rect(0.0, 0.65, 0.1, 0.78, bgra((40, 40, 200)))
    for wx in (0.2 * length, 0.8 * length):
        cv.ellipse(wx, 0.33, 0.4, 0.36, bgra((20, 20, 20)), arc=(180, 360))
        cv.ellipse(wx, 0.32, 0.32, 0.32, bgra((25, 25, 25)))
        cv.ellipse(wx, 0.32, 0.17, 0.17, bgra((170, 170, 170)))
    return cv.done(look)


def _car_end(st: dict, look: Look, width: float, height: float, rear: bool) -> np.ndarray:
    cv = Canvas(width, height)
    body = bgra(np.clip(st["body"], 0, 255))
    dark = bgra(np.clip(st["body"] * 0.6, 0, 255))
    for wx in (0.08, width - 0.3):
        cv.rect(wx, 0.0, wx + 0.22, 0.35, bgra((20, 20, 20)))
    cv.rect(0.0, 0.25, width, 0.95, body)
    cv.poly([(0.1, 0.95), (width - 0.1, 0.95), (width - 0.25, height), (0.25, height)], body)
    cv.poly([(0.18, 0.99), (width - 0.18, 0.99), (width - 0.3, height - 0.06), (0.3, height - 0.06)],
            st["glass"])
    cv.rect(0.0, 0.25, width, 0.38, dark)
    light = (40, 40, 210) if rear else (230, 240, 250)
    for lx in (0.05, width - 0.35):
        cv.rect(lx, 0.7, lx + 0.3, 0.82, bgra(light))
    cv.rect(width / 2 - 0.22, 0.42, width / 2 + 0.22, 0.56, bgra(st["plate"]))
    cv.rect(width / 2 - 0.17, 0.47, width / 2 + 0.17, 0.51, bgra((240, 240, 240)))
    cv.shadow(0.0, width)
    return cv.done(look)


def two_wheeler(rng: np.random.Generator, look: Look) -> np.ndarray:
    """An e-bike or motorbike side view (rider-less), as parked perpendicular to the kerb."""
    length = rng.uniform(1.5, 1.9)
    cv = Canvas(length, 1.2)
    r = rng.uniform(0.22, 0.3)
    tyre = bgra((25, 25, 25))
    shell = jitter(rng, rng.integers(20, 240, 3), 0)
    xb, xf = r + 0.02, length - r - 0.02
    for wx in (xb, xf):
        cv.ring(wx, r, r - 0.03, tyre, 0.06)
        cv.ellipse(wx, r, 0.05, 0.05, bgra((150, 150, 150)))
    cv.line(xb, r, xf - 0.25, 2 * r + 0.25, bgra((60, 60, 60)), 0.05)
    cv.line(xf, r, xf - 0.15, 2 * r + 0.55, bgra((60, 60, 60)), 0.05)
    if rng.random() < 0.6:  # e-bike: plastic shell under the seat and a front basket
        cv.poly([(xb - 0.05, 2 * r), (xb + 0.55, r * 0.8), (xf - 0.3, r * 0.9), (xf - 0.25, 2 * r + 0.2),
                 (xb + 0.2, 2 * r + 0.3)], shell)
        cv.rect(xf - 0.25, 2 * r + 0.4, xf + 0.05, 2 * r + 0.6, bgra((40, 40, 40)))
    else:  # motorbike: tank and engine block
        cv.ellipse(xb + 0.7 * (xf - xb), 2 * r + 0.25, 0.25, 0.12, shell)
        cv.rect(xb + 0.35, r * 0.7, xb + 0.75, 2 * r, bgra((90, 90, 95)))
    cv.rect(xb + 0.05, 2 * r + 0.28, xb + 0.6, 2 * r + 0.36, bgra((25, 25, 25)))
    cv.line(xf - 0.25, 2 * r + 0.6, xf, 2 * r + 0.65, bgra((40, 40, 40)), 0.04)
    cv.shadow(0.1, length - 0.1)
    return cv.done(look)


def stall_textures(rng: np.random.Generator, look: Look, length: float, depth: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(long front, short side) of one vendor stall sharing one style: canopy, table, goods, vendor."""
    style = {
        "umbrella": rng.random() < 0.4,
        "canopy": [jitter(rng, c, 20) for c in rng.choice(
            [(30, 30, 220), (200, 120, 20), (20, 200, 240), (40, 170, 40), (20, 120, 250)], 2)],
        "top": rng.uniform(2.0, 2.5),
        "table": jitter(rng, rng.choice([(200, 200, 200), (40, 90, 140), (170, 60, 30)]), 15),
        "cart": rng.random() < 0.4,
        "goods_seed": int(rng.integers(1 << 30)),
        "vendor": _person_style(rng),
    }
    return _stall(style, look, length, vendor=True), _stall(style, look, depth, vendor=False)


def _stall(st: dict, look: Look, w: float, *, vendor: bool) -> np.ndarray:
    rng = np.random.default_rng(st["goods_seed"])
    cv = Canvas(w + 0.8, st["top"] + 0.1)
    x0, x1 = 0.4, 0.4 + w
    if vendor:
        _person(cv, st["vendor"], x1 - 0.15, 0.0)
    _canopy(cv, st, x0, x1)
    cv.rect(x0, 0.72, x1, 0.82, st["table"])
    if st["cart"]:
        cv.rect(x0 + 0.05, 0.25, x1 - 0.05, 0.72, bgra(np.asarray(st["table"][:3]) * 0.8))
        for wx in (x0 + 0.25, x1 - 0.25):
            cv.ellipse(wx, 0.18, 0.18, 0.18, bgra((30, 30, 30)))
    else:
        for lx in (x0 + 0.05, x1 - 0.05):
            cv.line(lx, 0.0, lx, 0.72, bgra((70, 70, 70)), 0.04)
    x = x0 + 0.05
    while x < x1 - 0.1:
        r = rng.uniform(0.04, 0.08)
        colour = jitter(rng, rng.choice([(30, 120, 240), (40, 40, 200), (40, 200, 230), (50, 170, 60),
                                         (200, 200, 200)]), 20)
        for layer in range(int(rng.integers(1, 4))):
            cv.ellipse(x + r, 0.82 + r + layer * 1.6 * r, r, r, colour)
        x += 2 * r + rng.uniform(0.0, 0.04)
    cv.shadow(x0, x1)
    return cv.done(look)


def _canopy(cv: Canvas, st: dict, x0: float, x1: float) -> None:
    """A striped umbrella on a centre pole or a striped awning on two poles."""
    w, top = x1 - x0, st["top"]
    if st["umbrella"]:
        cx = (x0 + x1) / 2
        cv.line(cx, 0.0, cx, top - 0.2, bgra((60, 60, 60)), 0.04)
        n = 6
        for k in range(n):
            cv.ellipse(cx, top - 0.5, w / 2 + 0.35, 0.5, st["canopy"][k % 2],
                       arc=(180 + 180 * k / n, 180 + 180 * (k + 1) / n + 1))
        return
    for pole in (x0 + 0.03, x1 - 0.03):
        cv.line(pole, 0.0, pole, top - 0.3, bgra((80, 80, 80)), 0.04)
    stripes = max(2, int(w / 0.3))
    for k in range(stripes):
        a = x0 - 0.1 + (w + 0.2) * k / stripes
        b = x0 - 0.1 + (w + 0.2) * (k + 1) / stripes
        cv.poly([(a, top - 0.3), (b, top - 0.3), (b - 0.05, top), (a + 0.05, top)], st["canopy"][k % 2])


def shop_display(rng: np.random.Generator, look: Look) -> np.ndarray:
    """Crates or racks of goods put out at a shop door (hard negative, never labelled)."""
    w, h = rng.uniform(0.8, 2.5), rng.uniform(0.7, 1.6)
    cv = Canvas(w, h)
    rows = int(rng.integers(2, 5))
    crate = jitter(rng, rng.choice([(40, 40, 200), (60, 150, 60), (30, 160, 230), (180, 120, 40)]), 15)
    for k in range(rows):
        y0, y1 = h * k / rows, h * (k + 1) / rows - 0.03
        cv.rect(0, y0, w, y1, crate)
        x = 0.05
        while x < w - 0.1:
            r = rng.uniform(0.03, 0.07)
            cv.ellipse(x + r, y1 - r, r, r, jitter(rng, rng.integers(20, 250, 3), 0))
            x += 2 * r + 0.01
    return cv.done(look)


def tree(rng: np.random.Generator, look: Look) -> np.ndarray:
    """A kerbside tree (unlabelled clutter that occludes things, as real street trees do)."""
    h = rng.uniform(3.5, 6.0)
    cw = rng.uniform(1.8, 3.2)
    cv = Canvas(cw, h)
    cv.line(cw / 2, 0, cw / 2, h * 0.6, jitter(rng, (40, 60, 90), 10), rng.uniform(0.12, 0.22))
    for _ in range(int(rng.integers(6, 12))):
        cv.ellipse(cw / 2 + rng.uniform(-0.3, 0.3) * cw, h - rng.uniform(0.5, 0.45 * h),
                   rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6), jitter(rng, (50, 120, 60), 25))
    return cv.done(look)
