"""Single frames of a source on demand: the one an analyst paused on, or a sampled frame to label.

The sampler (sample.py) streams a whole video for a run; review needs one frame at a time and the
keyframe grid an evidence clip is cut from. Times follow the sampler's convention (seconds from the
video stream's start), so a time read off a run's ``frames`` row finds the same picture.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .sample import _ROTATE, DecodeError


def _origin(stream: av.video.stream.VideoStream, first_pts: int | None) -> int:
    return stream.start_time if stream.start_time is not None else (first_pts or 0)


def keyframe_times(path: str | Path) -> tuple[list[float], float]:
    """(keyframe times, last packet time) from the packets alone, nothing decoded."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise DecodeError(f"cannot open video: {e}") from None
    with container:
        if not container.streams.video:
            raise DecodeError("no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base or Fraction(1, 90000)
        origin, keys, last = None, [], 0.0
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            if origin is None:
                origin = _origin(stream, packet.pts)
            t = float((packet.pts - origin) * tb)
            last = max(last, t)
            if packet.is_keyframe:
                keys.append(t)
    return sorted(keys) or [0.0], last


def frame_at(path: str | Path, t_s: float, rotation: int = 0, max_side: int = 1280) -> tuple[np.ndarray, float]:
    """The upright BGR frame shown at ``t_s`` (the last one starting at or before it), scaled so its longer
    side is at most ``max_side``, and its own time."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise DecodeError(f"cannot open video: {e}") from None
    with container:
        if not container.streams.video:
            raise DecodeError("no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base or Fraction(1, 90000)
        origin = _origin(stream, None)
        container.seek(int(origin + max(0.0, t_s) / tb), stream=stream, backward=True, any_frame=False)
        chosen, chosen_t = None, 0.0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float((frame.pts - origin) * tb)
                if chosen is not None and t > t_s + 1e-3:
                    break
                chosen, chosen_t = frame, t
        except av.FFmpegError:
            pass  # a corrupt tail: the last good frame serves
        if chosen is None:
            raise DecodeError(f"no frame could be decoded at {t_s:.2f} s")
        w, h = chosen.width, chosen.height
        scale = min(1.0, max_side / max(w, h))
        size = (max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)) if scale < 1 else (w, h)
        img = chosen.to_ndarray(format="bgr24", width=size[0], height=size[1])
    if rotation % 360 in _ROTATE:
        img = cv2.rotate(img, _ROTATE[rotation % 360])
    return np.ascontiguousarray(img), round(chosen_t, 4)
