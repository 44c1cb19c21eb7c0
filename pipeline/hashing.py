"""SHA-256 of files: the one way every stage identifies content (lowercase hex of the bytes)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """Streamed, so a multi-gigabyte original never sits in memory."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
