"""Textures for the static world: the look (lighting), sky, ground plane and shopfronts.

Everything is drawn once per street at a fixed metric resolution and then only warped per
frame, so per-frame cost stays a few homography warps. The look (brightness, colour cast,
time of day) is baked into every texture through one LUT instead of being applied per frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# VAUDIT_CJK_FONT points elsewhere on machines without Debian's fonts-noto-cjk (e.g. a training server)
FONT_PATH = Path(os.environ.get("VAUDIT_CJK_FONT", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"))
GROUND_PPM = 25.0  # ground texture pixels per metre
FACADE_PPM = 20.0  # building texture pixels per metre

SHOP_WORDS = [
    "便利店", "水果店", "五金交电", "家常菜馆", "兰州拉面", "理发店", "大药房", "烟酒超市",
    "手机维修", "快递驿站", "早餐店", "麻辣烫", "眼镜店", "服装店", "母婴用品", "茶叶店",
    "面包房", "文具店", "洗衣店", "房产中介", "彩票站", "鲜花店", "包子铺", "火锅", "烧烤",
    "牛肉面", "社区诊所", "百货超市", "小吃店", "副食店",
]
SHOP_PREFIXES = ["老王", "鑫源", "幸福", "好又多", "阿强", "金利", "旺旺", "平安", "和顺", "红星"]


@dataclass(frozen=True)
class Look:
    """Per-street lighting: a colour LUT baked into textures plus per-frame sensor settings."""

    lut: np.ndarray  # 1x256x3 uint8, applied with cv2.LUT to every BGR texture
    sky_top: tuple[int, int, int]
    sky_horizon: tuple[int, int, int]
    noise_sigma: float
    blur_gain: float  # how strongly camera shake turns into motion blur (0 = never)
    weather: str = "clear"  # "rain" adds streaks per frame (weather.py); the rest is baked into the LUT


def random_look(rng: np.random.Generator) -> Look:
    """Day, overcast or dusk with random exposure, contrast and white balance."""
    mood = rng.choice(["day", "overcast", "dusk"], p=[0.5, 0.3, 0.2])
    gain = rng.uniform(0.9, 1.1, 3)
    if mood == "day":
        exposure, contrast = rng.uniform(0.95, 1.2), rng.uniform(1.0, 1.15)
        sky_top, sky_hor = (235, 170, 110), (245, 225, 205)
    elif mood == "overcast":
        exposure, contrast = rng.uniform(0.8, 1.0), rng.uniform(0.8, 0.95)
        sky_top, sky_hor = (200, 195, 190), (225, 225, 222)
    else:
        exposure, contrast = rng.uniform(0.55, 0.75), rng.uniform(0.9, 1.05)
        gain = gain * np.array([0.85, 0.95, 1.15])
        sky_top, sky_hor = (120, 80, 70), (120, 170, 235)
    x = np.arange(256, dtype=np.float32) / 255.0
    chans = [np.clip(((x - 0.5) * contrast + 0.5) * exposure * g, 0, 1) for g in gain]
    lut = (np.stack(chans, axis=-1)[None] * 255).round().astype(np.uint8)
    return Look(
        lut=lut,
        sky_top=sky_top,
        sky_horizon=sky_hor,
        noise_sigma=float(rng.uniform(1.5, 6.0) * (1.6 if mood == "dusk" else 1.0)),
        blur_gain=float(rng.uniform(0.3, 1.0)),
    )


def apply_look(img: np.ndarray, look: Look) -> np.ndarray:
    """Bake the lighting into a BGR or BGRA texture (alpha untouched)."""
    if img.shape[2] == 4:
        out = img.copy()
        out[..., :3] = cv2.LUT(np.ascontiguousarray(img[..., :3]), look.lut)
        return out
    return cv2.LUT(img, look.lut)


def sky_column(look: Look, height: int) -> np.ndarray:
    """A (2*height)x1x3 gradient; rows [height - horizon_row:][:height] give a frame's sky."""
    t = np.clip(np.linspace(-1.0, 1.0, 2 * height), 0, 1) ** 0.7
    top, hor = np.array(look.sky_top, np.float32), np.array(look.sky_horizon, np.float32)
    col = hor[None] + (top - hor)[None] * t[::-1, None]
    return col[:, None, :].round().astype(np.uint8)


