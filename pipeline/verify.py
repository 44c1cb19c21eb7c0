"""Verification, history and backup of the evidence: what a disputed clip is defended with.

``verify`` recomputes every artifact hash (against the hash the custody log recorded) and the whole
custody chain (and, deep, every original), replays the log and compares the state tables with it, and
checks the log against the signed heads witnessed outside the database. It lists each problem
precisely: which file, row, field or entry, what was expected, what was found.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import __version__, anchor, custody, db, keys
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
    """Every problem ``verify_all`` finds with the workspace's own key and witness (notes dropped)."""
    r = verify_all(ws, store, deep)
    return r.problems, r.counts


@dataclass
class Report:
    problems: list[Problem]
    counts: dict[str, int]
    notes: list[str]


def verify_all(ws: Workspace, store: Store, deep: bool = False, trusted: keys.PublicKey | None = None,
               key_path: Path | None = None, extra_heads: Sequence[Path] = (), fingerprint: str | None = None) -> Report:
    """Files against the hashes the custody log recorded, the chain itself, the state tables against a
    replay of the log, and the log against every witnessed head (the workspace's witness file and any
    ``extra_heads``: a copy kept elsewhere, a pack's manifest.json).

    ``trusted``: the office public key from outside the workspace (``--public-key``); without it heads are
    checked against the workspace's own key, which an attacker with write access could have replaced.
    ``fingerprint``: the office key's fingerprint from the paperwork; the key used must have it.
    """
    heads = anchor.load([(ws.witness, True), *((Path(p), False) for p in extra_heads)])
    db.begin_snapshot(store.conn)  # one snapshot for every read below, while runs and reviews go on writing
    try:
        return _verify_snapshot(ws, store, deep, trusted, key_path, fingerprint, heads)
    finally:
        store.conn.execute("COMMIT")


def _verify_snapshot(ws: Workspace, store: Store, deep: bool, trusted: keys.PublicKey | None,
                     key_path: Path | None, fingerprint: str | None, heads: list) -> Report:
    problems: list[Problem] = []
    notes: list[str] = []
    counts = {"artifacts": 0, "custody_entries": 0, "originals": 0, "state_rows": 0, "witnessed_heads": 0}
    ok = db.integrity(store.conn)
    if ok != "ok":
        problems.append(Problem("database", f"integrity_check: {ok}"))
    state = custody.replay(store.conn)
    recorded = {path: (sha, v["seq"]) for v in state.violations.values()
                for path, (_, sha) in v["artifacts"].items()}
    for a in store.query("SELECT id, violation_id, kind, path, sha256, size FROM artifacts ORDER BY id"):
        counts["artifacts"] += 1
        p = ws.abs(a["path"])
        label = f"{a['kind']} {a['path']} (artifact {a['id']}, violation {a['violation_id']})"
        if not p.exists():
            problems.append(Problem(label, "file missing"))
            continue
        expected, seq = recorded.get(a["path"], (a["sha256"], None))
        found = sha256_file(p)
        if found != expected:
            where = f" (as custody entry {seq} recorded it)" if seq and expected != a["sha256"] else ""
            problems.append(Problem(label, f"sha256 expected {expected}{where}, found {found}"))
    counts["custody_entries"] = store.query("SELECT count(*) n FROM custody")[0]["n"]
    problems += [Problem(f"custody entry {c.seq}", c.what) for c in custody.verify(store.conn)]
    state_problems, counts["state_rows"] = check_state(store, state)
    problems += state_problems
    problems += _check_originals(ws, store, deep, counts)
    key_file = keys.key_path(ws, key_path)
    own = keys.load_public(key_file)
    if fingerprint:
        candidate = trusted or own
        found = candidate.fingerprint if candidate else "no key"
        if candidate is None or keys.normalise_fingerprint(found) != keys.normalise_fingerprint(fingerprint):
            problems.append(Problem(f"signing key {key_file}", f"is {found}, which does not have the office "
                                    f"key's fingerprint {fingerprint}"))
        else:
            trusted = candidate
    if trusted and own and own.raw != trusted.raw:
        problems.append(Problem(f"signing key {key_file}", f"is key {own.fingerprint}, not the office key "
                                f"{trusted.fingerprint} given on the command line"))
    if own and not trusted:
        notes.append(f"heads checked against the workspace's own key {own.fingerprint} ({key_file}); give "
                     "--public-key or --fingerprint from the office's paperwork to rule out a replaced key")
    w = anchor.check(store, heads, trusted or own, key_required=bool(trusted or own))
    problems += [Problem(where, what) for where, what in w.problems]
    notes += w.notes
    counts["witnessed_heads"] = w.heads
    return Report(problems, counts, notes)


def _check_originals(ws: Workspace, store: Store, deep: bool, counts: dict[str, int]) -> list[Problem]:
    problems = []
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
    return problems


def _differs(a: object, b: object) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) > 6e-4  # the log keeps times to 3 decimals and confidence to 4
    return a != b


def _fields(where: str, row: dict, expected: dict, fields: Sequence[str], seq: int) -> list[Problem]:
    return [Problem(where, f"{f} is {row[f]!r} in the table, but the custody log (entry {seq}) says {expected[f]!r}")
            for f in fields if _differs(row[f], expected[f])]


def _box(where: str, row: dict, box: list | None, seq: int) -> list[Problem]:
    """A row's x1..y2 against the box a custody entry recorded (None: the entry recorded no box)."""
    have = [row[k] for k in ("x1", "y1", "x2", "y2")]
    want = list(box) if box is not None else [None] * 4
    if len(want) == 4 and not any(_differs(a, b) for a, b in zip(have, want, strict=True)):
        return []
    return [Problem(where, f"box is {have} in the table, but the custody log (entry {seq}) says {box}")]


def check_state(store: Store, state: custody.Replayed) -> tuple[list[Problem], int]:
    """The state tables against the log's replay: every difference names the row, the field and the entry."""
    problems: list[Problem] = []
    n = 0
    sources = {r["id"]: r for r in store.query(
        "SELECT id, sha256, path, district, inspector, status, current_run_id FROM sources")}
    for sid, r in sources.items():
        n += 1
        e = state.sources.get(sid)
        if e is None:
            if r["status"] == "ready":
                problems.append(Problem(f"source {sid}", "no source_ingested entry in the custody log "
                                        "(inserted behind the log)"))
            continue
        problems += _fields(f"source {sid}", r, e, ("sha256", "path", "status"), e.get("status_seq") or e["seq"])
        if e["status"] == "ready" and "district" in e:
            problems += _fields(f"source {sid}", r, e, ("district", "inspector"), e["seq"])
        if e["current_run_id"] is not None:
            problems += _fields(f"source {sid}", r, e, ("current_run_id",), e["current_seq"])
    for sid, e in state.sources.items():
        if sid not in sources and e.get("sha256"):
            problems.append(Problem(f"source {sid}", f"recorded in custody entry {e['seq']} but missing from the "
                                    "sources table (deleted)"))
    sha_of = {sid: r["sha256"] for sid, r in sources.items()}
    violations = {r["id"]: r for r in store.query(
        "SELECT id, run_id, source_id, category, status, start_s, end_s, confidence, x1, y1, x2, y2 FROM violations")}
    for vid, r in violations.items():
        n += 1
        e = state.violations.get(vid)
        if e is None:
            problems.append(Problem(f"violation {vid}", "no violation_created entry in the custody log "
                                    "(inserted behind the log)"))
            continue
        problems += _fields(f"violation {vid}", r, e, ("run_id", "confidence"), e["seq"])
        if sha_of.get(r["source_id"]) != e["source_sha256"]:
            problems.append(Problem(f"violation {vid}", f"source_id is {r['source_id']} (sha256 "
                                    f"{str(sha_of.get(r['source_id']))[:12]}…), but the custody log (entry "
                                    f"{e['seq']}) says source sha256 {str(e['source_sha256'])[:12]}…"))
        problems += _fields(f"violation {vid}", r, e, ("status", "category", "start_s", "end_s"), e["state_seq"])
        if e.get("box") is not None:  # drawn by an analyst (added or corrected): the log holds it
            problems += _box(f"violation {vid}", r, e["box"], e["box_seq"])
    for vid, e in state.violations.items():
        if vid not in violations:
            problems.append(Problem(f"violation {vid}", f"created in custody entry {e['seq']} but missing from the "
                                    "violations table (deleted)"))
    for a in store.query("SELECT id, violation_id, kind, path, sha256 FROM artifacts ORDER BY id"):
        n += 1
        where = f"artifact {a['id']} ({a['kind']} {a['path']})"
        e = state.violations.get(a["violation_id"])
        if e is None or a["path"] not in e["artifacts"]:
            problems.append(Problem(where, f"not recorded for violation {a['violation_id']} in the custody log "
                                    "(inserted or re-pointed behind the log)"))
            continue
        kind, sha = e["artifacts"][a["path"]]
        if (a["kind"], a["sha256"]) != (kind, sha):
            problems.append(Problem(where, f"kind/sha256 are {a['kind']}/{a['sha256']} in the table, but the custody "
                                    f"log (entry {e['seq']}) recorded {kind}/{sha}"))
    present = {r["path"] for r in store.query("SELECT path FROM artifacts")}
    for vid, e in state.violations.items():
        for path, (kind, _) in e["artifacts"].items():
            if path not in present:
                problems.append(Problem(f"violation {vid}", f"{kind} {path} recorded in custody entry {e['seq']} is "
                                        "missing from the artifacts table (deleted)"))
    decisions = {r["id"]: r for r in store.query(
        "SELECT id, violation_id, user, action, category, reason, note, start_s, end_s, t_s, x1, y1, x2, y2"
        " FROM decisions")}
    fields = ("violation_id", "user", "action", "category", "reason", "note", "start_s", "end_s")
    for did, r in decisions.items():
        n += 1
        e = state.decisions.get(did)
        if e is None:
            problems.append(Problem(f"decision {did}", f"{r['user']} {r['action']} on violation {r['violation_id']} "
                                    "has no custody entry (inserted behind the log)"))
            continue
        problems += _fields(f"decision {did}", r, e, fields, e["seq"])
        if "box" in e:
            problems += _box(f"decision {did}", r, e["box"], e["seq"])
            problems += _fields(f"decision {did}", r, e, ("t_s",), e["seq"])
    for did, e in state.decisions.items():
        if did not in decisions:
            problems.append(Problem(f"decision {did}", f"{e['user']} {e['action']} on violation {e['violation_id']}, "
                                    f"recorded in custody entry {e['seq']}, is missing from the decisions table "
                                    "(deleted)"))
    return problems, n


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
    """A consistent copy of the live database and a manifest beside it: SQLite's online backup API, or
    for PostgreSQL an SQLite copy of it (``dbcopy``: one file, readable offline, the same chain)."""
    dest = Path(dest)
    if dest.is_dir() or not dest.suffix:
        dest.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        dest = dest / f"evidence-{stamp}.db"
    tmp = dest.with_suffix(".db.partial")
    tmp.unlink(missing_ok=True)
    if store.url:
        from .dbcopy import copy

        copy(store.url, tmp)
    else:
        target = sqlite3.connect(tmp)
        try:
            store.conn.backup(target)  # type: ignore[attr-defined]
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
        "source_database": store.where, "integrity_check": integrity, "rows": counts,
        "custody_head": {"seq": head[0], "hash": head[1]} if head else None,
    }
    dest.with_suffix(".manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest
