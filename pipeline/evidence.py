"""Evidence: per violation a clip cut from the original and an annotated keyframe.

Clips are stream copies starting at the keyframe at or before the wanted start: the original's own
packets, unaltered (better evidence, and ~100x cheaper than re-encoding). When the original's codec
or container does not play in a browser, a separate H.264 proxy is made for review and recorded as a
proxy, so nobody mistakes it for the original's packets. Files are written to a staging name and only
renamed into place inside the database transaction that references them.
"""

from __future__ import annotations

import bisect
import io
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import av
import ffmpeg
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .config import Config
from .fonts import cjk_font_path
from .hashing import sha256_file
from .records import Artifact, Source, Violation
from .vocab import UNKNOWN_DISTRICT
from .workspace import Workspace

BROWSER_VIDEO = {"h264", "vp9", "av1"}
MP4_VIDEO = {"h264", "hevc", "vp9", "av1", "mpeg4"}
MP4_AUDIO = {"aac", "mp3", "opus", "alac", None}
_COLORS = {"garbage": (230, 126, 34), "parking": (231, 76, 60), "stall": (155, 89, 182)}


class EvidenceError(Exception):
    """Making an evidence file failed (disk full, ffmpeg failure): the source fails, nothing is half-written."""


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = cjk_font_path()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default()


@dataclass(frozen=True)
class StagedFile:
    """One evidence file in the staging folder: what becomes an Artifact once placed and hashed."""

    kind: str  # "clip" | "proxy" | "keyframe"
    path: Path
    start_s: float | None
    end_s: float | None
    command: str | None  # the ffmpeg command that made it


@dataclass(frozen=True)
class Staged:
    """Files made for one violation, waiting in the staging folder for their final names."""

    files: list[StagedFile]


def clip_range(v: Violation, cfg: Config, keyframes: list[float], duration: float) -> tuple[float, float]:
    """The clip's span: from the keyframe at or before (start - pre) to (end + post), clamped to the file."""
    cc = cfg.categories[v.category]
    want = max(0.0, v.start_s - cc.clip_pre_s)
    i = bisect.bisect_right(keyframes, want + 1e-6) - 1
    start = keyframes[i] if i >= 0 else 0.0
    end = min(duration, v.end_s + cc.clip_post_s) if duration > 0 else v.end_s + cc.clip_post_s
    return start, max(end, start + 0.5)


def _run(stream) -> str:
    args = stream.compile(cmd="ffmpeg")
    args = [args[0], "-hide_banner", "-loglevel", "error", "-nostdin", *args[1:]]
    cmd = shlex.join(args)
    try:
        out = subprocess.run(args, capture_output=True, timeout=600, check=False)
    except FileNotFoundError:
        raise EvidenceError("ffmpeg not found: install ffmpeg (apt-get install ffmpeg)") from None
    if out.returncode != 0:
        err = out.stderr.decode("utf-8", "replace").strip().splitlines()
        if out.returncode < 0:  # e.g. SIGXFSZ when a file-size limit (a full quota) is hit
            why = f"killed by {signal.Signals(-out.returncode).name}"
        else:
            why = err[-1] if err else f"exit {out.returncode}"
        raise EvidenceError(f"ffmpeg failed: {why}")
    return cmd


def _probe_duration(path: Path) -> float | None:
    """The clip's video duration, read in-process (an ffprobe subprocess costs as much as the cut)."""
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            if s.duration is not None and s.time_base is not None:
                return float(s.duration * s.time_base)
            return c.duration / 1e6 if c.duration else None
    except (av.FFmpegError, IndexError):
        return None


