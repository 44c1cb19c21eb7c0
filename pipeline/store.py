"""The evidence database: schema, migrations, and every read and write of it.

Only this module (and ``custody``, which it calls) writes the database. It is an SQLite file in the
workspace by default, or a PostgreSQL database (``postgresql://...``) that workers on several machines
share; ``db`` holds the few differences, so every statement here is written once. Writes run in short
transactions (SQLite: ``BEGIN IMMEDIATE``, so concurrent workers queue on the busy timeout instead of
failing with "database is locked"; PostgreSQL: row locks, plus the chain lock for custody entries), and
everything one source produces is committed in one transaction: a crash leaves either all of it or none.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from . import custody, db
from .records import Artifact, Box, Decision, Detection, Frame, Probe, Source, Violation
from .vocab import Action, RejectReason

SCHEMA_VERSION = 2

SCHEMA_V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    run_key TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    model_path TEXT, model_sha256 TEXT,
    config TEXT, config_sha256 TEXT,
    version TEXT, host TEXT, pid INTEGER,
    stats TEXT
);
CREATE TABLE sources (
    id INTEGER PRIMARY KEY,
    sha256 TEXT UNIQUE,
    path TEXT NOT NULL,
    size INTEGER,
    mtime REAL,
    duration_s REAL, fps REAL, vfr INTEGER, width INTEGER, height INTEGER,
    codec TEXT, container TEXT, rotation INTEGER, audio_codec TEXT,
    creation_time TEXT, gps TEXT, device TEXT,
    district TEXT, inspector TEXT,
    capture_start TEXT, capture_start_origin TEXT,
    status TEXT NOT NULL CHECK (status IN ('ready', 'rejected')),
    reason TEXT,
    original_copy TEXT,
    current_run_id INTEGER REFERENCES runs(id),
    ingested_at TEXT NOT NULL
);
CREATE INDEX sources_path ON sources(path);
CREATE TABLE source_paths (
    source_id INTEGER NOT NULL REFERENCES sources(id),
    path TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (source_id, path)
);
CREATE TABLE jobs (
    source_id INTEGER NOT NULL REFERENCES sources(id),
    run_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('processing', 'done', 'failed')),
    run_id INTEGER REFERENCES runs(id),
    lease_owner TEXT, lease_expires REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT, timings TEXT, finished_at TEXT,
    PRIMARY KEY (source_id, run_key)
);
CREATE TABLE frames (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    run_id INTEGER NOT NULL REFERENCES runs(id),
    t_s REAL NOT NULL,
    keyframe INTEGER NOT NULL
);
CREATE INDEX frames_source ON frames(source_id, run_id);
CREATE TABLE violations (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    source_id INTEGER NOT NULL REFERENCES sources(id),
    category TEXT NOT NULL,
    detected_category TEXT NOT NULL,
    start_s REAL NOT NULL, end_s REAL NOT NULL,
    start_time TEXT, end_time TEXT,
    confidence REAL NOT NULL, hits INTEGER NOT NULL,
    best_t_s REAL, x1 REAL, y1 REAL, x2 REAL, y2 REAL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'rejected')),
    created_at TEXT NOT NULL
);
CREATE INDEX violations_source ON violations(source_id, run_id);
CREATE INDEX violations_status ON violations(status, category);
CREATE TABLE detections (
    id INTEGER PRIMARY KEY,
    frame_id INTEGER NOT NULL REFERENCES frames(id),
    violation_id INTEGER REFERENCES violations(id),
    cls TEXT NOT NULL, category TEXT,
    confidence REAL NOT NULL,
    x1 REAL, y1 REAL, x2 REAL, y2 REAL
);
CREATE INDEX detections_frame ON detections(frame_id);
CREATE INDEX detections_violation ON detections(violation_id);
CREATE TABLE artifacts (
    id INTEGER PRIMARY KEY,
    violation_id INTEGER REFERENCES violations(id),
    run_id INTEGER REFERENCES runs(id),
    kind TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    source_sha256 TEXT,
    start_s REAL, end_s REAL,
    command TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX artifacts_violation ON artifacts(violation_id);
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,
    violation_id INTEGER NOT NULL REFERENCES violations(id),
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    category TEXT, reason TEXT, note TEXT, start_s REAL, end_s REAL,
    created_at TEXT NOT NULL
);
CREATE INDEX decisions_violation ON decisions(violation_id);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('analyst', 'assessor', 'admin')),
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
"""

