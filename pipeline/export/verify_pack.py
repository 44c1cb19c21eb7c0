#!/usr/bin/env python3
"""Verify a vaudit exposure-meeting pack on its own, with nothing but Python's standard library.

Usage: python3 verify_pack.py [PACK_DIR_OR_ZIP]   (default: the folder this script is in)

Checks that every file listed in manifest.json is present with the recorded SHA-256 and size, that no
unlisted file was added, that every custody excerpt's entries hash correctly from their prev_hash
(SHA-256 of prev_hash + canonical JSON, as the evidence database computes them), and that every evidence
file (or, for a blurred copy, the original it was made from) is the one its custody entry recorded.
Prints each problem and exits 1, or prints OK and exits 0.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import zipfile
from pathlib import Path

ENTRY_KEYS = ("seq", "at", "actor", "event", "entity", "entity_id", "payload")


def sha256_file(path: Path) -> str:
    """Chunked rather than hashlib.file_digest, so the script runs on the Python 3.8 of an office PC."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entry_hash(prev_hash: str, entry: dict) -> str:
    body = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def check_files(root: Path, manifest: dict) -> list[str]:
    problems = []
    listed = {f["path"] for f in manifest["files"]}
    for f in manifest["files"]:
        p = root / f["path"]
        if not p.is_file():
            problems.append(f"{f['path']}: missing")
        elif p.stat().st_size != f["size"]:
            problems.append(f"{f['path']}: size {p.stat().st_size}, manifest says {f['size']}")
        elif sha256_file(p) != f["sha256"]:
            problems.append(f"{f['path']}: sha256 {sha256_file(p)}, manifest says {f['sha256']}")
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel != "manifest.json" and rel not in listed:
            problems.append(f"{rel}: not in the manifest (added after export)")
    return problems


def check_custody(root: Path, manifest: dict) -> list[str]:
    problems = []
    recorded: dict[int, set[str]] = {}  # violation id -> artifact hashes its custody entry recorded
    for f in manifest["files"]:
        if f.get("role") != "custody" or not (root / f["path"]).is_file():
            continue
        try:
            excerpt = json.loads((root / f["path"]).read_text(encoding="utf-8"))
            entries = excerpt["custody"]
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{f['path']}: not a custody excerpt ({e})")
            continue
        for e in entries:
            found = entry_hash(e.get("prev_hash", ""), {k: e.get(k) for k in ENTRY_KEYS})
            if found != e.get("hash"):
                problems.append(f"{f['path']}: custody entry {e.get('seq')} altered: hash {e.get('hash')}, "
                                f"recomputed {found}")
            if e.get("event") == "violation_created" and e.get("entity_id") == f["violation_id"]:
                arts = e.get("payload", {}).get("artifacts", [])
                recorded.setdefault(f["violation_id"], set()).update(a.get("sha256") for a in arts)
    for f in manifest["files"]:
        if f.get("role") not in ("clip", "proxy", "keyframe"):
            continue
        if f["original_sha256"] not in recorded.get(f["violation_id"], set()):
            problems.append(f"{f['path']}: original sha256 {f['original_sha256']} is not in violation "
                            f"{f['violation_id']}'s custody record")
        if not f.get("redacted") and f["sha256"] != f["original_sha256"]:
            problems.append(f"{f['path']}: not blurred, yet its sha256 differs from the original's")
    return problems


def verify(root: Path) -> list[str]:
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return [f"manifest.json: cannot read ({e})"]
    return check_files(root, manifest) + check_custody(root, manifest)


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    if target.is_file() and zipfile.is_zipfile(target):
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(target) as z:
                z.extractall(tmp)
            problems = verify(Path(tmp))
    else:
        problems = verify(target)
    for p in problems:
        print(f"PROBLEM {p}")
    print(f"{len(problems)} problem(s) in {target}" if problems else f"OK: {target} verifies")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
