"""The review workstation: a small Starlette app over the evidence DB and the workspace's media files.

Access is denied by default: ``LoginRequired`` wraps the whole app and lets only the login page and
static CSS/JS through without a session, so a route added later cannot be public by accident. Every
POST goes through ``auth.action`` (CSRF, then role). All handlers are async and share one SQLite
connection, so every statement runs on the event-loop thread, one at a time, and a transaction can
never interleave with another request's. The exports (``/exports/*``) are the exception that keeps
the rule: they are too slow for the event loop, so they run in a worker thread on a connection of
their own (see ``exports.py``) and never touch the shared one. Password checks also leave the loop, for a small bounded thread pool
(``auth.PasswordChecker``), so a flood of bad logins cannot stall anyone's page.
"""

from __future__ import annotations

import csv
import io
import math
import mimetypes
import os
import stat
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, quote

import anyio
import cv2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import anchor, annotate
from ..config import CATEGORY_IDS, Config
from ..evidence import EvidenceError
from ..export import PackError, RedactionError
from ..export.cells import csv_row
from ..frames import frame_at
from ..records import Decision
from ..sample import DecodeError
from ..store import REJECT_REASONS, SessionStore, Store
from ..vocab import ACTION_ZH, FRAME_COMPLETE_ZH, ORIGIN_ZH, REASON_ZH, STATUS_ZH
from ..workspace import Workspace
from . import exports, queries
from .auth import (
    DECIDERS,
    EXPORTERS,
    PasswordChecker,
    Sessions,
    Throttle,
    action,
    client_address,
    load_secret,
    new_token,
    parse_networks,
)
from .exports import Download, ExportForm
from .queries import Filters

HERE = Path(__file__).resolve().parent
ROLE_ZH = {"analyst": "审核员", "assessor": "考核员", "admin": "管理员"}
# fixed messages a redirect may name by code; nothing a user typed is ever echoed this way
MESSAGES = {
    "confirm": "已确认。", "reject": "已驳回。", "relabel": "已改类。", "trim": "已保存裁剪范围。",
    "note": "已添加备注。", "same_category": "类别未变，未记录。", "done": "当前筛选下已没有待审条目。",
    "batch": "批量操作已完成。", "batch_empty": "未选择任何条目。", "correct_box": "已保存修正后的框。",
    "add": "已补录漏检违规（已确认，人工补录）。", "complete": "已标记：本帧已全部标注。",
}
BATCH_MAX = 500
MAX_ID = 2**63 - 1  # SQLite's largest integer: a bigger id names nothing (and must not reach SQLite)
PACKS_AT_ONCE = 2  # meeting packs copy (and may blur) evidence video: more at once would starve the server
MEDIA_DIRS = ("clips", "frames")
SECURITY_HEADERS = [
    (b"content-security-policy",
     (b"default-src 'self'; img-src 'self'; media-src 'self'; object-src 'none'; frame-ancestors 'none';"
      b" base-uri 'none'; form-action 'self'")),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass
class Review:
    """Everything a request handler needs, hung on ``app.state.review``."""

    ws: Workspace
    cfg: Config
    store: Store
    sessions: Sessions
    throttle: Throttle
    templates: Jinja2Templates
    passwords: PasswordChecker
    proxies: tuple = ()
    pack_slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(PACKS_AT_ONCE))

    def active_user(self, name: object) -> dict | None:
        """The session's user, re-read each request so that disabling takes effect at once."""
        if not isinstance(name, str):
            return None
        user = self.store.user(name)
        return user if user and not user["disabled"] else None

    def render(self, request: Request, template: str, status_code: int = 200, **context: object) -> Response:
        user = request.state.user
        context |= {
            "user": user, "role_zh": ROLE_ZH.get(user["role"], "") if user else "",
            "csrf": request.state.session.get("csrf", ""), "cfg": self.cfg,
            "can_decide": bool(user and user["role"] in DECIDERS),
            "can_export": bool(user and user["role"] in EXPORTERS),
        }
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    def error(self, request: Request, status_code: int, message: str) -> Response:
        return self.render(request, "message.html", status_code, message=message)


