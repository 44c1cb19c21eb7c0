"""The custody log: an append-only, hash-chained record of every change to the evidence.

Each entry's hash is ``SHA-256(prev_hash + canonical JSON of the entry)``, so deleting, editing or
reordering any entry breaks every hash after it. Entries are appended inside the same transaction as
the change they record: a change without its entry (or the reverse) can never be committed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

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
    conn: sqlite3.Connection,
    event: str,
    entity: str,
    entity_id: int | None,
    payload: dict,
    actor: str = "system",
) -> str:
    """Append one entry; the caller must hold a write transaction (BEGIN IMMEDIATE)."""
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


def rows_to_entries(rows: Iterable[sqlite3.Row | tuple]) -> Iterator[tuple[dict, str, str]]:
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


def verify(conn: sqlite3.Connection) -> list[ChainProblem]:
    rows = conn.execute(
        "SELECT seq, at, actor, event, entity, entity_id, payload, prev_hash, hash FROM custody ORDER BY rowid"
    )
    return verify_entries(rows_to_entries(rows))


def history(conn: sqlite3.Connection, entity: str, entity_id: int) -> list[dict]:
    rows = conn.execute(
        "SELECT seq, at, actor, event, entity, entity_id, payload, prev_hash, hash FROM custody"
        " WHERE entity = ? AND entity_id = ? ORDER BY seq",
        (entity, entity_id),
    )
    return [dict(e, hash=h) for e, _, h in rows_to_entries(rows)]
