"""Copy a whole evidence database between engines: an SQLite workspace into PostgreSQL, and back.

Every row is copied with its id, and the custody log entry for entry, so the copy's chain is the same
chain (same head hash: heads witnessed against the original check against the copy). The destination
must be empty; its schema is made at the source's version without a migration entry of its own, the
source is read in one snapshot (it may stay in use), and the copy is one transaction, then checked:
same rows per table, chain intact, same head.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import custody, db
from .store import MIGRATIONS, SCHEMA_VERSION, Store, StoreError

_BATCH = 5000


def tables_in_order() -> list[str]:
    """Every table of the schema, in the order the migrations create them: parents before children."""
    names: list[str] = []
    for v in sorted(MIGRATIONS):
        for m in re.finditer(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", MIGRATIONS[v], re.IGNORECASE):
            if m[1] not in names:
                names.append(m[1])
    return names


@dataclass(frozen=True)
class CopyReport:
    source: str
    destination: str
    rows: dict[str, int]
    custody_head: tuple[int, str]


def _rows(conn: db.Connection, table: str) -> Iterator[tuple[list[str], list[tuple]]]:
    """The table in batches, in id order where it has one, without holding it all in memory."""
    if db.is_pg(conn):
        cur = conn.raw.cursor(name=f"copy_{table}")  # type: ignore[attr-defined]  # server-side
        cur.execute(f"SELECT * FROM {table}")
    else:
        cur = conn.execute(f"SELECT * FROM {table}")  # type: ignore[assignment]
    while batch := cur.fetchmany(_BATCH):
        yield [d[0] for d in cur.description], batch
    cur.close()


def _empty(dst: Store) -> bool:
    return dst.schema_version() == 0 and not (set(db.tables(dst.conn)) & set(tables_in_order()))


def copy(source: Path | str, destination: Path | str) -> CopyReport:
    """Copy the evidence database at ``source`` into the empty one at ``destination``."""
    if not db.is_url(source) and not Path(source).is_file():
        raise StoreError(f"no database at {source}")
    src = Store(source, migrate=False)
    try:
        version = src.schema_version()
        if version != SCHEMA_VERSION:
            raise StoreError(f"{src.where} is at schema version {version}, this vaudit copies version "
                             f"{SCHEMA_VERSION}: run `vaudit db migrate` on it first")
        if not db.is_url(destination) and Path(destination).exists() and Path(destination).stat().st_size:
            raise StoreError(f"{destination} exists: copy into a new file (nothing was written)")
        dst = Store(destination, migrate=False)
        try:
            if not _empty(dst):
                raise StoreError(f"{dst.where} already holds a vaudit database: copy only into an empty one "
                                 "(nothing was written)")
            rows = _copy_all(src, dst)
            head = custody.head(dst.conn)
            _check(src, dst, rows, head)
            return CopyReport(src.where, dst.where, rows, head)
        finally:
            dst.close()
    finally:
        src.close()


def _copy_all(src: Store, dst: Store) -> dict[str, int]:
    counts: dict[str, int] = {}
    db.begin_snapshot(src.conn)
    try:
        with dst.tx() as c:
            for v in range(1, SCHEMA_VERSION + 1):
                for stmt in db.ddl(c, MIGRATIONS[v]):
                    c.execute(stmt)
            db.set_schema_version(c, SCHEMA_VERSION)
            for table in tables_in_order():
                counts[table] = 0
                for cols, batch in _rows(src.conn, table):
                    names = ", ".join(cols)
                    marks = ", ".join("?" for _ in cols)
                    c.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)
                    counts[table] += len(batch)
                if db.is_pg(c) and "id" in _columns(c, table):
                    # rows came with their ids: the next id the table hands out follows the largest
                    c.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false)"
                              f" FROM {table}")
    finally:
        src.conn.execute("COMMIT")
    return counts


def _columns(conn: db.Connection, table: str) -> list[str]:
    cur = conn.execute(f"SELECT * FROM {table} LIMIT 0")
    return [d[0] for d in cur.description]


def _check(src: Store, dst: Store, rows: dict[str, int], head: tuple[int, str]) -> None:
    """The copy holds what was read, and its chain is the source's chain."""
    for table, n in rows.items():
        found = dst.query(f"SELECT count(*) AS n FROM {table}")[0]["n"]
        if found != n:
            raise StoreError(f"copy check: {table} has {found} rows in {dst.where}, {n} were copied")
    problems = custody.verify(dst.conn)
    if problems:
        raise StoreError(f"copy check: the copied custody chain does not verify: {problems[0]}")
    src_head = src.query("SELECT seq, hash FROM custody WHERE seq = ?", [head[0]])
    if head[0] and (not src_head or src_head[0]["hash"] != head[1]):
        raise StoreError(f"copy check: head {head[0]} of the copy is not the source's entry {head[0]}")