def cut_clip(src: Source, media: str, start: float, end: float, out_stem: Path) -> list[StagedFile]:
    """Stream-copy [start, end) into a clip; add a browser-playable proxy when the original would not play."""
    codec, audio_codec = src.probe.codec, src.probe.audio_codec
    ext = ".mp4" if codec in MP4_VIDEO and audio_codec in MP4_AUDIO else ".mkv"
    clip = out_stem.with_suffix(ext)
    seek = start + 0.001  # lands inside the keyframe's frame: ffmpeg then starts exactly at that keyframe
    inp = ffmpeg.input(media, ss=f"{seek:.3f}")
    opts = {"c": "copy", "t": f"{end - start:.3f}", "avoid_negative_ts": "make_zero", "map_metadata": 0}
    if ext == ".mp4":
        opts["movflags"] = "+faststart"
        opts["f"] = "mp4"
        if codec == "hevc":
            opts["tag:v"] = "hvc1"
    else:
        opts["f"] = "matroska"
    streams = lambda i: [i["v:0"]] + ([i["a:0?"]] if audio_codec else [])
    cmd = _run(ffmpeg.output(*streams(inp), str(clip), **opts).overwrite_output())
    actual = _probe_duration(clip)
    files = [StagedFile("clip", clip, start, start + actual if actual else end, cmd)]
    if codec not in BROWSER_VIDEO or ext != ".mp4":
        proxy = out_stem.with_name(out_stem.name + "_proxy.mp4")
        pinp = ffmpeg.input(media, ss=f"{start:.3f}")
        # a review copy, not the evidence: 960 px superfast costs 31% less than 1280 px veryfast on 1080p
        # HEVC (3.2 vs 4.7 s per 10 s clip here; decoding the HEVC is half of it) at a third of the size
        popts = {"t": f"{end - start:.3f}", "c:v": "libx264", "preset": "superfast", "crf": 26, "pix_fmt": "yuv420p",
                 "vf": "scale='min(960,iw)':-2", "movflags": "+faststart", "f": "mp4"}
        if audio_codec:
            popts["c:a"] = "aac"
        pcmd = _run(ffmpeg.output(*streams(pinp), str(proxy), **popts).overwrite_output())
        files.append(StagedFile("proxy", proxy, start, end, pcmd))
    return files


def annotate_keyframe(image: np.ndarray, boxes: list[tuple[tuple[float, float, float, float], str, float]],
                      full_size: tuple[int, int], cfg: Config, when: datetime | None, t_s: float,
                      place: str | None, out: Path) -> None:
    """Draw boxes, the Chinese category name, confidence, wall-clock time and place; save as JPEG."""
    img = Image.fromarray(image[:, :, ::-1])
    draw = ImageDraw.Draw(img)
    sx, sy = img.width / full_size[0], img.height / full_size[1]
    fsize = max(14, img.height // 28)
    font = _font(fsize)
    for (x1, y1, x2, y2), category, conf in boxes:
        color = _COLORS.get(category, (46, 204, 113))
        bx = (x1 * sx, y1 * sy, x2 * sx, y2 * sy)
        draw.rectangle(bx, outline=color, width=max(2, img.height // 240))
        label = f"{cfg.category_label(category)} {conf:.2f}"
        tw = draw.textlength(label, font=font)
        ty = max(0, bx[1] - fsize - 6)
        draw.rectangle((bx[0], ty, bx[0] + tw + 8, ty + fsize + 6), fill=color)
        draw.text((bx[0] + 4, ty + 2), label, font=font, fill=(255, 255, 255))
    stamp = when.astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M:%S %z") if when else f"t={t_s:.1f}s"
    footer = f"{stamp}  {place or UNKNOWN_DISTRICT}"
    tw = draw.textlength(footer, font=font)
    draw.rectangle((0, img.height - fsize - 10, tw + 12, img.height), fill=(0, 0, 0))
    draw.text((6, img.height - fsize - 6), footer, font=font, fill=(255, 255, 0))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    with open(out, "wb") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def final_stem(ws: Workspace, src: Source, v: Violation, violation_id: int, cfg: Config) -> Path:
    """clips/<district>/<YYYY-MM-DD>/<category>_<HHMMSS>_<id>: where people will look for it."""
    when = src.wall_clock(v.start_s)
    if when is not None:
        when = when.astimezone(cfg.tz)
        day, hms = when.strftime("%Y-%m-%d"), when.strftime("%H%M%S")
    else:
        day, hms = "unknown-date", f"t{int(v.start_s):06d}"
    district = _safe(src.district or UNKNOWN_DISTRICT)
    return Path(district) / day / f"{v.category}_{hms}_{violation_id}"


def _safe(name: str) -> str:
    bad = '/\\\0:*?"<>|'
    cleaned = "".join("_" if c in bad else c for c in name).strip(". ")
    return cleaned or UNKNOWN_DISTRICT


def place(ws: Workspace, staged: Staged, stem: Path) -> list[Artifact]:
    """Rename staged files to their final names; hashes are taken from the bytes actually placed."""
    arts = []
    for f in staged.files:
        path, cmd = f.path, f.command
        base = ws.frames if f.kind == "keyframe" else ws.clips
        suffix = "_proxy.mp4" if f.kind == "proxy" else path.suffix
        dest = base / stem.parent / (stem.name + suffix)
        dest.parent.mkdir(parents=True, exist_ok=True)
        sha, size = sha256_file(path), path.stat().st_size
        os.replace(path, dest)
        cmd = cmd.replace(str(path), str(dest)) if cmd else None  # the command as it re-derives this file
        arts.append(Artifact(f.kind, ws.rel(dest), sha, size, f.start_s, f.end_s, cmd))
    return arts