def _rv(request: Request) -> Review:
    return request.app.state.review


def _public(path: str) -> bool:
    return path == "/login" or (path.startswith("/static/") and ".." not in path)


class LoginRequired:
    """Pure ASGI middleware: attaches session and user to the request, refuses anonymous requests
    (302 to the login page for page loads, 401 for media and POSTs), and adds security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        review = _rv(request)
        request.state.client_ip, request.state.https = client_address(request, review.proxies)
        session = review.sessions.read(request)
        request.state.session = session
        request.state.user = review.active_user(review.sessions.user(session))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).raw.extend(SECURITY_HEADERS)
            await send(message)

        if request.state.user is None and not _public(scope["path"]):
            await _deny(request)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _deny(request: Request) -> Response:
    if request.method in ("GET", "HEAD") and not request.url.path.startswith("/media/"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=302)
    return PlainTextResponse("请先登录。", status_code=401)


def _safe_next(target: str) -> str:
    """Only same-site paths, so the login form cannot be used as an open redirect."""
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else "/"


# -- login -------------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    review = _rv(request)
    if request.state.user:
        return RedirectResponse(_safe_next(request.query_params.get("next", "/")), status_code=302)
    fresh = not request.state.session.get("csrf")
    if fresh:  # an anonymous cookie whose token the login form must echo
        request.state.session = {"csrf": new_token()}
    response = review.render(request, "login.html", next=_safe_next(request.query_params.get("next", "/")))
    if fresh:
        review.sessions.write(request, response, None, request.state.session["csrf"])
    return response


@action()
async def login(request: Request) -> Response:
    review = _rv(request)
    form = await request.form()
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    who = (name.lower(), request.state.client_ip)
    if not review.throttle.attempt(*who):
        return review.render(request, "login.html", 429, next=target, name=name,
                             error="登录失败次数过多，请 5 分钟后再试。")
    user = review.store.user(name) if name else None
    ok = await review.passwords.verify(user["password_hash"] if user else None, password)
    if ok is None:
        return review.render(request, "login.html", 503, next=target, name=name,
                             error="登录请求过多，服务器繁忙，请稍后再试。")
    if not ok or user["disabled"]:  # a disabled account gets the answer a wrong password gets
        return review.render(request, "login.html", 401, next=target, name=name, error="用户名或密码错误。")
    review.throttle.succeeded(*who)
    response = RedirectResponse(target, status_code=303)
    review.sessions.write(request, response, user["name"])
    return response


@action()
async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    _rv(request).sessions.end(request, response)
    return response


# -- queue -------------------------------------------------------------------------------------


def _filters(request: Request, params: dict[str, str] | None = None) -> Filters:
    return Filters.parse(params if params is not None else dict(request.query_params), _rv(request).cfg)


def _posted_filters(request: Request, form: Mapping[str, object]) -> Filters:
    """The queue view a form came from (its ``q`` field), re-parsed so only valid filters survive."""
    return _filters(request, dict(parse_qsl(str(form.get("q", "")))))


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default


def _district_choices(review: Review) -> list[str]:
    """Configured districts first (in config order), then any others found in the data."""
    known = list(review.cfg.districts)
    return known + [d for d in queries.districts(review.store) if d not in known]


async def queue(request: Request) -> Response:
    review = _rv(request)
    f = _filters(request)
    total = queries.queue_count(review.store, f, review.cfg.tz)
    pages = max(1, -(-total // queries.PER_PAGE))
    page = min(max(1, _int(request.query_params.get("page"), 1)), pages)
    rows = queries.queue_page(review.store, f, review.cfg.tz, page)
    return review.render(
        request, "queue.html", rows=rows, total=total, page=page, pages=pages, f=f, qs=f.query_string(),
        counts=queries.status_counts(review.store, f, review.cfg.tz), districts=_district_choices(review),
        statuses=STATUS_ZH, sorts={"time": "时间 ↑", "-time": "时间 ↓", "-confidence": "置信度 ↓",
                                   "confidence": "置信度 ↑", "uncertain": "最不确定优先"},
        reasons=REASON_ZH, message=MESSAGES.get(request.query_params.get("m", "")),
        count=_int(request.query_params.get("n"), 0),
    )


@action(*DECIDERS)
async def batch(request: Request) -> Response:
    """Confirm or reject many violations at once; each is its own decision (and custody entry)."""
    review = _rv(request)
    form = await request.form()
    qs = _posted_filters(request, form).query_string()
    what, reason = str(form.get("action", "")), str(form.get("reason", "")) or None
    if what not in ("confirm", "reject") or (what == "reject" and reason not in REJECT_REASONS):
        return review.error(request, 400, "批量操作须为确认，或附驳回原因的驳回。")
    ids = [i for i in (_int(x, 0) for x in form.getlist("ids")) if 0 < i <= MAX_ID][:BATCH_MAX]
    done = 0
    for vid in ids:
        try:
            review.store.record_decision(Decision(vid, request.state.user["name"], what,
                                                  reason=reason if what == "reject" else None))
            done += 1
        except LookupError:
            continue
    if done:
        anchor.witness_quietly(review.ws, review.store, "review_batch")  # the signed head, outside the database
    code = "batch" if ids else "batch_empty"
    return RedirectResponse(f"/?{_join(qs, f'm={code}&n={done}')}", status_code=303)


def _join(qs: str, extra: str) -> str:
    return f"{qs}&{extra}" if qs else extra


@action()
async def export_csv(request: Request) -> Response:
    """The filtered queue as CSV (UTF-8 with BOM so Excel shows Chinese); the export is logged."""
    review = _rv(request)
    form = await request.form()
    f = _posted_filters(request, form)
    rows = queries.all_matching(review.store, f, review.cfg.tz)
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["编号", "类别", "区域", "巡查员", "开始时间", "结束时间", "置信度", "状态", "源文件", "源文件SHA-256",
                  "证据片段", "片段SHA-256"])
    for r in rows:  # names and paths come from folders and manifests: written so no cell is a formula
        out.writerow(csv_row([
            r["id"], review.cfg.category_label(r["category"]), r["district"] or "", r["inspector"] or "",
            _local(review.cfg, r["start_time"]), _local(review.cfg, r["end_time"]), f"{r['confidence']:.3f}",
            STATUS_ZH[r["status"]], r["source_path"], r["source_sha256"], r["clip_path"] or "",
            r["clip_sha256"] or ""]))
    review.store.log_event("review_export", "violations", None, {"filters": asdict(f), "rows": len(rows)},
                           request.state.user["name"])
    stamp = datetime.now(review.cfg.tz).strftime("%Y%m%d_%H%M%S")
    return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f"attachment; filename=vaudit_{stamp}.csv"})


# -- review ------------------------------------------------------------------------------------


async def review_page(request: Request) -> Response:
    review = _rv(request)
    vid = request.path_params["vid"]
    v = queries.violation(review.store, vid) if vid <= MAX_ID else None
    if v is None:
        return review.error(request, 404, f"没有编号为 {vid} 的违规记录。")
    f = _filters(request)
    return review.render(
        request, "review.html", v=v, f=f, qs=f.query_string(),
        nav=queries.neighbours(review.store, f, review.cfg.tz, vid),
        siblings=queries.same_source(review.store, v), history=queries.history(review.store, vid),
        reasons=REASON_ZH, statuses=STATUS_ZH, actions=ACTION_ZH, category_keys=CATEGORY_IDS, origins=ORIGIN_ZH,
        frame_id=queries.frame_near(review.store, v["source_id"], v["run_id"], v["best_t_s"]),
        message=MESSAGES.get(request.query_params.get("m", "")),
    )


def _decision(form: dict[str, str], v: dict, user: str, cfg: Config) -> Decision | str:
    """The Decision a review form asks for, or a Chinese message saying what is wrong with it."""
    what = form.get("action", "")
    note = form.get("note", "").strip()[:2000] or None
    if what == "confirm":
        return Decision(v["id"], user, "confirm", note=note)
    if what == "reject":
        if form.get("reason") not in REJECT_REASONS:
            return "驳回须选择原因：误检、重复、非违规或画面不清。"
        return Decision(v["id"], user, "reject", reason=form["reason"], note=note)
    if what == "relabel":
        if form.get("category") not in cfg.categories:
            return "改类须选择一个类别。"
        return Decision(v["id"], user, "relabel", category=form["category"], note=note)
    if what == "trim":
        try:
            start, end = float(form.get("start_s", "")), float(form.get("end_s", ""))
        except ValueError:
            return "裁剪的起止时间须为秒数。"
        if not (math.isfinite(start) and math.isfinite(end)):
            return "裁剪的起止时间须为有限的秒数。"
        if not 0 <= start < end:
            return "裁剪的起点须早于终点。"
        return Decision(v["id"], user, "trim", start_s=start, end_s=end, note=note)
    if what == "note":
        return Decision(v["id"], user, "note", note=note) if note else "备注不能为空。"
    if what == "correct_box":
        box = _posted_box(form)
        return box if isinstance(box, str) else Decision(v["id"], user, "correct_box", box=box, note=note)
    return "未知的操作。"


def _posted_box(form: Mapping[str, object]) -> tuple[float, float, float, float] | str:
    """x1, y1, x2, y2 from a form (source pixels), or the message saying what is wrong."""
    try:
        box = tuple(float(str(form.get(k, ""))) for k in ("x1", "y1", "x2", "y2"))
    except ValueError:
        return "框的坐标须为数字（先按 n 或 b 再拖动画框）。"
    if not all(math.isfinite(x) for x in box) or not (box[0] < box[2] and box[1] < box[3]):
        return "框须有正的宽和高。"
    return box


@action(*DECIDERS)
async def decide(request: Request) -> Response:
    """Record one decision. Confirm and reject finish the item, so the next pending one opens;
    relabel, trim and note leave it pending, so the same item is shown again for its verdict."""
    review = _rv(request)
    vid = request.path_params["vid"]
    v = queries.violation(review.store, vid) if vid <= MAX_ID else None
    if v is None:
        return review.error(request, 404, f"没有编号为 {vid} 的违规记录。")
    form = {k: str(val) for k, val in (await request.form()).items()}
    f = _posted_filters(request, form)
    qs = f.query_string()
    d = _decision(form, v, request.state.user["name"], review.cfg)
    if isinstance(d, str):
        return review.error(request, 400, d)
    if d.action == "relabel" and d.category == v["category"]:
        return RedirectResponse(f"/v/{vid}?{_join(qs, 'm=same_category')}", status_code=303)
    following = queries.next_pending(review.store, f, review.cfg.tz, vid)
    try:
        review.store.record_decision(d)
    except ValueError as e:
        return review.error(request, 400, str(e))
    anchor.witness_quietly(review.ws, review.store, "review")  # a batch of one: the signed head, outside the DB
    if d.action not in ("confirm", "reject"):
        following = vid
    if following is None:
        return RedirectResponse(f"/?{_join(qs, 'm=done')}", status_code=303)
    return RedirectResponse(f"/v/{following}?{_join(qs, f'm={d.action}')}", status_code=303)


# -- labelling what the model needs: missed violations, frames marked complete --------------------


@action(*DECIDERS)
async def add_violation(request: Request) -> Response:
    """A violation the model missed, drawn on a paused clip or a sampled frame: its clip and keyframe are
    made in a worker thread (ffmpeg, decoding), then recorded here on the loop's connection."""
    review = _rv(request)
    sid = request.path_params["sid"]
    form = {k: str(val) for k, val in (await request.form()).items()}
    qs = _posted_filters(request, form).query_string()
    src_rows = review.store.query("SELECT id FROM sources WHERE id = ? AND status = 'ready'", [sid]) if sid <= MAX_ID else []
    if not src_rows:
        return review.error(request, 404, f"没有编号为 {sid} 的源文件。")
    box = _posted_box(form)
    if isinstance(box, str):
        return review.error(request, 400, box)
    category = form.get("category", "")
    if category not in review.cfg.categories:
        return review.error(request, 400, "补录须选择类别：1 暴露垃圾、2 违规停车、3 占道经营。")
    try:
        t_s = float(form.get("t_s", ""))
        if not math.isfinite(t_s):
            raise ValueError
        run_id = annotate.current_run(review.store, sid)
        src = review.store.source(sid)
        staged = await run_in_threadpool(annotate.stage_added, review.ws, review.cfg, src, run_id, category, t_s, box)
        note = form.get("note", "").strip()[:2000] or None
        new = annotate.commit_added(review.ws, review.store, review.cfg, staged, request.state.user["name"], note)
    except ValueError as e:  # AnnotationError and a bad box or time are ValueErrors
        return review.error(request, 400, f"补录未保存：{e}" if str(e) else "补录须给出画面时间（秒）。")
    except (DecodeError, EvidenceError, OSError) as e:
        return review.error(request, 500, f"补录未保存，证据文件生成失败：{e}")
    anchor.witness_quietly(review.ws, review.store, "review")
    return RedirectResponse(f"/v/{new}?{_join(qs, 'm=add')}", status_code=303)


