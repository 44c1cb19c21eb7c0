"""The custody log: an append-only, hash-chained record of every change to the evidence.

Each entry's hash is ``SHA-256(prev_hash + canonical JSON of the entry)``, so deleting, editing or
reordering any entry breaks every hash after it. Entries are appended inside the same transaction as
the change they record: a change without its entry (or the reverse) can never be committed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .db import Connection

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS custody (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id INTEGER,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS custody_entity ON custody(entity, entity_id);
CREATE TRIGGER IF NOT EXISTS custody_no_update BEFORE UPDATE ON custody
    BEGIN SELECT RAISE(ABORT, 'custody log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS custody_no_delete BEFORE DELETE ON custody
    BEGIN SELECT RAISE(ABORT, 'custody log is append-only'); END;
"""


def canonical(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def entry_hash(prev_hash: str, entry: dict) -> str:
    return hashlib.sha256((prev_hash + canonical(entry)).encode("utf-8")).hexdigest()


def append(
    conn: Connection,
    event: str,
    entity: str,
    entity_id: int | None,
    payload: dict,
    actor: str = "system",
) -> str:
    """Append one entry; the caller must hold a write transaction (``Store.tx``: SQLite's write lock, or
    PostgreSQL's chain lock), so no other entry can take the same number."""
    if not conn.in_transaction:
        raise RuntimeError("custody.append must run inside the transaction of the change it records")
    row = conn.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    entry = {
        "seq": seq,
        "at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "event": event,
        "entity": entity,
        "entity_id": entity_id,
        "payload": payload,
    }
    h = entry_hash(prev, entry)
    conn.execute(
        "INSERT INTO custody (seq, at, actor, event, entity, entity_id, payload, prev_hash, hash)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        (seq, entry["at"], actor, event, entity, entity_id, canonical(payload), prev, h),
    )
    return h


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    what: str

    def __str__(self) -> str:
        return f"custody entry {self.seq}: {self.what}"


def rows_to_entries(rows: Iterable[Sequence]) -> Iterator[tuple[dict, str, str]]:
    for seq, at, actor, event, entity, entity_id, payload, prev_hash, h in rows:
        entry = {
            "seq": seq,
            "at": at,
            "actor": actor,
            "event": event,
            "entity": entity,
            "entity_id": entity_id,
            "payload": json.loads(payload),
        }
        yield entry, prev_hash, h


def verify_entries(entries: Iterable[tuple[dict, str, str]]) -> list[ChainProblem]:
    """Recompute the chain; report the first entry where it breaks (later ones follow from it)."""
    expected_prev, expected_seq = GENESIS, 1
    for entry, prev_hash, h in entries:
        seq = entry["seq"]
        if seq != expected_seq:
            return [ChainProblem(seq, f"sequence gap or reorder: expected entry {expected_seq}, found {seq}")]
        if prev_hash != expected_prev:
            return [ChainProblem(seq, f"prev_hash {prev_hash[:12]}… does not match entry {seq - 1}'s hash "
                                      f"{expected_prev[:12]}…")]
        recomputed = entry_hash(prev_hash, entry)
        if recomputed != h:
            return [ChainProblem(seq, f"content altered: stored hash {h[:12]}…, recomputed {recomputed[:12]}…")]
        expected_prev, expected_seq = h, seq + 1
    return []


def verify(conn: Connection) -> list[ChainProblem]:
    rows = conn.execute(  # seq is SQLite's rowid: the order rows were stored in
        "SELECT seq, at, actor, event, entity, entity_id, payload, prev_hash, hash FROM custody ORDER BY seq"
    )
    return verify_entries(rows_to_entries(rows))


def history(conn: Connection, entity: str, entity_id: int) -> list[dict]:
    rows = conn.execute(
        "SELECT seq, at, actor, event, entity, entity_id, payload, prev_hash, hash FROM custody"
        " WHERE entity = ? AND entity_id = ? ORDER BY seq",
        (entity, entity_id),
    )
    return [dict(e, hash=h) for e, _, h in rows_to_entries(rows)]


def head(conn: Connection) -> tuple[int, str]:
    """(seq, hash) of the last entry; (0, GENESIS) for an empty log."""
    row = conn.execute("SELECT seq, hash FROM custody ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


@dataclass
class Replayed:
    """The evidence state the custody log alone implies; ``seq`` fields name the entry that set each record.

    ``sources``: id -> sha256, path, district, inspector, status, current_run_id.
    ``violations``: id -> run_id, source_sha256, category, status, start_s, end_s, confidence, artifacts
    (path -> (kind, sha256)), box (drawn by an analyst who added or corrected it; None when the log
    never recorded one). ``decisions``: decision id -> violation_id, user, action, category, reason,
    note, start_s, end_s, box, t_s (as the row records them).
    """

    sources: dict[int, dict]
    violations: dict[int, dict]
    decisions: dict[int, dict]


def replay(conn: Connection) -> Replayed:
    """Rebuild the state the evidence depends on from the log, entry by entry, in order."""
    sources: dict[int, dict] = {}
    violations: dict[int, dict] = {}
    decisions: dict[int, dict] = {}
    rows = conn.execute(
        "SELECT seq, at, actor, event, entity, entity_id, payload, prev_hash, hash FROM custody ORDER BY seq")
    for e, _, _ in rows_to_entries(rows):
        ev, eid, p, seq = e["event"], e["entity_id"], e["payload"], e["seq"]
        if not isinstance(p, dict):
            continue
        if ev == "source_ingested":
            sources[eid] = {"seq": seq, "sha256": p.get("sha256"), "path": p.get("path"),
                            "district": p.get("district"), "inspector": p.get("inspector"), "status": "ready",
                            "current_run_id": None, "current_seq": None}
        elif ev == "source_rejected":
            s = sources.setdefault(eid, {"seq": seq, "sha256": p.get("sha256"), "path": p.get("path"),
                                         "current_run_id": None, "current_seq": None})
            s.update(status="rejected", status_seq=seq)
        elif ev == "source_processed" and eid in sources:
            sources[eid].update(current_run_id=p.get("run_id"), current_seq=seq)
        elif ev == "violation_created":
            violations[eid] = {
                "seq": seq, "run_id": p.get("run_id"), "source_sha256": p.get("source_sha256"),
                "category": p.get("category"), "status": "pending", "start_s": p.get("start_s"),
                "end_s": p.get("end_s"), "confidence": p.get("confidence"), "state_seq": seq,
                "artifacts": {a.get("path"): (a.get("kind"), a.get("sha256")) for a in p.get("artifacts") or []},
                "box": p.get("box"), "box_seq": seq}
        elif ev.startswith("decision_") and e["entity"] == "violation":
            action = ev[len("decision_"):]
            if eid in violations:
                violations[eid].update(status=p.get("status"), category=p.get("category"), start_s=p.get("start_s"),
                                       end_s=p.get("end_s"), state_seq=seq)
                if action == "correct_box" and p.get("box") is not None:
                    violations[eid].update(box=p["box"], box_seq=seq)
            if p.get("decision_id") is not None:
                decisions[p["decision_id"]] = {
                    "seq": seq, "violation_id": eid, "user": e["actor"], "action": action,
                    "category": p.get("category") if action == "relabel" else None,
                    "reason": p.get("reason"), "note": p.get("note"),
                    "start_s": p.get("start_s") if action == "trim" else None,
                    "end_s": p.get("end_s") if action == "trim" else None,
                    "box": p.get("box"), "t_s": p.get("t_s") if p.get("box") is not None else None}
    return Replayed(sources, violations, decisions)
