"""The assessors' exports page: the same counts, charts and meeting pack as ``vaudit export``, as downloads.

Nothing here touches a request or the app's shared SQLite connection. The builders below run in a
worker thread (they render charts and copy evidence: far too slow for the event loop), and each opens
its own ``Store`` for that, closing it when done, so the app's connection is never used off its thread.
Every download is written to the custody log under the logged-in user's name, as the queue's CSV is.
"""

from __future__ import annotations

import io
import shutil
import socket
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from ..config import Config
from ..export import PackError, Period, RedactionError, charts, counts, pack, parse_period, write_counts
from ..store import Store, owner_alive, worker_id
from ..workspace import Workspace

MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "zip": "application/zip",
}
FORMATS_ZH = {"xlsx": "Excel (xlsx)", "csv": "CSV", "json": "JSON"}
STATUSES_ZH = {"confirmed": "仅已确认", "all": "全部（含待审、已驳回）"}
PERIOD_HELP = "统计周期须为月（如 2026-11）、季度（如 2026-Q4）或年（如 2026）。"
CHUNK = 1 << 20


class BadExport(ValueError):
    """What is wrong with the submitted form, as one Chinese line for the page."""


@dataclass(frozen=True)
class ExportForm:
    """The exports form as submitted; kept as typed so the page can show it again next to an error."""

    period: str = ""
    status: str = "confirmed"
    fmt: str = "xlsx"
    district: str = ""
    blur_faces: bool = False
    blur_plates: bool = False

    @classmethod
    def parse(cls, form: Mapping[str, object]) -> ExportForm:
        def text(key: str, default: str = "") -> str:
            return str(form.get(key) or default).strip()[:64]

        return cls(period=text("period"), status=text("status", "confirmed"), fmt=text("format", "xlsx"),
                   district=text("district"), blur_faces="blur_faces" in form, blur_plates="blur_plates" in form)

    def checked_period(self, tz: tzinfo) -> Period:
        try:
            return parse_period(self.period, tz)
        except ValueError:
            raise BadExport(PERIOD_HELP) from None

    def checked_counts(self) -> tuple[str, str]:
        """(status, format) for a counts table; only the choices the page offers are accepted."""
        if self.status not in STATUSES_ZH:
            raise BadExport("统计口径须为“仅已确认”或“全部”。")
        if self.fmt not in FORMATS_ZH:
            raise BadExport("文件格式须为 xlsx、csv 或 json。")
        return self.status, self.fmt

    def checked_district(self, choices: list[str]) -> str | None:
        """None for every district; otherwise one the page listed (a typo would silently pack nothing)."""
        if not self.district:
            return None
        if self.district not in choices:
            raise BadExport("未知的区域，请从列表中选择。")
        return self.district