async def frame_page(request: Request) -> Response:
    review = _rv(request)
    fid = request.path_params["fid"]
    f = queries.frame(review.store, fid) if fid <= MAX_ID else None
    if f is None:
        return review.error(request, 404, f"没有编号为 {fid} 的抽样帧。")
    qs = _filters(request).query_string()
    return review.render(
        request, "frame.html", fr=f, qs=qs, steps=queries.frame_steps(review.store, f),
        boxes=queries.frame_boxes(review.store, f), marks=queries.frame_marks(review.store, fid),
        statuses=STATUS_ZH, origins=ORIGIN_ZH, category_keys=CATEGORY_IDS, complete_zh=FRAME_COMPLETE_ZH,
        message=MESSAGES.get(request.query_params.get("m", "")))


async def frame_image(request: Request) -> Response:
    """A sampled frame decoded from the original on demand (never written to disk)."""
    review = _rv(request)
    fid = request.path_params["fid"]
    f = queries.frame(review.store, fid) if fid <= MAX_ID else None
    if f is None:
        return PlainTextResponse("未找到。", status_code=404)
    media = str(review.ws.abs(f["original_copy"])) if f["original_copy"] else f["source_path"]
    try:
        image, _ = await run_in_threadpool(frame_at, media, f["t_s"], f["rotation"] or 0, review.cfg.sampling.max_side)
    except (DecodeError, OSError):
        return PlainTextResponse("该帧无法解码。", status_code=404)
    _, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return Response(jpg.tobytes(), media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})


