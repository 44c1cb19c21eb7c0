"""The exposure-meeting pack: a folder or zip that shows and defends a period's confirmed violations.

It has to work on a meeting-room PC with no vaudit and no network, and survive being passed around:
``index.html`` is self-contained (relative links, inline CSS), every file's SHA-256 is in
``manifest.json`` together with the database ids it came from, each violation carries its custody
excerpt, the manifest carries the signed custody head and is itself signed with the office key
(``manifest.sig``, Ed25519), and ``verify_pack.py`` (standard library only) checks all of it against the
office's public key. Evidence is copied, never
moved or edited; an evidence file whose bytes no longer match the database is refused, not packed.
The pack is built in a staging folder and appears under its final name only when complete.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import sys
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__, anchor, keys
from ..config import Config
from ..hashing import sha256_file
from ..store import Store
from ..verify import violation_history
from ..vocab import UNKNOWN_DISTRICT
from ..workspace import Workspace
from .charts import charts
from .counts import CountsTable, counts, wide_rows, write_counts
from .periods import Period
from .redact import Redactor, load_redactor

FORMAT = "vaudit-pack/1"
MANIFEST_CONTEXT = b"vaudit-pack-manifest/1\n"  # what the signature covers: this, then manifest.json's bytes
VERIFIER = Path(__file__).with_name("verify_pack.py")


class PackError(Exception):
    """The pack cannot be made as asked (target exists, evidence altered); nothing is written."""


def pack_violations(store: Store, period: Period, district: str | None = None) -> list[dict]:
    """Confirmed current violations filmed in the period (optionally one district), oldest first."""
    rows = store.violations(status="confirmed", district=district)
    dated = [(r, datetime.fromisoformat(r["start_time"]).astimezone(period.tz)) for r in rows if r["start_time"]]
    return [{**r, "when": when} for r, when in sorted(dated, key=lambda p: p[1]) if period.contains(when)]


def _artifacts(store: Store, violation_ids: list[int]) -> list[dict]:
    if not violation_ids:
        return []
    marks = ",".join("?" for _ in violation_ids)
    return store.query(f"SELECT id, violation_id, run_id, kind, path, sha256, size FROM artifacts"
                       f" WHERE violation_id IN ({marks}) ORDER BY violation_id, id", violation_ids)


def _copy_evidence(ws: Workspace, art: dict, source_id: int, stage: Path, redactor: Redactor | None) -> dict:
    """Copy (or blur) one artifact into ``media/<violation>/``; refuse if the original was altered."""
    src = ws.abs(art["path"])
    found = sha256_file(src) if src.is_file() else "missing"
    if found != art["sha256"]:
        raise PackError(f"{art['kind']} {art['path']} (artifact {art['id']}) does not match the sha256 recorded"
                        f" for it ({found[:12]}… != {art['sha256'][:12]}…): run `vaudit verify`, nothing was packed")
    suffix = ".mp4" if redactor and art["kind"] == "clip" else src.suffix
    rel = f"media/{art['violation_id']}/{art['kind']}{suffix}"
    dst = stage / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    entry = {"role": art["kind"], "violation_id": art["violation_id"], "artifact_id": art["id"],
             "source_id": source_id, "run_id": art["run_id"], "original_path": art["path"],
             "original_sha256": art["sha256"]}
    if redactor is None:
        shutil.copyfile(src, dst)
    elif art["kind"] == "keyframe":
        entry["redacted"] = redactor.image(src, dst)
    else:
        entry["redacted"] = redactor.video(src, dst)
    return {"path": rel, **entry}


def _custody_excerpt(store: Store, violation_id: int) -> dict:
    """The violation's history with each custody entry's prev_hash, so the excerpt verifies on its own."""
    h = violation_history(store, violation_id)
    seqs = [e["seq"] for e in h["custody"]]
    marks = ",".join("?" for _ in seqs)
    prev = {r["seq"]: r["prev_hash"] for r in
            store.query(f"SELECT seq, prev_hash FROM custody WHERE seq IN ({marks})", seqs)}
    h["custody"] = [{**e, "prev_hash": prev[e["seq"]]} for e in h["custody"]]
    return h


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _check_target(out: Path) -> None:
    """A pack is never overwritten: it may have been handed out already, and its hash logged."""
    empty_dir = out.is_dir() and not any(out.iterdir()) and out.suffix.lower() != ".zip"
    if out.exists() and not empty_dir:
        raise PackError(f"{out} already exists: choose another name (an existing pack is never overwritten)")


def pack(ws: Workspace, store: Store, cfg: Config, period: Period, out: Path, district: str | None = None,
         blur_faces: bool = False, blur_plates: bool = False, actor: str = "system",
         key_path: Path | None = None) -> Path:
    """Build the pack for ``period`` at ``out`` (a folder, or a .zip file), log an export_pack custody
    event and witness the new head. The tables and charts rank every district; ``district`` limits the
    violation cards. With the office key (``key_path``, else the workspace's) the manifest and the head it
    carries are signed; without one the pack is unsigned."""
    out = Path(out).absolute()
    _check_target(out)
    try:
        key = keys.load(keys.key_path(ws, key_path))
    except keys.SigningKeyError as e:
        raise PackError(str(e)) from None
    redactor = load_redactor(blur_faces, blur_plates)  # before any work: a blur we cannot do is an error
    items = pack_violations(store, period, district)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    partial_zip = out.with_name(f".{out.name}.partial")
    try:
        files = _fill(stage, ws, store, cfg, period, items, district, redactor)
        manifest = _manifest(store, stage, files, period, district, items, blur_faces, blur_plates, actor, key)
        _write_json(stage / "manifest.json", manifest)
        if key:
            _write_json(stage / "manifest.sig", sign_manifest(stage / "manifest.json", key))
        built = _zip(stage, partial_zip) if out.suffix.lower() == ".zip" else stage
        store.log_event("export_pack", "export", None, {
            "period": period.label, "district": district, "violations": [v["id"] for v in items],
            "files": len(files), "manifest_sha256": sha256_file(stage / "manifest.json"), "output": out.name,
            "blur_faces": blur_faces, "blur_plates": blur_plates}, actor)
        os.replace(built, out)  # logged first: a pack that exists has always been recorded
        try:
            anchor.append(ws.witness, anchor.signed_head(store, "export_pack", key))
        except OSError as e:
            print(f"warning: custody head not witnessed: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        partial_zip.unlink(missing_ok=True)
    return out


def _fill(stage: Path, ws: Workspace, store: Store, cfg: Config, period: Period, items: list[dict],
          district: str | None, redactor: Redactor | None) -> list[dict]:
    """Write every file of the pack except the manifest; returns their manifest entries (without hashes)."""
    # a blurred clip is re-encoded to H.264 and plays anywhere, so the proxy is not needed (nor blurred twice)
    arts = [a for a in _artifacts(store, [v["id"] for v in items]) if not (redactor and a["kind"] == "proxy")]
    source_of = {v["id"]: v["source_id"] for v in items}
    files = [_copy_evidence(ws, a, source_of[a["violation_id"]], stage, redactor) for a in arts]
    for v in items:
        _write_json(stage / "custody" / f"{v['id']}.json", _custody_excerpt(store, v["id"]))
        files.append({"path": f"custody/{v['id']}.json", "role": "custody", "violation_id": v["id"],
                      "source_id": v["source_id"]})
    table = counts(store, cfg, period)
    write_counts(table, "xlsx", stage / f"counts_{period.label}.xlsx")
    chart_paths = charts(store, cfg, period, stage / "charts")
    shutil.copyfile(VERIFIER, stage / "verify_pack.py")
    (stage / "index.html").write_text(
        render_index(cfg, table, items, files, chart_paths, stage, district, redactor is not None), "utf-8")
    reports = ["index.html", "verify_pack.py", f"counts_{period.label}.xlsx",
               *(p.relative_to(stage).as_posix() for p in chart_paths)]
    return files + [{"path": rel, "role": "report"} for rel in reports]


def sign_manifest(manifest: Path, key: keys.SigningKey) -> dict:
    """``manifest.sig``: the office key's signature of the manifest's exact bytes, and the key that made it."""
    return {"format": "vaudit-pack-signature/1", "key": key.public.fingerprint, "public_key": key.public.text,
            "signature": keys.b64(key.sign(MANIFEST_CONTEXT + manifest.read_bytes()))}


def _manifest(store: Store, stage: Path, files: list[dict], period: Period, district: str | None,
              items: list[dict], blur_faces: bool, blur_plates: bool, actor: str,
              key: keys.SigningKey | None = None) -> dict:
    for f in files:
        p = stage / f["path"]
        f["sha256"], f["size"] = sha256_file(p), p.stat().st_size
    head = anchor.signed_head(store, "export_pack", key)  # the log as it stood when the pack was made
    return {
        "format": FORMAT, "vaudit_version": __version__, "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "made_by": actor, "period": period.label, "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(), "district": district, "violations": [v["id"] for v in items],
        "blurred": {"faces": blur_faces, "plates": blur_plates},
        "database": {"file": store.name, "custody_head": head},  # no absolute path: it names the host's disks
        "files": sorted(files, key=lambda f: f["path"]),
    }


def _zip(stage: Path, tmp: Path) -> Path:
    """Zip the staged pack under a temporary name; the caller renames it into place once logged."""
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(stage.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(stage).as_posix())
    return tmp


_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;margin:24px;color:#222}
h1{font-size:26px;margin-bottom:4px}.meta{color:#666;margin-bottom:20px}
table{border-collapse:collapse;margin:12px 0}th,td{border:1px solid #bbb;padding:4px 10px;text-align:right}
th{background:#f0f0f0}td:nth-child(2),th:nth-child(2){text-align:left}tr:last-child td{font-weight:bold}
.charts img{display:block;max-width:min(100%,1000px);margin-bottom:12px;border:1px solid #ddd}
h3{border-left:5px solid #c0392b;padding-left:8px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:16px}
.card{border:1px solid #ccc;border-radius:6px;padding:10px;break-inside:avoid}
.card img,.card video{width:100%;display:block;margin-bottom:6px;background:#000}
.card dl{display:grid;grid-template-columns:5em 1fr;margin:0;gap:2px 8px}.card dt{color:#666}
.card dd{margin:0;word-break:break-all}.tag{font-weight:bold;color:#c0392b}
"""


def _table_html(rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{'' if c is None else html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _card(cfg: Config, v: dict, media: dict[str, str]) -> str:
    e = html.escape
    video = media.get("proxy") or media.get("clip")
    label = cfg.categories[v["category"]].zh if v["category"] in cfg.categories else v["category"]
    return f"""<div class="card" id="v{v['id']}">
<img src="{e(media['keyframe'])}" alt="违规 {v['id']} 关键帧">
{f'<video controls preload="metadata" src="{e(video)}#t=0.1"></video>' if video else '<p>（无视频）</p>'}
<dl><dt>编号</dt><dd>{v['id']}</dd><dt>类别</dt><dd class="tag">{e(label)}</dd>
<dt>区域</dt><dd>{e(v['district'] or UNKNOWN_DISTRICT)}</dd>
<dt>时间</dt><dd>{v['when'].strftime('%Y-%m-%d %H:%M:%S')}</dd>
<dt>巡查员</dt><dd>{e(v['inspector'] or '—')}</dd>
<dt>原始视频</dt><dd>{e(Path(v['source_path']).name)}</dd>
<dt>证据</dt><dd><a href="{e(media.get('clip', ''))}">视频片段</a> · <a href="custody/{v['id']}.json">监管链记录</a></dd>
</dl></div>"""


def render_index(cfg: Config, table: CountsTable, items: list[dict], files: list[dict], chart_paths: list[Path],
                 stage: Path, district: str | None, blurred: bool) -> str:
    """The page shown at the meeting: the ranking, the charts, and a card per confirmed violation."""
    media: dict[int, dict[str, str]] = {}
    for f in files:
        if f["role"] in ("clip", "proxy", "keyframe"):
            media.setdefault(f["violation_id"], {})[f["role"]] = f["path"]
    charts_html = "".join(f'<img src="{html.escape(p.relative_to(stage).as_posix())}" alt="图表">'
                          for p in chart_paths)
    scope = district or "全部区域"
    note = "（人脸/车牌已做模糊处理）" if blurred else ""
    sections = []
    for name in [r.key for r in table.rows] + sorted({v["district"] for v in items} - {r.key for r in table.rows}):
        group = [v for v in items if (v["district"] or UNKNOWN_DISTRICT) == name]
        if group:  # districts in ranking order, worst first
            cards = "\n".join(_card(cfg, v, media.get(v["id"], {})) for v in group)
            sections.append(f'<h3>{html.escape(name)}（{len(group)} 起）</h3><div class="cards">{cards}</div>')
    made = datetime.now(cfg.tz).strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(table.period_zh)} 问题曝光材料</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(table.period_zh)} 城市管理问题曝光材料 · {html.escape(scope)}</h1>
<div class="meta">统计周期 {table.start[:10]} 至 {table.end[:10]}（不含）· 时区 {html.escape(table.timezone)} ·
已确认违规 {table.total} 起，上期 {table.previous_total} 起 · 生成于 {made}{note} ·
用 <code>python3 verify_pack.py --fingerprint "密钥指纹"</code> 校验本材料（指纹以会议书面材料为准）</div>
<h2>各区域排名</h2>{_table_html(wide_rows(table))}
<h2>图表</h2><div class="charts">{charts_html}</div>
<h2>违规明细（{len(items)} 起{'，' + html.escape(district) if district else ''}）</h2>
{"".join(sections) or "<p>本期无已确认的违规。</p>"}
</body></html>
"""
