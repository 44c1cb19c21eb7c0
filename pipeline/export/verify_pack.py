#!/usr/bin/env python3
"""Verify a vaudit exposure-meeting pack on its own, with nothing but Python's standard library.

Usage: python3 verify_pack.py [PACK_DIR_OR_ZIP] [--fingerprint "ab12 cd34 ..." | --public-key KEY]
  PACK_DIR_OR_ZIP  default: the folder this script is in
  --fingerprint    the office key's fingerprint as printed in the meeting's paperwork (`vaudit keys show`)
  --public-key     the office public key itself (base64, as `vaudit keys show` prints it, or a file holding it)

Without one of them the signature is checked only against the key the pack carries, which a forger can
replace with their own: the pack then proves only that it agrees with itself (it says NOT AUTHENTICATED).

Checks that manifest.json is signed (manifest.sig, Ed25519) by the office key; that every file listed in
it is present with the recorded SHA-256 and size and no unlisted file was added; that every custody
excerpt's entries hash correctly from their prev_hash (SHA-256 of prev_hash + canonical JSON, as the
evidence database computes them), link to each other where consecutive and end at or before the signed
custody head the pack carries; and that every evidence file (or, for a blurred copy, the original it was
made from) is the one its custody entry recorded. Prints each problem and exits 1, or prints OK and exits 0.
Needs no packages: Ed25519 verification is written out below (RFC 8032, verification only).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import tempfile
import zipfile
from pathlib import Path

ENTRY_KEYS = ("seq", "at", "actor", "event", "entity", "entity_id", "payload")
HEAD_FIELDS = ("format", "database", "seq", "hash", "at", "event", "key")
MANIFEST_CONTEXT = b"vaudit-pack-manifest/1\n"
UNLISTED = ("manifest.json", "manifest.sig")

# -- Ed25519 verification (RFC 8032), integers only ----------------------------------------------------
_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _add(a: tuple, b: tuple) -> tuple:
    """Point addition in extended coordinates (X, Y, Z, T) on -x^2 + y^2 = 1 + d x^2 y^2."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    p, q = (y1 - x1) * (y2 - x2) % _P, (y1 + x1) * (y2 + x2) % _P
    r, s = 2 * t1 * t2 * _D % _P, 2 * z1 * z2 % _P
    e, f, g, h = q - p, s - r, s + r, q + p
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _mul(n: int, pt: tuple) -> tuple:
    acc = (0, 1, 1, 0)
    while n:
        if n & 1:
            acc = _add(acc, pt)
        pt = _add(pt, pt)
        n >>= 1
    return acc


def _x_from_y(y: int, sign: int):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


