"""Anchoring the custody log outside the database: signed heads and the witness file.

A *head* is the last custody entry's (seq, hash), with when and why it was taken, signed with the
office key when there is one. After every run, review decision and pack export a head is appended to
``custody-witness.jsonl`` beside ``evidence.db`` (packs carry one too, and ``vaudit custody head``
prints and appends one). Since each entry's hash covers every entry before it, a witnessed head pins
the whole log up to that entry: ``vaudit verify`` reports a log shorter than a witness (entries cut off,
or the database copied without its ``-wal``) and a witnessed hash no longer in the chain (rewritten).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import custody, keys
from .store import Store
from .workspace import Workspace

HEAD_FORMAT = "vaudit-head/1"
SIGNED_FIELDS = ("format", "database", "seq", "hash", "at", "event", "key")


def head_message(rec: dict) -> bytes:
    """The bytes a head's signature covers (``verify_pack.py`` computes the same)."""
    return (HEAD_FORMAT + "\n" + custody.canonical({k: rec.get(k) for k in SIGNED_FIELDS})).encode("utf-8")


def signed_head(store: Store, event: str, key: keys.SigningKey | None) -> dict:
    seq, h = custody.head(store.conn)
    rec = {"format": HEAD_FORMAT, "database": store.name, "seq": seq, "hash": h,
           "at": datetime.now(UTC).isoformat(timespec="microseconds"), "event": event,
           "key": key.public.fingerprint if key else None}
    rec["public_key"] = key.public.text if key else None
    rec["signature"] = keys.b64(key.sign(head_message(rec))) if key else None
    return rec


def append(path: Path, rec: dict) -> None:
    """One line, appended (O_APPEND) and flushed to disk; the file is never rewritten."""
    line = (json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def witness(ws: Workspace, store: Store, event: str, key_path: Path | None = None) -> dict:
    """Sign (if there is a key) and append the current head to the workspace's witness file."""
    rec = signed_head(store, event, keys.load(keys.key_path(ws, key_path)))
    append(ws.witness, rec)
    return rec


def witness_quietly(ws: Workspace, store: Store, event: str) -> dict | None:
    """``witness`` for the end of a run or a review decision: a problem is a warning, never a failure."""
    try:
        return witness(ws, store, event)
    except (OSError, keys.SigningKeyError) as e:
        print(f"warning: custody head not witnessed: {e}", file=sys.stderr)
        return None


def check_signature(rec: dict, trusted: keys.PublicKey | None) -> str | None:
    """None when ``rec`` is signed by ``trusted`` (or, with no trusted key, by the key it names); else why not."""
    if not rec.get("signature"):
        return "unsigned"
    try:
        pub = trusted or keys.PublicKey.parse(str(rec.get("public_key") or ""))
        sig = base64.b64decode(str(rec["signature"]), validate=True)
    except (keys.SigningKeyError, ValueError):
        return "signature or key unreadable"
    if keys.normalise_fingerprint(str(rec.get("key") or "")) != keys.normalise_fingerprint(pub.fingerprint):
        return f"signed by key {rec.get('key')}, not the office key {pub.fingerprint}"
    if not pub.verify(sig, head_message(rec)):
        return "signature does not verify (the head was altered or forged)"
    return None


@dataclass
class WitnessReport:
    problems: list[tuple[str, str]]
    notes: list[str]
    heads: int


def read_heads(path: Path) -> list[tuple[str, dict | None]]:
    """(label, record) for each line of a witness file, or the head a pack's manifest.json carries."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.name == "manifest.json" or text.lstrip().startswith("{\n"):
        try:
            rec = json.loads(text)["database"]["custody_head"]
        except (ValueError, KeyError, TypeError):
            rec = None
        return [(f"{path}", rec if isinstance(rec, dict) else None)]
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        out.append((f"{path.name} line {i}", rec if isinstance(rec, dict) else None))
    return out


def load(sources: list[tuple[Path, bool]]) -> list[tuple[Path, bool, list[tuple[str, dict | None]] | None]]:
    """Read every head of ``sources`` ((path, is the workspace's own witness file)); None for a missing file.
    Read these *before* the database: a head read first was written after its entries were committed."""
    return [(path, own, read_heads(path) if path.exists() else None) for path, own in sources]


def check(store: Store, sources: list[tuple[Path, bool, list[tuple[str, dict | None]] | None]],
          trusted: keys.PublicKey | None, key_required: bool) -> WitnessReport:
    """Check the log against every head ``load`` read.

    ``key_required``: the office has a signing key, so an unsigned latest head, or no witness at all, is
    itself a problem (an attacker who rewrites the log could otherwise write an unsigned witness to match).
    """
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    db_seq, _ = custody.head(store.conn)
    hashes = dict(store.conn.execute("SELECT seq, hash FROM custody"))
    heads: list[tuple[str, dict]] = []
    for path, own, recs in sources:
        if recs is None:
            if own and db_seq > 1:
                if key_required:
                    problems.append((str(path.name), ("missing: the office has a signing key, so every run, "
                                     "decision and export should have witnessed the custody head here")))
                else:
                    notes.append("no witness file: nothing outside the database anchors the custody log "
                                 "(`vaudit keys init` makes a key and starts one)")
            elif not own:
                problems.append((str(path), "not found"))
            continue
        seen_signed = False
        for label, rec in recs:
            if rec is None or not isinstance(rec.get("seq"), int) or not isinstance(rec.get("hash"), str):
                problems.append((label, "not a custody head record"))
                continue
            why = check_signature(rec, trusted)
            if why == "unsigned":
                if seen_signed:
                    problems.append((label, "unsigned head after signed ones (written by someone without the key)"))
            elif why:
                problems.append((label, why))
            else:
                seen_signed = True
            heads.append((label, rec))
        good = [r for _, r in recs if r is not None]
        if own and good and key_required and not good[-1].get("signature"):
            problems.append((recs[-1][0], "the latest head is unsigned although the office has a signing key"))
        unsigned = sum(1 for r in good if not r.get("signature"))
        if unsigned and not key_required:
            notes.append(f"{path.name}: {unsigned} of {len(good)} heads unsigned: they show truncation and "
                         "rewrites, but anyone who can write the file can forge them (`vaudit keys init`)")
    if not trusted and any(r.get("signature") for _, r in heads):
        notes.append("signed heads checked only against the key each names: no office key is known here "
                     "(give --public-key)")
    longest = max(heads, key=lambda lr: lr[1]["seq"], default=None)
    if longest and longest[1]["seq"] > db_seq:
        label, r = longest
        problems.append(("custody log", (
            f"truncated: it ends at entry {db_seq}, but the head witnessed at {r.get('at')} "
            f"({r.get('event')}, {label}) is entry {r['seq']} (hash {r['hash'][:16]}…): "
            f"{r['seq'] - db_seq} entries are gone — cut off, or evidence.db was copied or restored "
            "without its evidence.db-wal")))
    rewritten = sorted((r["seq"], label, r) for label, r in heads if 0 < r["seq"] <= db_seq
                       and hashes.get(r["seq"]) != r["hash"])
    if rewritten:
        seq, label, r = rewritten[0]
        now = hashes.get(seq)
        problems.append(("custody log", (
            f"rewritten: the head witnessed at {r.get('at')} ({r.get('event')}, {label}) "
            f"is entry {seq} with hash {r['hash'][:16]}…, but the log now has "
            f"{(now[:16] + '…') if now else 'no such entry'} there"
            + (f" ({len(rewritten)} witnessed heads disagree)" if len(rewritten) > 1 else ""))))
    return WitnessReport(problems, notes, len(heads))