@action(*DECIDERS)
async def frame_complete(request: Request) -> Response:
    review = _rv(request)
    fid = request.path_params["fid"]
    form = await request.form()
    qs = _posted_filters(request, form).query_string()
    try:
        if fid > MAX_ID:
            raise LookupError(fid)
        annotate.mark_complete(review.store, fid, request.state.user["name"])
    except LookupError:
        return review.error(request, 404, f"没有编号为 {fid} 的抽样帧。")
    anchor.witness_quietly(review.ws, review.store, "review")
    return RedirectResponse(f"/f/{fid}?{_join(qs, 'm=complete')}", status_code=303)


# -- exports -----------------------------------------------------------------------------------

# what an export may fail with that the user should read (a bad form, altered evidence, no CJK font, disk full)
EXPORT_ERRORS = (ValueError, PackError, RedactionError, RuntimeError, OSError)


def _exports_page(request: Request, form: ExportForm, status_code: int = 200, error: str | None = None) -> Response:
    review = _rv(request)
    return review.render(
        request, "exports.html", status_code, form=form, error=error, districts=_district_choices(review),
        figures=queries.model_figures(review.store),
        statuses=exports.STATUSES_ZH, formats=exports.FORMATS_ZH, suggestions=exports.suggested_periods(review.cfg.tz),
    )