def _decode_point(b: bytes):
    y = int.from_bytes(b, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _x_from_y(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


def _encode_point(pt: tuple) -> bytes:
    x, y, z, _ = pt
    zi = pow(z, _P - 2, _P)
    x, y = x * zi % _P, y * zi % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


_BASE = _decode_point((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public``'s signature of ``message``: [S]B == R + [k]A."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public)
    s = int.from_bytes(signature[32:], "little")
    if a is None or s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    minus_a = ((_P - a[0]) % _P, a[1], a[2], (_P - a[3]) % _P)
    return _encode_point(_add(_mul(s, _BASE), _mul(k, minus_a))) == signature[:32]


def fingerprint(public: bytes) -> str:
    h = hashlib.sha256(public).hexdigest()[:32]
    return " ".join(h[i:i + 4] for i in range(0, 32, 4))


def _plain_fp(fp: str) -> str:
    return "".join(str(fp).split()).replace(":", "").replace("-", "").lower()


def parse_key(text: str) -> bytes:
    s = text.strip()
    p = Path(s).expanduser()
    if len(s) < 200 and p.is_file():
        s = p.read_text(encoding="ascii", errors="replace").strip()
    try:
        raw = bytes.fromhex(s) if len(s) == 64 else base64.b64decode(s, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"not an Ed25519 public key: {text!r}")
    return raw


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
        if p.is_file() and rel not in UNLISTED and rel not in listed:
            problems.append(f"{rel}: not in the manifest (added after export)")
    return problems


def check_custody(root: Path, manifest: dict) -> list[str]:
    problems = []
    recorded: dict[int, set[str]] = {}  # violation id -> artifact hashes its custody entry recorded
    head = (manifest.get("database") or {}).get("custody_head") or {}
    seen: dict[int, str] = {}  # seq -> hash, across excerpts (an entry shared by two must be the same entry)
    for f in manifest["files"]:
        if f.get("role") != "custody" or not (root / f["path"]).is_file():
            continue
        try:
            excerpt = json.loads((root / f["path"]).read_text(encoding="utf-8"))
            entries = excerpt["custody"]
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{f['path']}: not a custody excerpt ({e})")
            continue
        by_seq = {e.get("seq"): e for e in entries if isinstance(e, dict)}
        for e in entries:
            seq = e.get("seq")
            before = by_seq.get(seq - 1) if isinstance(seq, int) else None
            if before is not None and e.get("prev_hash") != before.get("hash"):
                problems.append(f"{f['path']}: custody entry {seq} does not link to entry {seq - 1} "
                                f"(prev_hash {str(e.get('prev_hash'))[:16]}…, entry {seq - 1} hash "
                                f"{str(before.get('hash'))[:16]}…)")
            if seq in seen and seen[seq] != e.get("hash"):
                problems.append(f"{f['path']}: custody entry {seq} differs from the same entry in another excerpt")
            seen.setdefault(seq, e.get("hash"))
            if isinstance(head.get("seq"), int) and isinstance(seq, int):
                if seq > head["seq"]:
                    problems.append(f"{f['path']}: custody entry {seq} is after the pack's custody head "
                                    f"(entry {head['seq']})")
                elif seq == head["seq"] and e.get("hash") != head.get("hash"):
                    problems.append(f"{f['path']}: custody entry {seq} is not the pack's custody head "
                                    f"(hash {str(e.get('hash'))[:16]}…, head {str(head.get('hash'))[:16]}…)")
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


def _b64(text: object) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError:
        return b""


def check_signatures(root: Path, manifest: dict, trusted: bytes | None, fp: str | None) -> tuple[list[str], str]:
    """(problems, how the pack was authenticated). ``trusted``: the office key from the command line;
    ``fp``: its fingerprint from the paperwork (the pack's own key must have it)."""
    problems = []
    sig_path = root / "manifest.sig"
    if not sig_path.is_file():
        if trusted or fp:
            return ["manifest.sig: missing: the pack is not signed, so nothing shows it came from the office"], ""
        return [], "NOT AUTHENTICATED: the pack is unsigned"
    try:
        sig = json.loads(sig_path.read_text(encoding="utf-8"))
        carried = parse_key(str(sig.get("public_key")))
    except (ValueError, AttributeError) as e:
        return [f"manifest.sig: unreadable ({e})"], ""
    if fp and _plain_fp(fingerprint(carried)) != _plain_fp(fp):
        problems.append(f"manifest.sig: signed by key {fingerprint(carried)}, not the office key {fp} "
                        "(a pack signed by someone else)")
    key = trusted or carried
    if trusted and trusted != carried:
        problems.append(f"manifest.sig: carries key {fingerprint(carried)}, not the office key {fingerprint(trusted)}")
    message = MANIFEST_CONTEXT + (root / "manifest.json").read_bytes()
    if not ed25519_verify(key, message, _b64(sig.get("signature"))):
        problems.append(f"manifest.json: the signature does not verify with key {fingerprint(key)}: the manifest was "
                        "altered after signing (files swapped, hashes recomputed) or signed by another key")
    head = (manifest.get("database") or {}).get("custody_head") or {}
    if head.get("signature"):
        body = json.dumps({k: head.get(k) for k in HEAD_FIELDS}, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"))
        if not ed25519_verify(key, (head.get("format", "") + "\n" + body).encode("utf-8"), _b64(head["signature"])):
            problems.append("manifest.json: the custody head's signature does not verify")
    elif trusted or fp:
        problems.append("manifest.json: the custody head is unsigned")
    how = (f"signed by the office key {fingerprint(key)}" if trusted or fp else
           f"NOT AUTHENTICATED: signed by key {fingerprint(carried)}, which the pack itself carries; give "
           "--fingerprint from the meeting's paperwork")
    return problems, how


def verify(root: Path, trusted: bytes | None = None, fp: str | None = None) -> tuple[list[str], str]:
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return [f"manifest.json: cannot read ({e})"], ""
    sig_problems, how = check_signatures(root, manifest, trusted, fp)
    return sig_problems + check_files(root, manifest) + check_custody(root, manifest), how


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="verify_pack.py", description="Verify a vaudit exposure-meeting pack.")
    ap.add_argument("pack", nargs="?", help="pack folder or .zip (default: the folder this script is in)")
    ap.add_argument("--fingerprint", help="the office key's fingerprint from the meeting's paperwork")
    ap.add_argument("--public-key", help="the office public key (base64) or a file holding it")
    args = ap.parse_args(argv[1:])
    target = Path(args.pack) if args.pack else Path(__file__).resolve().parent
    try:
        trusted = parse_key(args.public_key) if args.public_key else None
    except ValueError as e:
        print(f"PROBLEM --public-key: {e}")
        return 2
    if target.is_file() and zipfile.is_zipfile(target):
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(target) as z:
                z.extractall(tmp)
            problems, how = verify(Path(tmp), trusted, args.fingerprint)
    else:
        problems, how = verify(target, trusted, args.fingerprint)
    for p in problems:
        print(f"PROBLEM {p}")
    print(f"{len(problems)} problem(s) in {target}" if problems else f"OK: {target} verifies; {how}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
