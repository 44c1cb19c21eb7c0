"""Ingest: discover footage, hash it, probe it, and register it as sources.

Originals are only ever read. A file that cannot be used is recorded as rejected with a reason a
person understands, and the batch carries on: one bad file from a dead bodycam battery must not cost
the other files of the folder.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .config import Config
from .hashing import sha256_file
from .records import Probe
from .store import Store

VIDEO_EXTENSIONS = {".mp4", ".mov", ".avi", ".mkv", ".mts", ".m2ts", ".3gp", ".ts", ".flv", ".webm"}

# Capture time from a file name, as phones, bodycams and dashcams write it.
_NAME_PATTERNS = [
    re.compile(r"(?<!\d)(20\d\d)(\d\d)(\d\d)[_\-T ]?(\d\d)(\d\d)(\d\d)(?!\d)"),
    re.compile(r"(?<!\d)(20\d\d)[-_.](\d\d)[-_.](\d\d)[ _T-]+(\d\d)[-_.:](\d\d)[-_.:](\d\d)(?!\d)"),
]


class IngestError(Exception):
    """A user-facing problem with the ingest request itself (not with one file)."""


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ManifestRow:
    district: str | None
    inspector: str | None
    capture_start: datetime | None


def discover(paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """Video files under each path (recursive, case-insensitive extension), with the root they were found under.

    Symlinked folders are not followed (a symlink loop must not hang ingest); symlinked files are.
    """
    found: list[tuple[Path, Path]] = []
    for root in paths:
        if not root.exists() and not root.is_symlink():
            raise IngestError(f"no such file or folder: {root}")
        if root.is_file():
            found.append((root, root.parent))
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if p.suffix.lower() in VIDEO_EXTENSIONS:
                    found.append((p, root))
    return found


class ProbeError(Exception):
    pass


def probe(path: Path) -> Probe:
    """Read the container's own description of the video with ffprobe; raise ProbeError with a plain reason."""
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
            capture_output=True, timeout=120, check=False,
        )
    except FileNotFoundError:
        raise IngestError("ffprobe not found: install ffmpeg (apt-get install ffmpeg)") from None
    except subprocess.TimeoutExpired:
        raise ProbeError("probing took over 2 minutes: file is damaged or not a video") from None
    if out.returncode != 0:
        text = out.stderr.decode("utf-8", "replace").strip()
        msg = text.splitlines()
        detail = msg[-1] if msg else "unknown error"
        if "moov atom not found" in text and _looks_like_mp4(path):
            detail = "MP4 index (moov atom) missing: the recording was cut off before it was finalised"
        elif "Invalid data found" in detail or "moov atom not found" in text:
            detail = "not a video file (unrecognised data)"
        raise ProbeError(detail.split(": ", 1)[-1] if detail.startswith(str(path)) else detail)
    info = json.loads(out.stdout or b"{}")
    fmt = info.get("format", {})
    streams = info.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    if not video:
        raise ProbeError("no video stream (audio-only or not a video)")
    v = video[0]
    if fmt.get("format_name", "").endswith("_pipe") or fmt.get("format_name") == "image2":
        raise ProbeError(f"a still image ({v.get('codec_name', 'unknown')}), not a video")
    rotation = _rotation(v)
    w, h = int(v.get("width") or 0), int(v.get("height") or 0)
    if w <= 0 or h <= 0:
        raise ProbeError("video stream has no frame size")
    if rotation in (90, 270):
        w, h = h, w
    duration = _float(fmt.get("duration")) or _float(v.get("duration"))
    if not duration or duration <= 0:
        raise ProbeError("video has no duration (empty or broken)")
    avg, real = _rate(v.get("avg_frame_rate")), _rate(v.get("r_frame_rate"))
    fps = avg or real
    tags = {k.lower(): val for k, val in {**fmt.get("tags", {}), **v.get("tags", {})}.items()}
    return Probe(
        duration_s=duration,
        fps=fps,
        vfr=bool(avg and real and abs(avg - real) / real > 0.01),
        width=w,
        height=h,
        codec=v.get("codec_name", "unknown"),
        container=fmt.get("format_name", "unknown"),
        rotation=rotation,
        audio_codec=next((s.get("codec_name") for s in streams if s.get("codec_type") == "audio"), None),
        creation_time=_parse_creation_time(tags),
        gps=tags.get("com.apple.quicktime.location.iso6709") or tags.get("location"),
        device=" ".join(x for x in (tags.get("com.apple.quicktime.make") or tags.get("make"),
                                    tags.get("com.apple.quicktime.model") or tags.get("model")) if x) or None,
    )