async def exports_page(request: Request) -> Response:
    """The exports form; GETs bypass ``action``, so the role is checked here."""
    review = _rv(request)
    if request.state.user["role"] not in EXPORTERS:
        return review.error(request, 403, "只有考核员和管理员可以导出统计表和曝光材料。")
    return _exports_page(request, ExportForm(period=exports.default_period(review.cfg.tz)))


def _download(d: Download) -> Response:
    headers = {"content-disposition": exports.content_disposition(d.filename), "content-length": str(d.size),
               "cache-control": "no-store"}
    if isinstance(d.body, bytes):
        return Response(d.body, media_type=d.media_type, headers=headers)
    return StreamingResponse(d.chunks(), media_type=d.media_type, headers=headers)


Builder = Callable[[Workspace, Config, ExportForm, str], Download]


async def _export(request: Request, build: Builder) -> Response:
    """Parse the form, run ``build`` in a worker thread, and send its file, or the page with the reason.
    ``build`` gets the workspace and config, never the ``Review``: the shared connection stays here."""
    form = ExportForm.parse(await request.form())
    review = _rv(request)
    try:
        d = await run_in_threadpool(build, review.ws, review.cfg, form, request.state.user["name"])
    except EXPORT_ERRORS as e:
        status_code, message = exports.failure(e)
        return _exports_page(request, form, status_code, message)
    return _download(d)


