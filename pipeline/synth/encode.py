"""Raw BGR frames piped into ffmpeg, encoded like phone/bodycam footage (H.264 or HEVC in MP4).

Fixed GOP without scene-cut keyframes gives a known keyframe interval (which the rest of vaudit
seeks by); single-threaded bit-exact encoding makes the same seed produce the same bytes.
"""

from __future__ import annotations

import contextlib
import subprocess
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Self

import numpy as np

CODECS = {"h264": ["-c:v", "libx264", "-preset", "veryfast"],
          "hevc": ["-c:v", "libx265", "-preset", "veryfast", "-tag:v", "hvc1",
                   "-x265-params", "pools=1:frame-threads=1:log-level=error"]}


def ffmpeg_command(path: Path, size: tuple[int, int], fps: float, *, gop_s: float, codec: str, crf: int,
                   capture_start: datetime) -> list[str]:
    """The ffmpeg command line that reads raw bgr24 frames from stdin and writes `path`."""
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}, not {codec!r}")
    rate = Fraction(fps).limit_denominator(1001)
    gop = str(max(1, round(gop_s * fps)))
    created = capture_start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    return [
        "ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
        "-s", f"{size[0]}x{size[1]}", "-r", f"{rate.numerator}/{rate.denominator}", "-i", "-",
        *CODECS[codec], "-crf", str(crf), "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
        "-pix_fmt", "yuv420p", "-threads", "1", "-fflags", "+bitexact", "-flags", "+bitexact",
        "-movflags", "+faststart", "-metadata", f"creation_time={created}", str(path),
    ]


class VideoWriter:
    """Context manager: `write(frame)` per frame; raises if ffmpeg fails."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, *, gop_s: float = 1.0,
                 codec: str = "h264", crf: int = 23, capture_start: datetime) -> None:
        self.size = size
        cmd = ffmpeg_command(path, size, fps, gop_s=gop_s, codec=codec, crf=crf, capture_start=capture_start)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.size[1], self.size[0], 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} does not match {self.size}")
        self.proc.stdin.write(frame.tobytes())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        err = self.proc.stderr.read().decode(errors="replace")
        code = self.proc.wait()
        if code != 0:
            raise RuntimeError(f"ffmpeg exited with {code}: {err.strip()}")