def _tiled_noise(rng: np.random.Generator, shape: tuple[int, int], amp: float) -> np.ndarray:
    """Cheap large-area noise: a coarse random field upscaled plus a repeated fine tile."""
    h, w = shape
    coarse = rng.normal(0, amp, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
    coarse = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    tile = rng.normal(0, amp * 0.6, (128, 128)).astype(np.float32)
    fine = np.tile(tile, (h // 128 + 1, w // 128 + 1))[:h, :w]
    return coarse + fine


@dataclass(frozen=True)
class KerbSegment:
    """A stretch of kerb-side strip: 'bay' (marked parking), 'hatch', 'yellow' kerb or 'plain'."""

    z0: float
    z1: float
    kind: str


def draw_ground(
    rng: np.random.Generator,
    look: Look,
    *,
    x_range: tuple[float, float],
    z_range: tuple[float, float],
    kerb_x: float,
    strip_w: float,
    lane_w: float,
    lanes: int,
    segments: dict[int, list[KerbSegment]],
) -> np.ndarray:
    """Top-down ground texture (rows = +Z, columns = +X) of road, markings, kerbs and tiles."""
    ppm = GROUND_PPM
    w = int((x_range[1] - x_range[0]) * ppm)
    h = int((z_range[1] - z_range[0]) * ppm)

    def col(x: float) -> int:
        return round((x - x_range[0]) * ppm)

    def row(z: float) -> int:
        return round((z - z_range[0]) * ppm)

    asphalt = rng.uniform(60, 100)
    tile_base = rng.uniform(120, 190, 3)
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = asphalt + rng.uniform(-4, 4, 3)
    walk_cols = [(0, col(-kerb_x)), (col(kerb_x), w)]
    tile_px = int(rng.choice([0.3, 0.4, 0.5, 0.6]) * ppm)
    tiles = rng.normal(0, 10, (h // tile_px + 1, w // tile_px + 1, 1)) + rng.normal(0, 3, 3)
    tiles = tiles.astype(np.float32)
    tiles = cv2.resize(tiles, (tiles.shape[1] * tile_px, tiles.shape[0] * tile_px),
                       interpolation=cv2.INTER_NEAREST)[:h, :w]
    for c0, c1 in walk_cols:
        tex[:, c0:c1] = tile_base + tiles[:, c0:c1]
        tex[::tile_px, c0:c1] *= 0.75
        tex[:, c0:c1:tile_px] *= 0.75
    tex += _tiled_noise(rng, (h, w), 6.0)[..., None]
    img = np.clip(tex, 0, 255).astype(np.uint8)
    _draw_stains(rng, img, col(-kerb_x), col(kerb_x))
    _draw_lanes(img, col, kerb_x, strip_w, lane_w, lanes, h)
    for side, segs in segments.items():
        for seg in segs:
            _draw_segment(img, col, row, side, kerb_x, strip_w, seg)
    return apply_look(img, look)


def _draw_stains(rng: np.random.Generator, img: np.ndarray, c0: int, c1: int) -> None:
    """Dark oil stains and manhole covers so the road is not a flat colour."""
    h = img.shape[0]
    for _ in range(h // 60):
        c = (int(rng.integers(c0, c1)), int(rng.integers(0, h)))
        ax = (int(rng.integers(8, 40)), int(rng.integers(5, 25)))
        shade = int(rng.uniform(25, 60))
        cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360, (shade,) * 3, -1, cv2.LINE_AA)


def _draw_lanes(img, col, kerb_x, strip_w, lane_w, lanes, h) -> None:
    """Double yellow centre line, dashed white lane lines and the parking-strip edge lines."""
    lw = max(2, int(0.15 * GROUND_PPM))
    yellow, white = (40, 190, 230), (225, 225, 225)
    for off in (-0.15, 0.15):
        cv2.line(img, (col(off), 0), (col(off), h), yellow, lw)
    for side in (-1, 1):
        for k in range(1, lanes):
            x = side * k * lane_w
            for z in range(0, h, int(15 * GROUND_PPM)):
                cv2.line(img, (col(x), z), (col(x), z + int(6 * GROUND_PPM)), white, lw)
        x_edge = side * (kerb_x - strip_w)
        cv2.line(img, (col(x_edge), 0), (col(x_edge), h), white, lw)
    for side in (-1, 1):
        c = col(side * kerb_x)
        stone = int(0.2 * GROUND_PPM)
        c0, c1 = (c, c + stone) if side > 0 else (c - stone, c)
        img[:, c0:c1] = (175, 178, 180)
        face = c0 if side > 0 else c1 - 2
        img[:, face:face + 2] = (60, 60, 60)


def _draw_segment(img, col, row, side, kerb_x, strip_w, seg: KerbSegment) -> None:
    """Paint bays, hatched no-parking zones and yellow kerb stones on one kerb-side strip."""
    x_in, x_out = side * (kerb_x - strip_w), side * kerb_x
    c0, c1 = sorted((col(x_in), col(x_out)))
    r0, r1 = row(seg.z0), row(seg.z1)
    lw = max(2, int(0.12 * GROUND_PPM))
    if seg.kind == "bay":
        white = (230, 230, 230)
        for z in np.arange(seg.z0, seg.z1 + 0.01, 6.0):
            cv2.line(img, (c0, row(z)), (c1, row(z)), white, lw)
    elif seg.kind == "hatch":
        yellow = (30, 180, 235)
        r0, r1 = max(0, r0), min(img.shape[0], r1)  # segments may extend past the texture
        c0, c1 = max(0, c0), min(img.shape[1], c1)
        if r1 <= r0 or c1 <= c0:
            return
        roi = img[r0:r1, c0:c1].copy()
        rh, rw = roi.shape[:2]
        for r in range(-rw, rh, int(1.0 * GROUND_PPM)):
            cv2.line(roi, (0, r), (rw, r + rw), yellow, lw)
        img[r0:r1, c0:c1] = roi
        cv2.rectangle(img, (c0, r0), (c1, r1), yellow, lw)
    if seg.kind in ("hatch", "yellow"):
        c = col(side * kerb_x)
        stone = int(0.2 * GROUND_PPM)
        k0, k1 = (c, c + stone) if side > 0 else (c - stone, c)
        img[r0:r1, k0:k1] = (20, 200, 240)


@lru_cache(maxsize=4)
def _font(size: int):
    """The CJK font at one size, or None when it is not installed (signs fall back to blocks)."""
    if not FONT_PATH.exists():
        return None
    return ImageFont.truetype(str(FONT_PATH), size)


def _sign(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A shop sign board with Chinese shop name (or text-like blocks without the font)."""
    bg = tuple(int(v) for v in rng.choice([(30, 30, 190), (160, 60, 20), (40, 140, 40),
                                             (30, 200, 230), (235, 235, 235), (20, 20, 20)]))
    fg = (255, 255, 255) if sum(bg) < 400 else (20, 20, 160)
    text = str(rng.choice(SHOP_PREFIXES)) + str(rng.choice(SHOP_WORDS))
    font = _font(max(8, int(h * 0.7)))
    board = Image.new("RGB", (w, h), bg[::-1])
    draw = ImageDraw.Draw(board)
    if font is not None:
        tw = draw.textlength(text, font=font)
        draw.text(((w - tw) / 2, h * 0.1), text, font=font, fill=fg[::-1])
    else:
        cw = int(h * 0.7)
        for i in range(min(len(text), max(1, w // (cw + 4)))):
            x = 4 + i * (cw + 4)
            draw.rectangle([x, h * 0.15, x + cw, h * 0.85], fill=fg[::-1])
    return np.asarray(board)[..., ::-1].copy()


def draw_building(rng: np.random.Generator, look: Look, width: float, height: float) -> np.ndarray:
    """Facade texture of one building: shop at street level (sign, glass or shutter), windows above."""
    ppm = FACADE_PPM
    w, h = int(width * ppm), int(height * ppm)
    base = rng.uniform(120, 230, 3)
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = base
    tex += _tiled_noise(rng, (h, w), 5.0)[..., None]
    img = np.clip(tex, 0, 255).astype(np.uint8)
    shop_h = int(rng.uniform(3.2, 4.2) * ppm)
    _draw_upper_windows(rng, img, h - shop_h)
    _draw_shopfront(rng, img, shop_h)
    return apply_look(img, look)


def _draw_upper_windows(rng: np.random.Generator, img: np.ndarray, bottom: int) -> None:
    """Grid of windows with frames and the odd air-conditioner box on the upper floors."""
    ppm = FACADE_PPM
    w = img.shape[1]
    floor, pitch = int(3.0 * ppm), int(rng.uniform(2.5, 3.5) * ppm)
    ww, wh = int(rng.uniform(1.0, 1.6) * ppm), int(rng.uniform(1.2, 1.6) * ppm)
    glass = rng.uniform(60, 140, 3)
    for top in range(bottom - floor, -wh, -floor):
        for x in range(int(0.6 * ppm), w - ww, pitch):
            y = top + (floor - wh) // 2
            shade = tuple(int(v) for v in glass + rng.uniform(-20, 20, 3))
            cv2.rectangle(img, (x, y), (x + ww, y + wh), (200, 200, 200), 2)
            cv2.rectangle(img, (x + 2, y + 2), (x + ww - 2, y + wh - 2), shade, -1)
            if rng.random() < 0.2:
                ac = (x + ww + 3, y + wh // 2)
                cv2.rectangle(img, ac, (ac[0] + int(0.8 * ppm), ac[1] + int(0.5 * ppm)),
                              (225, 228, 230), -1)


def _draw_shopfront(rng: np.random.Generator, img: np.ndarray, shop_h: int) -> None:
    """Street-level shops: sign band on top, then glass with displayed goods, doors or shutters."""
    ppm = FACADE_PPM
    h, w = img.shape[:2]
    x = 0
    while x < w - int(2 * ppm):
        sw = min(w - x, int(rng.uniform(4, 9) * ppm))
        sign_h = int(rng.uniform(0.7, 1.1) * ppm)
        top = h - shop_h
        img[top:top + sign_h, x + 2:x + sw - 2] = _sign(rng, sw - 4, sign_h)
        y0 = top + sign_h + 4
        kind = rng.choice(["glass", "shutter", "open"])
        if kind == "shutter":
            img[y0:h, x + 4:x + sw - 4] = rng.uniform(150, 200)
            img[y0:h:6, x + 4:x + sw - 4] = 110
        else:
            dark = 35 if kind == "open" else rng.uniform(50, 90)
            img[y0:h, x + 4:x + sw - 4] = (dark + 10, dark + 5, dark)
            _draw_window_goods(rng, img, x + 8, y0 + 6, x + sw - 8, h)
        x += sw


def _draw_window_goods(rng: np.random.Generator, img: np.ndarray, x0, y0, x1, y1) -> None:
    """Shelves of colourful goods seen through shop windows (a hard negative, never labelled)."""
    for shelf_y in range(y1 - 8, y0 + 8, -int(0.6 * FACADE_PPM)):
        cv2.line(img, (x0, shelf_y), (x1, shelf_y), (150, 150, 150), 2)
        x = x0
        while x < x1 - 4:
            bw = int(rng.integers(3, 9))
            bh = int(rng.integers(4, 10))
            colour = tuple(int(v) for v in rng.integers(30, 250, 3))
            cv2.rectangle(img, (x, shelf_y - bh), (x + bw, shelf_y - 1), colour, -1)
            x += bw + int(rng.integers(1, 4))