def _build_counts(ws: Workspace, cfg: Config, form: ExportForm, actor: str) -> Download:
    status, fmt = form.checked_counts()
    return exports.counts_file(ws, cfg, form.checked_period(cfg.tz), status, fmt, actor)


def _build_charts(ws: Workspace, cfg: Config, form: ExportForm, actor: str) -> Download:
    return exports.charts_zip(ws, cfg, form.checked_period(cfg.tz), actor)


@action(*EXPORTERS)
async def export_counts(request: Request) -> Response:
    return await _export(request, _build_counts)


@action(*EXPORTERS)
async def export_charts(request: Request) -> Response:
    return await _export(request, _build_charts)


@action(*EXPORTERS)
async def export_pack(request: Request) -> Response:
    """The district list is read here, on the event loop, since it needs the app's shared connection.
    At most ``PACKS_AT_ONCE`` packs are built at a time; one more is refused with a message, not queued."""
    review = _rv(request)
    district_choices = _district_choices(review)

    def build(ws: Workspace, cfg: Config, form: ExportForm, actor: str) -> Download:
        return exports.pack_zip(ws, cfg, form.checked_period(cfg.tz), form.checked_district(district_choices),
                                form.blur_faces, form.blur_plates, actor)

    if not review.pack_slots.acquire(blocking=False):
        return _exports_page(request, ExportForm.parse(await request.form()), 429,
                             "已有材料包正在生成，请稍后再试。")
    try:
        return await _export(request, build)
    finally:
        review.pack_slots.release()


# -- media -------------------------------------------------------------------------------------


def _plain_relative(rel: str) -> bool:
    """A workspace-relative POSIX path with no way out: no root, no '..', no backslash or NUL."""
    if not rel or rel.startswith("/") or "\\" in rel or "\0" in rel or ":" in rel.split("/", 1)[0]:
        return False
    return all(part not in ("", ".", "..") for part in PurePosixPath(rel).parts) and "//" not in rel