# v2, additive (issue 19, learning from reviews): who found a violation, the box a decision drew, frames an
# analyst marked fully labelled, and the model registry with its promotions
SCHEMA_V2 = """
ALTER TABLE violations ADD COLUMN origin TEXT NOT NULL DEFAULT 'model' CHECK (origin IN ('model', 'analyst'));
ALTER TABLE violations ADD COLUMN added_by TEXT;
ALTER TABLE decisions ADD COLUMN t_s REAL;
ALTER TABLE decisions ADD COLUMN x1 REAL;
ALTER TABLE decisions ADD COLUMN y1 REAL;
ALTER TABLE decisions ADD COLUMN x2 REAL;
ALTER TABLE decisions ADD COLUMN y2 REAL;
CREATE TABLE frame_reviews (
    id INTEGER PRIMARY KEY,
    frame_id INTEGER NOT NULL REFERENCES frames(id),
    user TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX frame_reviews_frame ON frame_reviews(frame_id);
CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    parent_sha256 TEXT,
    manifest TEXT,
    command TEXT,
    figures TEXT,
    registered_by TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE promotions (
    id INTEGER PRIMARY KEY,
    model_sha256 TEXT NOT NULL REFERENCES models(sha256),
    previous_sha256 TEXT,
    user TEXT NOT NULL,
    forced INTEGER NOT NULL,
    reason TEXT,
    figures TEXT,
    created_at TEXT NOT NULL
);
"""

MIGRATIONS: dict[int, str] = {1: SCHEMA_V1 + custody.SCHEMA, 2: SCHEMA_V2}

LEASE_S = 120.0  # a worker renews its lease every LEASE_S / 6 s; one silent for LEASE_S is taken to be dead
# a source whose current results carry an analyst's work: a decision on one of its violations, or a frame
# marked complete (SQL on the alias ``s`` for sources)
_REVIEWED = """(EXISTS (SELECT 1 FROM violations rv JOIN decisions rd ON rd.violation_id = rv.id
                        WHERE rv.source_id = s.id AND rv.run_id = s.current_run_id)
             OR EXISTS (SELECT 1 FROM frames rf JOIN frame_reviews rr ON rr.frame_id = rf.id
                        WHERE rf.source_id = s.id AND rf.run_id = s.current_run_id))"""
DECISION_ACTIONS = tuple(Action)
REJECT_REASONS = tuple(RejectReason)


