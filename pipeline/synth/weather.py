"""Light and weather of the "city" style: rain, fog and sodium-lit dusk (the default style has clear day,
overcast and a plain dusk).

Fog and the colour of the light are baked into every texture through the look's LUT, like the default
looks; rain also draws streaks on each frame after rendering, so ground truth (which comes from the
geometry) is unchanged by it.
"""

from __future__ import annotations

import cv2
import numpy as np

from .textures import Look

WEATHERS = ("rain", "fog", "dusk")
RAIN_STREAKS_PER_MPX = 400  # streaks per million pixels per frame
RAIN_SLANT = 0.18  # horizontal pixels per vertical pixel of a streak


def city_look(rng: np.random.Generator) -> Look:
    """A rainy, foggy or sodium-lit dusk look with random exposure and white balance."""
    weather = str(rng.choice(WEATHERS, p=[0.35, 0.35, 0.3]))
    x = np.arange(256, dtype=np.float32) / 255.0
    gain = rng.uniform(0.92, 1.08, 3)
    haze, haze_colour = 0.0, np.zeros(3, np.float32)
    if weather == "rain":  # dark, cold and flat; wet surfaces
        exposure, contrast = rng.uniform(0.6, 0.8), rng.uniform(0.8, 0.95)
        gain = gain * np.array([1.12, 1.0, 0.9])
        sky_top, sky_hor, noise = (105, 100, 95), (150, 148, 145), rng.uniform(3.0, 7.0)
    elif weather == "fog":  # everything pulled towards a pale grey
        exposure, contrast = rng.uniform(0.95, 1.1), rng.uniform(0.85, 1.0)
        haze, haze_colour = rng.uniform(0.3, 0.5), np.full(3, rng.uniform(0.72, 0.85), np.float32)
        sky_top, sky_hor, noise = (200, 200, 198), (215, 215, 213), rng.uniform(1.5, 4.0)
    else:  # dusk under orange sodium street lamps
        exposure, contrast = rng.uniform(0.5, 0.68), rng.uniform(0.95, 1.1)
        gain = gain * np.array([0.65, 0.92, 1.35])
        sky_top, sky_hor, noise = (90, 60, 70), (90, 140, 210), rng.uniform(4.0, 8.0)
    chans = []
    for k, g in enumerate(gain):
        c = np.clip(((x - 0.5) * contrast + 0.5) * exposure * g, 0, 1)
        chans.append(c * (1 - haze) + haze_colour[k] * haze)
    lut = (np.stack(chans, axis=-1)[None] * 255).round().astype(np.uint8)
    return Look(lut=lut, sky_top=sky_top, sky_horizon=sky_hor, noise_sigma=float(noise),
                blur_gain=float(rng.uniform(0.3, 1.0)), weather=weather)


def apply_weather(frame: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """Per-frame weather on a rendered frame: rain streaks for a rainy look; anything else is returned as
    it is, drawing nothing from ``rng`` (so the default style's frames stay byte-identical)."""
    if look.weather != "rain":
        return frame
    h, w = frame.shape[:2]
    n = max(1, int(w * h / 1e6 * RAIN_STREAKS_PER_MPX))
    x, y = rng.uniform(0, w, n), rng.uniform(-0.1 * h, h, n)
    length = rng.uniform(0.03, 0.09, n) * h
    ends = np.stack([x, y, x + RAIN_SLANT * length, y + length], axis=1).round().astype(np.int32)
    streaks = np.zeros((h, w), np.uint8)
    cv2.polylines(streaks, list(ends.reshape(-1, 2, 2)), False, 255, 1, cv2.LINE_AA)
    alpha = streaks[..., None].astype(np.float32) * (0.35 / 255)
    return (frame + (205.0 - frame) * alpha).astype(np.uint8)