def open_media(root: Path, rel: str) -> tuple[int, os.stat_result]:
    """Open ``rel``, a file under ``clips/`` or ``frames/``, without following a symlink anywhere on the
    way (each folder is opened relative to the last, O_NOFOLLOW); only a regular file is accepted.
    Raises OSError otherwise. A planted link to the cookie key or the database opens nothing."""
    parts = rel.split("/")
    if len(parts) < 2 or parts[0] not in MEDIA_DIRS:
        raise FileNotFoundError(rel)
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            sub = os.open(part, nofollow | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
        f = os.open(parts[-1], nofollow | os.O_NONBLOCK, dir_fd=fd)  # NONBLOCK: a planted FIFO cannot hang us
    finally:
        os.close(fd)
    st = os.fstat(f)
    if not stat.S_ISREG(st.st_mode):
        os.close(f)
        raise FileNotFoundError(rel)
    return f, st


class MediaFile(FileResponse):
    """A FileResponse that opens its file again by the same symlink-free walk and checks that it is
    still the file that was checked (device and inode), so swapping in a link after the check gains
    nothing. Range requests are answered by FileResponse as usual."""

    def __init__(self, root: Path, rel: str, st: os.stat_result, **kw: object):
        super().__init__(root / rel, stat_result=st, **kw)
        self._root, self._rel, self._identity = root, rel, (st.st_dev, st.st_ino)

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        fd, st = await anyio.to_thread.run_sync(open_media, self._root, self._rel)
        if (st.st_dev, st.st_ino) != self._identity:
            os.close(fd)
            raise RuntimeError(f"{self._rel} was replaced while being served")
        file = anyio.wrap_file(os.fdopen(fd, "rb"))
        try:
            yield file
        finally:
            with anyio.CancelScope(shield=True):
                await file.aclose()


async def media(request: Request) -> Response:
    """Serve an evidence file. The path must be an artifact the DB knows, under ``clips/`` or
    ``frames/``, and a regular file reached without any symlink; nothing else is opened. FileResponse
    answers Range requests (206) so the video can seek."""
    review = _rv(request)
    rel = request.path_params["path"]
    if not _plain_relative(rel) or not queries.is_artifact(review.store, rel):
        return PlainTextResponse("未找到。", status_code=404)
    try:
        fd, st = await anyio.to_thread.run_sync(open_media, review.ws.evidence, rel)
    except OSError:  # missing, a symlink (ELOOP), a folder, a FIFO, outside clips/ and frames/...
        return PlainTextResponse("未找到。", status_code=404)
    os.close(fd)
    kind = mimetypes.guess_type(rel)[0] or "application/octet-stream"
    return MediaFile(review.ws.evidence, rel, st, media_type=kind, headers={"cache-control": "private, max-age=3600"})


# -- app ---------------------------------------------------------------------------------------


def _local(cfg: Config, iso: str | None) -> str:
    if not iso:
        return "时间未知"
    return datetime.fromisoformat(iso).astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M:%S")


def _templates(cfg: Config) -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters |= {
        "local": lambda iso: _local(cfg, iso),
        "cat_zh": lambda c: cfg.categories[c].zh if c in cfg.categories else c,
        "cat_label": cfg.category_label,
        "media_url": lambda rel: "/media/" + quote(rel),
        "basename": lambda p: PurePosixPath(p or "").name,
        "pct": lambda x: f"{x * 100:.0f}%",
    }
    return templates


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    review: Review = app.state.review
    review.passwords.close()
    review.sessions.store.close()


def create_app(ws: Workspace, cfg: Config, *, secure_cookies: bool = False) -> Starlette:
    """The review app for one workspace. ``secure_cookies`` marks the session cookie Secure even when
    a TLS-terminating proxy forwards plain http (https requests get it regardless)."""
    app = Starlette(
        routes=[
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/", queue, methods=["GET"]),
            Route("/batch", batch, methods=["POST"]),
            Route("/export", export_csv, methods=["POST"]),
            Route("/exports", exports_page, methods=["GET"]),
            Route("/exports/counts", export_counts, methods=["POST"]),
            Route("/exports/charts", export_charts, methods=["POST"]),
            Route("/exports/pack", export_pack, methods=["POST"]),
            Route("/v/{vid:int}", review_page, methods=["GET"]),
            Route("/v/{vid:int}/decide", decide, methods=["POST"]),
            Route("/s/{sid:int}/add", add_violation, methods=["POST"]),
            Route("/f/{fid:int}", frame_page, methods=["GET"]),
            Route("/f/{fid:int}/image.jpg", frame_image, methods=["GET"]),
            Route("/f/{fid:int}/complete", frame_complete, methods=["POST"]),
            Route("/media/{path:path}", media, methods=["GET"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(LoginRequired)],
        lifespan=_lifespan,
    )
    exports.sweep_review_tmp(ws)
    sessions = Sessions(load_secret(ws.review_secret), SessionStore(ws.sessions_db), secure_cookies)
    passwords = PasswordChecker()
    store = Store(ws.db)
    queries.register_thresholds(store, cfg)
    app.state.review = Review(ws, cfg, store, sessions, Throttle(), _templates(cfg), passwords,
                              parse_networks(cfg.review.trusted_proxies))
    return app