def default_period(tz: tzinfo, now: datetime | None = None) -> str:
    """Last month in the city's time zone: assessments are made once a month is over."""
    today = (now or datetime.now(tz)).astimezone(tz)
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def suggested_periods(tz: tzinfo, now: datetime | None = None) -> list[str]:
    """A few likely periods for the field's autocomplete: last month, last quarter, this and last year."""
    today = (now or datetime.now(tz)).astimezone(tz)
    last_month = parse_period(default_period(tz, today), tz)
    quarter = Period("quarter", today.year, (today.month - 1) // 3 + 1, tz).previous()
    return [last_month.label, quarter.label, str(today.year), str(today.year - 1)]


@dataclass
class Download:
    """A file to send: ``body`` is bytes, or an open file already unlinked from disk, read to its end."""

    filename: str
    media_type: str
    body: bytes | BinaryIO
    size: int = 0

    def chunks(self) -> Iterator[bytes]:
        """The open file in pieces, closed when done (or when the response is dropped mid-download)."""
        if isinstance(self.body, bytes):
            yield self.body
            return
        with self.body as f:
            while chunk := f.read(CHUNK):
                yield chunk


def content_disposition(filename: str) -> str:
    """An attachment header that survives any browser: an ASCII name, plus the UTF-8 name when it differs."""
    ascii_name = filename.encode("ascii", "ignore").decode() or "export"
    ascii_name = ascii_name.replace('"', "").replace("\\", "")
    header = f'attachment; filename="{ascii_name}"'
    return header if ascii_name == filename else f"{header}; filename*=UTF-8''{quote(filename, safe='')}"


@contextmanager
def _own_store(ws: Workspace) -> Iterator[Store]:
    """A connection for this worker thread only; the app's shared one must stay on the event loop."""
    store = Store(ws.db)
    try:
        yield store
    finally:
        store.close()


def counts_file(ws: Workspace, cfg: Config, period: Period, status: str, fmt: str, actor: str) -> Download:
    """The counts table for the period, as the CLI writes it (tables are small: held in memory)."""
    with _own_store(ws) as store, tempfile.TemporaryDirectory(prefix="vaudit-counts-") as tmp:
        table = counts(store, cfg, period, status=status)
        path = write_counts(table, fmt, Path(tmp) / f"counts.{fmt}")
        body = path.read_bytes()
        store.log_event("export_counts", "export", None,
                        {"period": period.label, "status": status, "format": fmt, "via": "review"}, actor)
    suffix = "" if status == "confirmed" else f"_{status}"
    return Download(f"counts_{period.label}{suffix}.{fmt}", MEDIA_TYPES[fmt], body, len(body))


def charts_zip(ws: Workspace, cfg: Config, period: Period, actor: str) -> Download:
    """The meeting charts as one zip of PNGs (a few hundred kB: held in memory)."""
    buf = io.BytesIO()
    with _own_store(ws) as store, tempfile.TemporaryDirectory(prefix="vaudit-charts-") as tmp:
        paths = charts(store, cfg, period, Path(tmp))
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for p in paths:
                z.write(p, p.name)
        store.log_event("export_charts", "export", None,
                        {"period": period.label, "files": [p.name for p in paths], "via": "review"}, actor)
    body = buf.getvalue()
    return Download(f"charts_{period.label}.zip", MEDIA_TYPES["zip"], body, len(body))


STAGE_PREFIX = "pack~"


def pack_stage(ws: Workspace) -> Path:
    """A new private (0700) folder for one pack build, under ``review-tmp/`` (which ``vaudit run``, sweeping
    ``tmp/``, never touches), named after this process so that a later server can tell it is abandoned."""
    ws.review_tmp.mkdir(mode=0o700, exist_ok=True)
    owner = worker_id().replace(":", "~")  # host~pid~start
    return Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{owner}~", dir=ws.review_tmp))


def sweep_review_tmp(ws: Workspace) -> int:
    """Remove build folders of review servers that died mid-build; a live server's are left alone."""
    if not ws.review_tmp.is_dir():
        return 0
    removed = 0
    for d in ws.review_tmp.iterdir():
        parts = d.name.split("~")
        owner = ":".join(parts[1:4]) if d.name.startswith(STAGE_PREFIX) and len(parts) == 5 else None
        if owner and (owner_alive(owner) or not owner.startswith(socket.gethostname() + ":")):
            continue  # a live build here, or one on another host sharing the workspace
        shutil.rmtree(d, ignore_errors=True) if d.is_dir() and not d.is_symlink() else d.unlink(missing_ok=True)
        removed += 1
    return removed


def pack_zip(ws: Workspace, cfg: Config, period: Period, district: str | None, blur_faces: bool,
             blur_plates: bool, actor: str) -> Download:
    """Build the pack as a zip in a private folder under the workspace, open it, then delete the folder.

    Packs hold evidence video, so they are built next to the workspace (not on a small tmpfs) and
    streamed from the open handle rather than read into memory. The folder is gone before the first
    byte is sent, so neither a finished nor an abandoned download leaves a copy of the evidence behind.
    ``pack`` itself logs the export_pack custody entry, naming ``actor``.
    """
    tmp = pack_stage(ws)
    name = f"pack_{period.label}" + (f"_{district}" if district else "") + ".zip"
    try:
        with _own_store(ws) as store:
            out = pack(ws, store, cfg, period, tmp / "pack.zip", district=district, blur_faces=blur_faces,
                       blur_plates=blur_plates, actor=actor)
        handle = open(out, "rb")  # noqa: SIM115 - closed by Download.chunks once streamed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = handle.seek(0, io.SEEK_END)
    handle.seek(0)
    return Download(name, MEDIA_TYPES["zip"], handle, size)


def failure(exc: Exception) -> tuple[int, str]:
    """(status, one Chinese line) for an export that could not be made; the detail names the cause."""
    if isinstance(exc, BadExport):
        return 400, str(exc)
    if isinstance(exc, PackError):
        return 409, f"无法生成材料包（证据文件与记录不符或目标已存在，请管理员运行 vaudit verify）：{exc}"
    if isinstance(exc, RedactionError):
        return 500, f"无法完成人脸/车牌模糊处理：{exc}"
    if isinstance(exc, ValueError):
        return 400, f"导出参数有误：{exc}"
    return 500, f"导出失败：{exc}"