def _looks_like_mp4(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(12)
    return head[4:8] in (b"ftyp", b"mdat", b"wide", b"free")


def _float(x: object) -> float | None:
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _rate(r: str | None) -> float:
    if not r or "/" not in r:
        return 0.0
    n, d = r.split("/")
    return float(n) / float(d) if float(d) else 0.0


def _rotation(v: dict) -> int:
    """Degrees clockwise to turn the coded frame upright (ffprobe reports counter-clockwise display rotation)."""
    rot = None
    for sd in v.get("side_data_list", []) or []:
        if "rotation" in sd:
            rot = -float(sd["rotation"])
    if rot is None and "rotate" in v.get("tags", {}):
        rot = float(v["tags"]["rotate"])
    return round(rot or 0) % 360


def _parse_creation_time(tags: dict) -> datetime | None:
    for key in ("com.apple.quicktime.creationdate", "creation_time", "date"):
        val = tags.get(key)
        if not val:
            continue
        try:
            dt = datetime.fromisoformat(val)
        except ValueError:
            continue
        if dt.year < 2000:  # cameras with no clock write 1970/1904 epochs
            continue
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return None


def time_from_name(name: str, tz: ZoneInfo) -> datetime | None:
    for pat in _NAME_PATTERNS:
        m = pat.search(name)
        if m:
            try:
                return datetime(*map(int, m.groups()), tzinfo=tz)
            except ValueError:
                continue
    return None


def read_manifest(path: Path, tz: ZoneInfo) -> dict[str, ManifestRow]:
    """A CSV with a ``file`` (or ``path``) column and optional district, inspector, capture_start.

    Rows are keyed by file name and by full path, so a manifest can name files either way.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise IngestError(f"cannot read manifest {path}: {e}") from None
    reader = csv.DictReader(text.splitlines())
    cols = {c.strip().lower() for c in (reader.fieldnames or [])}
    key = "file" if "file" in cols else "path" if "path" in cols else None
    if key is None:
        raise IngestError(f"manifest {path}: line 1: needs a 'file' or 'path' column, found {sorted(cols)}")
    rows: dict[str, ManifestRow] = {}
    for lineno, raw in enumerate(reader, start=2):
        r = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not r.get(key):
            raise IngestError(f"manifest {path}: line {lineno}: empty '{key}'")
        cs = None
        if r.get("capture_start"):
            try:
                cs = datetime.fromisoformat(r["capture_start"])
            except ValueError:
                raise IngestError(
                    f"manifest {path}: line {lineno}: capture_start {r['capture_start']!r} is not ISO 8601 "
                    "(e.g. 2026-11-03T14:22:33+08:00)"
                ) from None
            cs = cs if cs.tzinfo else cs.replace(tzinfo=tz)
        row = ManifestRow(r.get("district") or None, r.get("inspector") or None, cs)
        rows[r[key]] = row
        rows[Path(r[key]).name] = row
    return rows


def _reject_reason_for_unreadable(path: Path) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return "file vanished or is a broken link"
    except OSError as e:
        return f"cannot read file: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def ingest(
    store: Store,
    cfg: Config,
    paths: list[Path],
    district: str | None = None,
    inspector: str | None = None,
    manifest: Path | None = None,
    on_file: Callable[[Path], None] | None = None,
    copy_to: Path | None = None,
) -> IngestReport:
    """Register every video under ``paths``. With ``copy_to`` (the workspace's originals folder), each new
    original is also copied into a read-only, content-addressed store there (``ab/cdef…``)."""
    tz = cfg.tz
    rows = read_manifest(manifest, tz) if manifest else {}
    files = discover(paths)
    report = IngestReport()
    for path, root in files:
        if on_file:
            on_file(path)
        shown = str(path.absolute())
        reason = _reject_reason_for_unreadable(path)
        sha = None
        size = None
        if reason is None:
            try:
                size = path.stat().st_size
                sha = sha256_file(path)
            except OSError as e:
                reason = f"cannot read file: {e.strerror or e}"
        if reason is not None:
            store.reject_source(shown, None, size, reason)
            report.rejected.append((shown, reason))
            continue
        known = store.source_by_sha(sha)
        if known and known["status"] == "rejected":
            report.rejected.append((shown, known["reason"]))
            continue
        if known:
            store.add_source({"sha256": sha, "path": shown})
            report.duplicates.append(shown)
            continue
        try:
            pr = probe(path)
        except ProbeError as e:
            store.reject_source(shown, sha, size, str(e))
            report.rejected.append((shown, str(e)))
            continue
        mrow = rows.get(shown) or rows.get(path.name) or ManifestRow(None, None, None)
        folder = _first_folder(path, root)
        dist = cfg.canonical_district(district or folder or mrow.district)
        capture, origin = _capture_start(pr, path, mrow, tz)
        copy = _store_original(path, sha, copy_to) if copy_to else None
        store.add_source(
            {
                "sha256": sha, "path": shown, "size": size, "mtime": path.stat().st_mtime,
                "duration_s": pr.duration_s, "fps": pr.fps, "vfr": int(pr.vfr), "width": pr.width,
                "height": pr.height, "codec": pr.codec, "container": pr.container, "rotation": pr.rotation,
                "audio_codec": pr.audio_codec,
                "creation_time": pr.creation_time.isoformat() if pr.creation_time else None,
                "gps": pr.gps, "device": pr.device, "district": dist,
                "inspector": inspector or mrow.inspector,
                "capture_start": capture.isoformat() if capture else None, "capture_start_origin": origin,
                "original_copy": copy,
            }
        )
        report.added.append(shown)
    return report


def _store_original(path: Path, sha: str, originals: Path) -> str:
    """Copy into originals/<ab>/<cdef…><ext>, read-only; returns the path relative to the workspace."""
    dest = originals / sha[:2] / (sha[2:] + path.suffix.lower())
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        shutil.copyfile(path, tmp)
        if sha256_file(tmp) != sha:
            tmp.unlink()
            raise OSError(f"copy of {path} does not match its hash (changed while copying?)")
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)
    return dest.relative_to(originals.parent).as_posix()


def _first_folder(path: Path, root: Path) -> str | None:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 else None


def _capture_start(pr: Probe, path: Path, mrow: ManifestRow, tz: ZoneInfo) -> tuple[datetime | None, str]:
    if pr.creation_time:
        return pr.creation_time.astimezone(tz), "metadata"
    named = time_from_name(path.name, tz)
    if named:
        return named, "filename"
    if mrow.capture_start:
        return mrow.capture_start.astimezone(tz), "manifest"
    # mtime is usually when the recording ended (or was copied): a guess, flagged as such
    end = datetime.fromtimestamp(path.stat().st_mtime, tz)
    return end - timedelta(seconds=pr.duration_s), "mtime-guess"
