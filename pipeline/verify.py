"""Verification, history and backup of the evidence: what a disputed clip is defended with.

``verify`` recomputes every artifact hash and the whole custody chain (and, deep, every original),
and lists each problem precisely: which file or entry, what was expected, what was found.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import __version__, custody
from .hashing import sha256_file
from .store import Store
from .workspace import Workspace


@dataclass(frozen=True)
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def verify(ws: Workspace, store: Store, deep: bool = False) -> tuple[list[Problem], dict[str, int]]:
    problems: list[Problem] = []
    counts = {"artifacts": 0, "custody_entries": 0, "originals": 0}
    ok = store.conn.execute("PRAGMA integrity_check").fetchone()[0]
    if ok != "ok":
        problems.append(Problem("database", f"integrity_check: {ok}"))
    for a in store.query("SELECT id, violation_id, kind, path, sha256, size FROM artifacts ORDER BY id"):
        counts["artifacts"] += 1
        p = ws.abs(a["path"])
        label = f"{a['kind']} {a['path']} (artifact {a['id']}, violation {a['violation_id']})"
        if not p.exists():
            problems.append(Problem(label, "file missing"))
            continue
        found = sha256_file(p)
        if found != a["sha256"]:
            problems.append(Problem(label, f"sha256 expected {a['sha256']}, found {found}"))
    counts["custody_entries"] = store.query("SELECT count(*) n FROM custody")[0]["n"]
    problems += [Problem(f"custody entry {c.seq}", c.what) for c in custody.verify(store.conn)]
    for s in store.query("SELECT id, sha256, path, size, mtime, original_copy FROM sources WHERE status = 'ready'"):
        counts["originals"] += 1
        copy = ws.abs(s["original_copy"]) if s["original_copy"] else None
        p = copy if copy and copy.exists() else Path(s["path"])
        label = f"original {p} (source {s['id']})"
        if not p.exists():
            problems.append(Problem(label, "missing (moved or deleted)"))
            continue
        st = p.stat()
        if st.st_size != s["size"]:
            problems.append(Problem(label, f"size expected {s['size']}, found {st.st_size} (changed)"))
        elif deep:
            found = sha256_file(p)
            if found != s["sha256"]:
                problems.append(Problem(label, f"sha256 expected {s['sha256']}, found {found} (changed)"))
        elif not copy and s["mtime"] is not None and abs(st.st_mtime - s["mtime"]) > 1e-3:
            problems.append(Problem(label, "modified since ingest (mtime changed); run `verify --deep` to re-hash"))
    return problems, counts


def violation_history(store: Store, violation_id: int) -> dict:
    """Everything known about one violation: its source, run, artifacts, decisions and custody entries."""
    v = store.query("SELECT * FROM violations WHERE id = ?", [violation_id])
    if not v:
        raise LookupError(f"no violation with id {violation_id}")
    v = v[0]
    src = store.query("SELECT id, sha256, path, district, inspector, capture_start, capture_start_origin, ingested_at"
                      " FROM sources WHERE id = ?", [v["source_id"]])[0]
    run = store.query("SELECT id, run_key, started_at, model_path, model_sha256, config_sha256, version FROM runs"
                      " WHERE id = ?", [v["run_id"]])[0]
    arts = store.query("SELECT kind, path, sha256, size, start_s, end_s, command, created_at FROM artifacts"
                       " WHERE violation_id = ? ORDER BY id", [violation_id])
    decisions = store.query("SELECT user, action, category, reason, note, start_s, end_s, created_at FROM decisions"
                            " WHERE violation_id = ? ORDER BY id", [violation_id])
    entries = (custody.history(store.conn, "source", src["id"]) + custody.history(store.conn, "run", run["id"])
               + custody.history(store.conn, "violation", violation_id))
    entries.sort(key=lambda e: e["seq"])
    return {"violation": v, "source": src, "run": run, "artifacts": arts, "decisions": decisions, "custody": entries}


def format_history(h: dict) -> str:
    v, s, r = h["violation"], h["source"], h["run"]
    lines = [
        f"violation {v['id']}: {v['category']} ({v['status']}) {v['start_s']:.2f}-{v['end_s']:.2f} s of source {s['id']}",
        f"  wall clock: {v['start_time'] or '?'} .. {v['end_time'] or '?'}",
        f"  source: {s['path']}", f"    sha256 {s['sha256']}", (f"    district {s['district']}, inspector "
        f"{s['inspector']}, capture start {s['capture_start']} ({s['capture_start_origin']})"),
        (f"  run {r['id']}: vaudit {r['version']}, model {r['model_path']} sha256 {r['model_sha256']}, "
        f"config sha256 {r['config_sha256']}"),
        "  artifacts:",
    ]
    for a in h["artifacts"]:
        span = f" {a['start_s']:.3f}-{a['end_s']:.3f} s" if a["start_s"] is not None else ""
        lines.append(f"    {a['kind']}: {a['path']} sha256 {a['sha256']} ({a['size']} bytes){span}")
        if a["command"]:
            lines.append(f"      made by: {a['command']}")
    lines.append("  decisions:" if h["decisions"] else "  decisions: none")
    for d in h["decisions"]:
        extra = ", ".join(f"{k} {d[k]}" for k in ("category", "reason", "note", "start_s", "end_s") if d[k] is not None)
        lines.append(f"    {d['created_at']} {d['user']}: {d['action']}{' (' + extra + ')' if extra else ''}")
    lines.append("  custody log:")
    for e in h["custody"]:
        lines.append(f"    #{e['seq']} {e['at']} {e['actor']} {e['event']} {e['entity']} {e['entity_id']}"
                     f" hash {e['hash'][:16]}…")
    return "\n".join(lines)


def backup(store: Store, dest: Path) -> dict:
    """A consistent copy of the live database (SQLite online backup API) and a manifest beside it."""
    dest = Path(dest)
    if dest.is_dir() or not dest.suffix:
        dest.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        dest = dest / f"evidence-{stamp}.db"
    tmp = dest.with_suffix(".db.partial")
    target = sqlite3.connect(tmp)
    try:
        store.conn.backup(target)
    finally:
        target.close()
    os.replace(tmp, dest)
    copy = sqlite3.connect(dest)
    try:
        integrity = copy.execute("PRAGMA integrity_check").fetchone()[0]
        head = copy.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
        counts = {t: copy.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("sources", "violations", "artifacts", "decisions", "custody")}
    finally:
        copy.close()
    manifest = {
        "database": dest.name, "sha256": sha256_file(dest), "size": dest.stat().st_size,
        "made_at": datetime.now(UTC).isoformat(timespec="seconds"), "vaudit_version": __version__,
        "source_database": str(store.path), "integrity_check": integrity, "rows": counts,
        "custody_head": {"seq": head[0], "hash": head[1]} if head else None,
    }
    dest.with_suffix(".manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest
