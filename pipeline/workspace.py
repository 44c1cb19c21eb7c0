"""Where files live inside a workspace; one place so that no stage invents its own paths."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKSPACE = "vaudit-workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> Workspace:
        """``--workspace`` wins, then ``$VAUDIT_WORKSPACE``, then ``./vaudit-workspace``."""
        chosen = path or os.environ.get("VAUDIT_WORKSPACE") or DEFAULT_WORKSPACE
        return cls(Path(chosen).expanduser().absolute())

    @property
    def db_path(self) -> Path:
        return self.root / "evidence.db"

    @property
    def clips(self) -> Path:
        return self.root / "clips"

    @property
    def frames(self) -> Path:
        return self.root / "frames"

    @property
    def tmp(self) -> Path:
        """Staging area: files are written here and renamed into place only when committed."""
        return self.root / "tmp"

    @property
    def originals(self) -> Path:
        return self.root / "originals"

    @property
    def review_secret(self) -> Path:
        """The review app's cookie-signing key (0600)."""
        return self.root / "review-secret"

    @property
    def sessions_db(self) -> Path:
        """The review app's server-side sessions (0600); not evidence."""
        return self.root / "review-sessions.db"

    @property
    def review_tmp(self) -> Path:
        """Where the review app builds downloads (0700). Not under ``tmp``: ``vaudit run`` sweeps that."""
        return self.root / "review-tmp"

    @property
    def signing_key(self) -> Path:
        """The office's Ed25519 signing key (0600, folder 0700), unless ``--key`` names another place."""
        return self.root / "keys" / "office-signing-key.pem"

    @property
    def witness(self) -> Path:
        """Append-only JSON lines: the custody head, signed, after every run, review decision and export."""
        return self.root / "custody-witness.jsonl"

    def create(self) -> Workspace:
        for d in (self.root, self.clips, self.frames):
            d.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(mode=0o700, exist_ok=True)  # staged evidence not yet committed: owner only
        return self

    def abs(self, relative: str) -> Path:
        return self.root / relative

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()