class StoreError(Exception):
    """A user-facing database problem (not a database, newer schema, ...)."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def worker_id(name: str | None = None) -> str:
    """host:pid:start — the start time tells a live worker from a later process that reused its pid.
    ``name`` (``$VAUDIT_WORKER``) replaces the host name where machines share one (containers)."""
    name = name or os.environ.get("VAUDIT_WORKER") or socket.gethostname()
    return f"{name}:{os.getpid()}:{int(psutil.Process().create_time())}"


def owner_alive(owner: str | None) -> bool:
    """Whether the worker holding a lease still runs. Workers on other hosts are trusted until their lease
    expires (their heartbeat stops renewing it)."""
    try:
        host, pid, start = (owner or "").rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    try:
        return int(psutil.Process(int(pid)).create_time()) == int(start)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


@dataclass(frozen=True)
class Job:
    source: Source
    run_id: int
    run_key: str
    owner: str


class Store:
    """The evidence database at ``target``: an SQLite file's path, or a ``postgresql://`` URL.

    ``migrate=False`` opens it as it is (``vaudit db migrate`` and ``db copy`` migrate explicitly)."""

    def __init__(self, target: Path | str, migrate: bool = True):
        self.url = str(target) if db.is_url(target) else None
        self.path = None if self.url else Path(target)
        self.conn: db.Connection
        if self.url:
            try:
                self.conn = db.PgConnection(self.url, application_name=f"vaudit {worker_id()}")
            except db.DatabaseError as e:
                raise StoreError(f"cannot open PostgreSQL database {db.safe_url(self.url)}: "
                                 f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
        else:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)
            try:
                self.conn = db.connect_sqlite(self.path)
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{self.path} is not a usable vaudit database: {e}") from None
        if migrate:
            self.migrate()

    @property
    def name(self) -> str:
        """What heads and packs call this database: the file's name, or the PostgreSQL database's (no host,
        no password: they name the office's machines)."""
        return self.path.name if self.path else f"postgresql:{self.conn.dbname}"  # type: ignore[attr-defined]

    @property
    def where(self) -> str:
        return str(self.path) if self.path else db.safe_url(self.url or "")

    @property
    def is_pg(self) -> bool:
        return self.url is not None

    def close(self) -> None:
        self.conn.close()

    # -- transactions and schema -------------------------------------------------------------

    @contextmanager
    def tx(self, chain: bool = True) -> Iterator[db.Connection]:
        """One short write transaction. SQLite takes it IMMEDIATE so the write lock is queued, not raced;
        on PostgreSQL ``chain`` (the transaction appends custody entries) takes the chain lock first."""
        db.begin_write(self.conn, chain)
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def schema_version(self) -> int:
        return db.schema_version(self.conn)

    def migrate(self) -> tuple[int, int]:
        """Bring the schema to SCHEMA_VERSION, one version per transaction; returns (from, to). Several
        processes may open a new database at once: each version is re-checked under the write lock."""
        start = self.schema_version()
        if start > SCHEMA_VERSION:
            raise StoreError(f"{self.where} has schema version {start}, newer than this vaudit ({SCHEMA_VERSION}): "
                             "upgrade vaudit")
        for v in range(start + 1, SCHEMA_VERSION + 1):
            with self.tx() as c:
                if db.schema_version(c) >= v:
                    continue
                for stmt in db.ddl(c, MIGRATIONS[v]):
                    c.execute(stmt)
                db.set_schema_version(c, v)
                custody.append(c, "schema_migrated", "database", None, {"to_version": v})
        return start, self.schema_version()

    def define_lookup(self, name: str, table: dict[str, float], default: float) -> None:
        """Make ``name(key)`` in this connection's SQL the number ``table`` gives ``key`` (else ``default``)."""
        if isinstance(self.conn, db.PgConnection):
            self.conn.lookups[name] = (dict(table), default)
        else:
            self.conn.create_function(name, 1, lambda k: table.get(k, default), deterministic=True)  # type: ignore[attr-defined]

    def query(self, sql: str, params: Sequence | dict = ()) -> list[dict]:
        cur = self.conn.execute(sql, params)
        if not cur.description:
            return []
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    # -- sources -----------------------------------------------------------------------------

    def source_by_sha(self, sha256: str) -> dict | None:
        rows = self.query("SELECT * FROM sources WHERE sha256 = ?", [sha256])
        return rows[0] if rows else None

    def add_source(self, row: dict, actor: str = "system") -> tuple[int, bool]:
        """Insert a ready source, or record another path of the same content. Returns (id, is_new)."""
        with self.tx() as c:
            existing = c.execute("SELECT id FROM sources WHERE sha256 = ?", (row["sha256"],)).fetchone()
            if existing:
                sid = existing[0]
                cur = c.execute(
                    "INSERT INTO source_paths (source_id, path, seen_at) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                    (sid, row["path"], now_iso()),
                )
                if cur.rowcount:
                    custody.append(c, "source_path_added", "source", sid, {"path": row["path"]}, actor)
                return sid, False
            # a path rejected earlier and now readable again replaces its rejection record
            c.execute("DELETE FROM sources WHERE path = ? AND status = 'rejected' AND sha256 IS NULL", (row["path"],))
            sid = db.insert(c, "sources", {**row, "status": "ready", "ingested_at": now_iso()})
            c.execute("INSERT INTO source_paths (source_id, path, seen_at) VALUES (?,?,?)", (sid, row["path"], now_iso()))
            custody.append(
                c,
                "source_ingested",
                "source",
                sid,
                {k: row.get(k) for k in ("sha256", "path", "size", "district", "inspector", "capture_start")},
                actor,
            )
            return sid, True

    def reject_source(self, path: str, sha256: str | None, size: int | None, reason: str, actor: str = "system") -> int:
        with self.tx() as c:
            if sha256:
                old = c.execute("SELECT id, status FROM sources WHERE sha256 = ?", (sha256,)).fetchone()
            else:
                old = c.execute("SELECT id, status FROM sources WHERE path = ? AND sha256 IS NULL", (path,)).fetchone()
            if old:
                c.execute("UPDATE sources SET reason = ? WHERE id = ? AND status = 'rejected'", (reason, old[0]))
                return old[0]
            sid = db.insert(
                c,
                "sources",
                {"sha256": sha256, "path": path, "size": size, "status": "rejected", "reason": reason,
                 "ingested_at": now_iso()},
            )
            custody.append(c, "source_rejected", "source", sid, {"path": path, "sha256": sha256, "reason": reason}, actor)
            return sid

    def mark_rejected(self, source_id: int, reason: str) -> None:
        """A source that probed fine but turned out undecodable when processed."""
        with self.tx() as c:
            c.execute("UPDATE sources SET status = 'rejected', reason = ? WHERE id = ?", (reason, source_id))
            c.execute("DELETE FROM jobs WHERE source_id = ? AND status = 'processing'", (source_id,))
            custody.append(c, "source_rejected", "source", source_id, {"reason": reason})

    # -- runs and jobs -----------------------------------------------------------------------

    def start_run(self, run_key: str, model_path: str, model_sha256: str, config: dict, config_sha256: str,
                  version: str) -> int:
        with self.tx() as c:
            rid = db.insert(
                c,
                "runs",
                {"run_key": run_key, "started_at": now_iso(), "model_path": model_path, "model_sha256": model_sha256,
                 "config": json.dumps(config, ensure_ascii=False), "config_sha256": config_sha256,
                 "version": version, "host": socket.gethostname(), "pid": os.getpid()},
            )
            custody.append(c, "run_started", "run", rid,
                           {"run_key": run_key, "model_sha256": model_sha256, "config_sha256": config_sha256,
                            "version": version})
            return rid

    def finish_run(self, run_id: int, stats: dict) -> None:
        with self.tx() as c:
            c.execute("UPDATE runs SET finished_at = ?, stats = ? WHERE id = ?", (now_iso(), json.dumps(stats), run_id))
            custody.append(c, "run_finished", "run", run_id, stats)

    def claim_job(self, run_id: int, run_key: str, owner: str, lease_s: float = LEASE_S,
                  reprocess_reviewed: bool = False) -> Job | None:
        """Lease the next source this run_key has not done. Expired leases (crashed workers) are taken over;
        a source that failed in this very run is not retried by it. A source whose current results an analyst
        has reviewed is left alone unless ``reprocess_reviewed``: a new model must not silently replace
        reviewed evidence with unreviewed results.

        On PostgreSQL many workers claim at once: each skips the sources others are claiming this instant
        (SKIP LOCKED), and the claim itself only takes a job that is still free when it is written (the
        upsert's WHERE sees the latest committed row), so a source is never leased to two workers."""
        self.expire_dead_leases()
        lock = " FOR NO KEY UPDATE OF s SKIP LOCKED" if self.is_pg else ""
        reviewed = "" if reprocess_reviewed else f"AND NOT {_REVIEWED}"
        while True:
            now = time.time()
            with self.tx(chain=False) as c:
                row = c.execute(
                    f"""SELECT s.id FROM sources s LEFT JOIN jobs j ON j.source_id = s.id AND j.run_key = ?
                       WHERE s.status = 'ready'
                         AND (j.source_id IS NULL
                              OR (j.status = 'processing' AND j.lease_expires < ?)
                              OR (j.status = 'failed' AND j.run_id != ?))
                         {reviewed}
                       ORDER BY s.id LIMIT 1{lock}""",
                    (run_key, now, run_id),
                ).fetchone()
                if not row:
                    return None
                won = c.execute(
                    """INSERT INTO jobs (source_id, run_key, status, run_id, lease_owner, lease_expires, attempts)
                       VALUES (?, ?, 'processing', ?, ?, ?, 1)
                       ON CONFLICT (source_id, run_key) DO UPDATE SET status = 'processing',
                         run_id = excluded.run_id, lease_owner = excluded.lease_owner,
                         lease_expires = excluded.lease_expires, attempts = jobs.attempts + 1, error = NULL
                       WHERE (jobs.status = 'processing' AND jobs.lease_expires < ?)
                          OR (jobs.status = 'failed' AND jobs.run_id != ?)""",
                    (row[0], run_key, run_id, owner, now + lease_s, now, run_id),
                ).rowcount
            if won:
                return Job(self.source(row[0]), run_id, run_key, owner)
            # another worker took it between our read and our write: look again

    def expire_dead_leases(self) -> int:
        """A worker killed mid-source (SIGKILL, power cut) holds a lease until it expires; on this host we
        can see it is gone and hand its source back at once."""
        dead = [r["lease_owner"] for r in self.query(
            "SELECT DISTINCT lease_owner FROM jobs WHERE status = 'processing' AND lease_expires >= ?", [time.time()])
            if not owner_alive(r["lease_owner"])]
        if dead:
            with self.tx(chain=False) as c:
                c.executemany("UPDATE jobs SET lease_expires = 0 WHERE status = 'processing' AND lease_owner = ?",
                              [(o,) for o in dead])
        return len(dead)

    def renew_lease(self, job: Job, lease_s: float = LEASE_S) -> bool:
        """Extend the lease; False when it is no longer ours (taken over after it expired)."""
        with self.tx(chain=False) as c:
            return c.execute(
                "UPDATE jobs SET lease_expires = ? WHERE source_id = ? AND run_key = ? AND lease_owner = ?"
                " AND status = 'processing'",
                (time.time() + lease_s, job.source.id, job.run_key, job.owner),
            ).rowcount > 0

    def beat(self, run_id: int, lease_s: float) -> None:
        """A running worker's heartbeat: its unfinished run's stats say when it was last alive (and for how
        long silence is fine), so ``vaudit status`` on any machine can tell a dead worker from a slow one."""
        with self.tx(chain=False) as c:
            c.execute("UPDATE runs SET stats = ? WHERE id = ? AND finished_at IS NULL",
                      (json.dumps({"alive_at": round(time.time(), 3), "lease_s": lease_s}), run_id))

    def fail_job(self, job: Job, error: str) -> None:
        with self.tx() as c:
            c.execute(
                "UPDATE jobs SET status = 'failed', error = ?, lease_expires = NULL, finished_at = ?"
                " WHERE source_id = ? AND run_key = ?",
                (error, now_iso(), job.source.id, job.run_key),
            )
            custody.append(c, "source_failed", "source", job.source.id, {"run_id": job.run_id, "error": error})

    def active_leases(self, exclude_owner: str | None = None) -> list[dict]:
        self.expire_dead_leases()
        return self.query(
            "SELECT source_id, lease_owner FROM jobs WHERE status = 'processing' AND lease_expires >= ?"
            " AND lease_owner IS DISTINCT FROM ?",
            [time.time(), exclude_owner],
        )

    def commit_source(
        self,
        job: Job,
        frames: Sequence[Frame],
        detections: Sequence[Detection],
        violations: Sequence[Violation],
        place_artifacts: Callable[[int, int, Violation], list[Artifact]],
        timings: dict,
        source_sha256: str,
    ) -> list[int]:
        """Write everything one source produced, atomically.

        A detection belongs to the violation that names its ``track_id``.
        ``place_artifacts(index, violation_id, violation)`` moves staged files to their final names and
        returns them; it runs inside the transaction, so a failure there rolls every row back (and the
        next run's sweep removes any file it already moved).
        """
        created = now_iso()
        src = job.source
        with self.tx() as c:
            # the source's and the job's rows stay locked until commit (PostgreSQL), so no one can take the
            # lease over meanwhile; in the order claim_job locks them, so the two never wait on each other
            if self.is_pg:
                c.execute("SELECT id FROM sources WHERE id = ? FOR NO KEY UPDATE", (src.id,))
            owner = c.execute(
                "SELECT lease_owner, status FROM jobs WHERE source_id = ? AND run_key = ?"
                + (" FOR UPDATE" if self.is_pg else ""), (src.id, job.run_key)
            ).fetchone()
            if owner is None or owner[0] != job.owner or owner[1] != "processing":
                raise LeaseLost(f"lease on source {src.id} was taken over by {owner[0] if owner else 'nobody'}")
            ids = db.reserve_ids(c, "frames", len(frames))
            c.executemany(
                "INSERT INTO frames (id, source_id, run_id, t_s, keyframe) VALUES (?,?,?,?,?)",
                [(ids[i], src.id, job.run_id, f.t_s, int(f.keyframe)) for i, f in enumerate(frames)],
            )
            frame_ids = {f.index: ids[i] for i, f in enumerate(frames)}
            vids = []
            track_violation: dict[int, int] = {}
            for i, v in enumerate(violations):
                st, et = src.wall_clock(v.start_s), src.wall_clock(v.end_s)
                x1, y1, x2, y2 = v.best.box
                vid = db.insert(
                    c,
                    "violations",
                    {"run_id": job.run_id, "source_id": src.id, "category": v.category,
                     "detected_category": v.category, "start_s": v.start_s, "end_s": v.end_s,
                     "start_time": st.isoformat() if st else None, "end_time": et.isoformat() if et else None,
                     "confidence": v.confidence, "hits": v.hits, "best_t_s": v.best.t_s,
                     "x1": x1, "y1": y1, "x2": x2, "y2": y2, "created_at": created},
                )
                vids.append(vid)
                track_violation.update((tid, vid) for tid in v.track_ids)
                arts = place_artifacts(i, vid, v)
                c.executemany(
                    "INSERT INTO artifacts (violation_id, run_id, kind, path, sha256, size, source_sha256, start_s,"
                    " end_s, command, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [(vid, job.run_id, a.kind, a.path, a.sha256, a.size, source_sha256, a.start_s, a.end_s, a.command,
                      created) for a in arts],
                )
                custody.append(
                    c, "violation_created", "violation", vid,
                    {"run_id": job.run_id, "source_sha256": source_sha256, "category": v.category,
                     "start_s": round(v.start_s, 3), "end_s": round(v.end_s, 3),
                     "confidence": round(v.confidence, 4),
                     "artifacts": [{"kind": a.kind, "path": a.path, "sha256": a.sha256} for a in arts]},
                )
            c.executemany(
                "INSERT INTO detections (frame_id, violation_id, cls, category, confidence, x1, y1, x2, y2)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                [(frame_ids[d.frame_index], track_violation.get(d.track_id) if d.track_id is not None else None,
                  d.cls, d.category, d.confidence, *d.box) for d in detections],
            )
            c.execute(
                "UPDATE jobs SET status = 'done', lease_expires = NULL, timings = ?, finished_at = ?"
                " WHERE source_id = ? AND run_key = ?",
                (json.dumps(timings), created, src.id, job.run_key),
            )
            c.execute("UPDATE sources SET current_run_id = ? WHERE id = ?", (job.run_id, src.id))
            custody.append(c, "source_processed", "source", src.id,
                           {"run_id": job.run_id, "violations": vids, "frames": len(frames)})
        return vids

    # -- review decisions and users ----------------------------------------------------------

    def record_decision(self, d: Decision) -> int:
        """Apply one analyst decision to a violation; the decision row, the new status/category/range and
        the custody entry commit together. Earlier decisions stay: the table is the history."""
        if d.action not in DECISION_ACTIONS:
            raise ValueError(f"unknown decision action {d.action!r}")
        with self.tx() as c:
            row = c.execute("SELECT v.status, v.category, v.start_s, v.end_s, s.width, s.height, v.best_t_s"
                            " FROM violations v JOIN sources s ON s.id = v.source_id WHERE v.id = ?",
                            (d.violation_id,)).fetchone()
            if row is None:
                raise LookupError(f"no violation with id {d.violation_id}")
            status, category, start_s, end_s, width, height, best_t_s = row
            box, t_s = None, None
            if d.action == "add":
                raise ValueError("a violation is added with add_violation, not as a decision on another one")
            if d.action == "correct_box":
                box = checked_box(d.box, width, height)
                t_s = best_t_s if d.t_s is None else d.t_s
                c.execute("UPDATE violations SET x1 = ?, y1 = ?, x2 = ?, y2 = ? WHERE id = ?", (*box, d.violation_id))
            if d.action == "confirm":
                status = "confirmed"
            elif d.action == "reject":
                if d.reason not in REJECT_REASONS:
                    raise ValueError(f"reject needs a reason: one of {', '.join(REJECT_REASONS)}")
                status = "rejected"
            elif d.action == "relabel":
                if d.category not in ("garbage", "parking", "stall"):
                    raise ValueError("relabel needs a category: garbage, parking or stall")
                category = d.category
            elif d.action == "trim":
                if d.start_s is None or d.end_s is None or not d.start_s < d.end_s:
                    raise ValueError("trim needs start_s < end_s")
                start_s, end_s = d.start_s, d.end_s
            c.execute("UPDATE violations SET status = ?, category = ?, start_s = ?, end_s = ? WHERE id = ?",
                      (status, category, start_s, end_s, d.violation_id))
            did = db.insert(c, "decisions", {
                "violation_id": d.violation_id, "user": d.user, "action": d.action, "category": d.category,
                "reason": d.reason, "note": d.note, "start_s": d.start_s, "end_s": d.end_s, "created_at": now_iso(),
                **_box_columns(box, t_s)})
            custody.append(c, f"decision_{d.action}", "violation", d.violation_id,
                           {"decision_id": did, "status": status, "category": category, "reason": d.reason,
                            "note": d.note, "start_s": start_s, "end_s": end_s,
                            **({"box": list(box), "t_s": t_s} if box else {})}, actor=d.user)
            return did

    def add_violation(self, source_id: int, run_id: int, category: str, t_s: float, box: Box, user: str,
                      place_artifacts: Callable[[int], list[Artifact]], clip_range: tuple[float, float],
                      note: str | None = None) -> int:
        """A violation the model missed, drawn by an analyst on a frame of a run's source: a confirmed
        violation of that run (origin ``analyst``) with its own evidence files. The row, its artifacts, the
        ``violation_created`` entry and the ``add`` decision commit together; ``place_artifacts(id)`` moves
        the staged files to their final names inside the transaction (a failure rolls it all back)."""
        created = now_iso()
        with self.tx() as c:
            src = c.execute("SELECT sha256, width, height, capture_start FROM sources WHERE id = ? AND status = 'ready'",
                            (source_id,)).fetchone()
            if src is None:
                raise LookupError(f"no ready source with id {source_id}")
            if c.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise LookupError(f"no run with id {run_id}")
            sha, width, height, capture = src
            box = checked_box(box, width, height)
            start = _dt(capture)
            wall = (start + timedelta(seconds=t_s)).isoformat() if start else None
            vid = db.insert(c, "violations", {
                "run_id": run_id, "source_id": source_id, "category": category, "detected_category": category,
                "start_s": t_s, "end_s": t_s, "start_time": wall, "end_time": wall, "confidence": 1.0, "hits": 1,
                "best_t_s": t_s, "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3], "status": "confirmed",
                "origin": "analyst", "added_by": user, "created_at": created})
            arts = place_artifacts(vid)
            c.executemany(
                "INSERT INTO artifacts (violation_id, run_id, kind, path, sha256, size, source_sha256, start_s,"
                " end_s, command, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(vid, run_id, a.kind, a.path, a.sha256, a.size, sha, a.start_s, a.end_s, a.command, created)
                 for a in arts])
            custody.append(c, "violation_created", "violation", vid,
                           {"run_id": run_id, "source_sha256": sha, "category": category, "start_s": round(t_s, 3),
                            "end_s": round(t_s, 3), "confidence": 1.0, "origin": "analyst", "box": list(box),
                            "t_s": t_s, "clip": [round(x, 3) for x in clip_range],
                            "artifacts": [{"kind": a.kind, "path": a.path, "sha256": a.sha256} for a in arts]},
                           actor=user)
            did = db.insert(c, "decisions", {"violation_id": vid, "user": user, "action": "add", "note": note,
                                           "created_at": created, **_box_columns(box, t_s)})
            custody.append(c, "decision_add", "violation", vid,
                           {"decision_id": did, "status": "confirmed", "category": category, "reason": None,
                            "note": note, "start_s": t_s, "end_s": t_s, "box": list(box), "t_s": t_s}, actor=user)
            return vid

    def mark_frame_complete(self, frame_id: int, user: str) -> int:
        """An analyst says every violation on this sampled frame is boxed, so its other areas are background."""
        with self.tx() as c:
            row = c.execute("SELECT f.source_id, f.run_id, f.t_s, s.sha256 FROM frames f JOIN sources s"
                            " ON s.id = f.source_id WHERE f.id = ?", (frame_id,)).fetchone()
            if row is None:
                raise LookupError(f"no sampled frame with id {frame_id}")
            rid = db.insert(c, "frame_reviews", {"frame_id": frame_id, "user": user, "created_at": now_iso()})
            custody.append(c, "frame_reviewed_complete", "frame", frame_id,
                           {"review_id": rid, "source_sha256": row[3], "run_id": row[1], "t_s": row[2]}, actor=user)
            return rid

    # -- model registry ----------------------------------------------------------------------

    def register_model(self, sha256: str, path: str, parent_sha256: str | None, manifest: dict | None,
                       command: str | None, figures: dict | None, user: str) -> int:
        """Record a model (once per SHA-256): where it is, what it was fine-tuned from and on, how, and how
        it measured. Registering the same weights again keeps the first record."""
        with self.tx() as c:
            old = c.execute("SELECT id FROM models WHERE sha256 = ?", (sha256,)).fetchone()
            if old:
                return old[0]
            mid = db.insert(c, "models", {
                "sha256": sha256, "path": path, "parent_sha256": parent_sha256,
                "manifest": json.dumps(manifest, ensure_ascii=False, sort_keys=True) if manifest else None,
                "command": command, "figures": json.dumps(figures, sort_keys=True) if figures else None,
                "registered_by": user, "registered_at": now_iso()})
            custody.append(c, "model_registered", "model", mid,
                           {"sha256": sha256, "path": path, "parent_sha256": parent_sha256, "command": command,
                            "manifest_sha256": hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
                            if manifest else None}, actor=user)
            return mid

    def promote_model(self, sha256: str, user: str, forced: bool, reason: str | None, figures: dict) -> int:
        """Make a registered model the default for later runs. Earlier runs keep the model they recorded."""
        with self.tx() as c:
            row = c.execute("SELECT id FROM models WHERE sha256 = ?", (sha256,)).fetchone()
            if row is None:
                raise LookupError(f"no registered model with sha256 {sha256}")
            prev = c.execute("SELECT model_sha256 FROM promotions ORDER BY id DESC LIMIT 1").fetchone()
            pid = db.insert(c, "promotions", {
                "model_sha256": sha256, "previous_sha256": prev[0] if prev else None, "user": user,
                "forced": int(forced), "reason": reason, "figures": json.dumps(figures, sort_keys=True),
                "created_at": now_iso()})
            custody.append(c, "model_promoted", "model", row[0],
                           {"promotion_id": pid, "sha256": sha256, "previous_sha256": prev[0] if prev else None,
                            "forced": forced, "reason": reason, "figures": figures}, actor=user)
            return pid

    def default_model(self) -> dict | None:
        """The registered model last promoted (None: the config's model is the default)."""
        rows = self.query("SELECT m.*, p.user AS promoted_by, p.created_at AS promoted_at, p.forced, p.reason"
                          " FROM promotions p JOIN models m ON m.sha256 = p.model_sha256 ORDER BY p.id DESC LIMIT 1")
        return rows[0] if rows else None

    def add_user(self, name: str, role: str, password_hash: str, actor: str = "admin") -> int:
        with self.tx() as c:
            uid = db.insert(c, "users", {"name": name, "role": role, "password_hash": password_hash,
                                       "created_at": now_iso()})
            custody.append(c, "user_added", "user", uid, {"name": name, "role": role}, actor)
            return uid

    def set_user_disabled(self, name: str, disabled: bool, actor: str = "admin") -> None:
        with self.tx() as c:
            cur = c.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
            if not cur.rowcount:
                raise LookupError(f"no user named {name!r}")
            uid = c.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()[0]
            custody.append(c, "user_disabled" if disabled else "user_enabled", "user", uid, {"name": name}, actor)

    def user(self, name: str) -> dict | None:
        rows = self.query("SELECT * FROM users WHERE name = ?", [name])
        return rows[0] if rows else None

    def log_event(self, event: str, entity: str, entity_id: int | None, payload: dict, actor: str) -> None:
        """A custody entry for an action that changes no row (an export, a login by an admin...)."""
        with self.tx() as c:
            custody.append(c, event, entity, entity_id, payload, actor)

    # -- reads -------------------------------------------------------------------------------

    def source(self, source_id: int) -> Source:
        rows = self.query("SELECT * FROM sources WHERE id = ?", [source_id])
        if not rows:
            raise LookupError(f"no source with id {source_id}")
        return source_from_row(rows[0])

    def referenced_paths(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT path FROM artifacts")}

    def status_counts(self, run_key: str | None = None) -> dict[str, int]:
        counts = {"pending": 0, "processing": 0, "done": 0, "failed": 0, "rejected": 0, "kept": 0}
        for status, n in self.conn.execute(
            f"""SELECT CASE WHEN s.status = 'rejected' THEN 'rejected'
                           WHEN j.status IS NULL AND {_REVIEWED} THEN 'kept'
                           WHEN j.status IS NULL THEN 'pending'
                           WHEN j.status = 'processing' AND j.lease_expires < ? THEN 'pending'
                           ELSE j.status END, count(*)
               FROM sources s LEFT JOIN jobs j ON j.source_id = s.id AND j.run_key = ?
               GROUP BY 1""",
            (time.time(), run_key),
        ):
            counts[status] = n
        return counts

    def violations(self, status: str | None = None, district: str | None = None, category: str | None = None,
                   current_only: bool = True) -> list[dict]:
        """Violations with their source and artifacts, as the ``violations --json`` contract lists them."""
        where, params = [], []
        if current_only:
            where.append("v.run_id = s.current_run_id")
        for col, val in (("v.status", status), ("s.district", district), ("v.category", category)):
            if val:
                where.append(f"{col} = ?")
                params.append(val)
        sql = f"""
            SELECT v.id, v.category, s.district, s.inspector, s.path AS source_path, s.sha256 AS source_sha256,
                   v.start_s, v.end_s, v.start_time, v.end_time, v.confidence, v.status, v.hits, v.run_id,
                   v.source_id, v.origin, v.added_by,
                   clip.path AS clip_path, clip.sha256 AS clip_sha256, clip.start_s AS clip_start_s,
                   clip.end_s AS clip_end_s, proxy.path AS proxy_path, kf.path AS keyframe_path,
                   kf.sha256 AS keyframe_sha256
            FROM violations v JOIN sources s ON s.id = v.source_id
            LEFT JOIN artifacts clip ON clip.violation_id = v.id AND clip.kind = 'clip'
            LEFT JOIN artifacts proxy ON proxy.violation_id = v.id AND proxy.kind = 'proxy'
            LEFT JOIN artifacts kf ON kf.violation_id = v.id AND kf.kind = 'keyframe'
            {"WHERE " + " AND ".join(where) if where else ""}
            ORDER BY s.district, v.start_time, v.source_id, v.start_s, v.id"""
        return self.query(sql, params)


def create_private(path: Path) -> None:
    """Create ``path`` empty and owner-only (0600) unless it exists. SQLite gives a database's ``-wal`` and
    ``-shm`` files the database's own mode, so they are owner-only too."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:  # it exists (kept as it is), or cannot be made here: SQLite's own open says why
        pass


SESSIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
"""


class SessionStore:
    """The review app's logged-in sessions, server side, in a small owner-only database of their own.

    Sessions are not evidence (no custody entries, nothing ``vaudit verify`` checks), so they live
    beside ``evidence.db`` rather than in it. A row is keyed by the SHA-256 of the random session id the
    cookie carries, so a copy of this file logs no one in. Deleting the row ends the session at once.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        create_private(self.path)
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.conn.execute("PRAGMA journal_mode = WAL")
        for stmt in db.statements(SESSIONS_SCHEMA):
            self.conn.execute(stmt)

    def close(self) -> None:
        self.conn.close()

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def create(self, user: str, session_id: str, max_age_s: float) -> None:
        now = self.clock()
        self.conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        self.conn.execute("INSERT INTO sessions (id_hash, user, created_at, expires_at) VALUES (?, ?, ?, ?)",
                          (self._key(session_id), user, now, now + max_age_s))

    def user(self, session_id: str) -> str | None:
        """The user a live session belongs to; None when unknown, revoked or expired."""
        row = self.conn.execute("SELECT user FROM sessions WHERE id_hash = ? AND expires_at > ?",
                                (self._key(session_id), self.clock())).fetchone()
        return row[0] if row else None

    def revoke(self, session_id: str) -> None:
        self.conn.execute("DELETE FROM sessions WHERE id_hash = ?", (self._key(session_id),))

    def revoke_user(self, user: str) -> int:
        """End every session of ``user`` (on disable); returns how many there were."""
        return self.conn.execute("DELETE FROM sessions WHERE user = ?", (user,)).rowcount

    def count(self, user: str | None = None) -> int:
        sql, params = "SELECT count(*) FROM sessions WHERE expires_at > ?", [self.clock()]
        if user is not None:
            sql, params = sql + " AND user = ?", [*params, user]
        return self.conn.execute(sql, params).fetchone()[0]


class LeaseLost(Exception):
    """Another worker took this source over (our lease expired); our results must not be written."""


def checked_box(box: object, width: int | None, height: int | None) -> Box:
    """A drawn box as four finite floats with x1 < x2 and y1 < y2, clipped to the frame; ValueError otherwise."""
    try:
        x1, y1, x2, y2 = (float(v) for v in box)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError("a box is four numbers: x1, y1, x2, y2") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise ValueError("a box needs finite coordinates")
    w, h = float(width or 0) or math.inf, float(height or 0) or math.inf
    x1, x2 = max(0.0, min(x1, w)), max(0.0, min(x2, w))
    y1, y2 = max(0.0, min(y1, h)), max(0.0, min(y2, h))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ValueError("a box must be at least 2 pixels wide and high inside the frame, with x1 < x2 and y1 < y2")
    return round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)


def _box_columns(box: Box | None, t_s: float | None) -> dict:
    if box is None:
        return {}
    return {"t_s": t_s, "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3]}


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


def source_from_row(r: dict) -> Source:
    probe = Probe(
        duration_s=r["duration_s"] or 0.0, fps=r["fps"] or 0.0, vfr=bool(r["vfr"]), width=r["width"] or 0,
        height=r["height"] or 0, codec=r["codec"] or "", container=r["container"] or "",
        rotation=r["rotation"] or 0, audio_codec=r["audio_codec"], creation_time=_dt(r["creation_time"]),
        gps=r["gps"], device=r["device"],
    )
    return Source(
        id=r["id"], sha256=r["sha256"], path=r["path"], size=r["size"], probe=probe, district=r["district"],
        inspector=r["inspector"], capture_start=_dt(r["capture_start"]),
        capture_start_origin=r["capture_start_origin"] or "unknown", original_copy=r["original_copy"],
    )
