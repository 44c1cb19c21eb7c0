"""Where files live inside a workspace; one place so that no stage invents its own paths.

A workspace is one machine's folder: its review secret and sessions, its signing key, its witness file.
The evidence database is ``evidence.db`` in it, unless the workspace names a PostgreSQL database that
several machines share; the evidence files (clips, keyframes, original copies, staging) are under the
workspace too, unless it names a shared evidence folder. Both are named by ``--db`` / ``$VAUDIT_DB`` and
``--evidence`` / ``$VAUDIT_EVIDENCE``, else by the workspace's ``workspace.yaml`` (``vaudit db use``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from .db import is_url

DEFAULT_WORKSPACE = "vaudit-workspace"
CONFIG_NAME = "workspace.yaml"
CONFIG_KEYS = ("database", "evidence")


class WorkspaceConfigError(Exception):
    """workspace.yaml is unreadable or names something unknown."""


@dataclass(frozen=True)
class Workspace:
    root: Path
    database: str | None = None  # a postgresql:// URL or an SQLite file; None: evidence.db here
    evidence_root: Path | None = None  # the shared folder clips/, frames/, originals/, tmp/ live in

    @classmethod
    def resolve(cls, path: str | Path | None = None, database: str | None = None,
                evidence: str | Path | None = None) -> Workspace:
        """``--workspace`` wins, then ``$VAUDIT_WORKSPACE``, then ``./vaudit-workspace``; the database and
        evidence folder: the option, then the environment, then the workspace's ``workspace.yaml``."""
        chosen = path or os.environ.get("VAUDIT_WORKSPACE") or DEFAULT_WORKSPACE
        root = Path(chosen).expanduser().absolute()
        conf = read_config(root)
        database = database or os.environ.get("VAUDIT_DB") or conf.get("database")
        evidence = evidence or os.environ.get("VAUDIT_EVIDENCE") or conf.get("evidence")
        if database and not is_url(database):
            database = str(Path(database).expanduser().absolute())
        return cls(root, database or None, Path(evidence).expanduser().absolute() if evidence else None)

    @property
    def db(self) -> Path | str:
        """What ``Store`` opens: the PostgreSQL URL, else the SQLite file."""
        if self.database:
            return self.database if is_url(self.database) else Path(self.database)
        return self.db_path

    @property
    def has_db(self) -> bool:
        """Whether there is a database to open (a server is asked when it is opened)."""
        db = self.db
        return isinstance(db, str) or db.exists()

    @property
    def db_path(self) -> Path:
        return self.root / "evidence.db"

    @property
    def evidence(self) -> Path:
        """The folder artifact paths are relative to: shared by every worker, or the workspace itself."""
        return self.evidence_root or self.root

    @property
    def clips(self) -> Path:
        return self.evidence / "clips"

    @property
    def frames(self) -> Path:
        return self.evidence / "frames"

    @property
    def tmp(self) -> Path:
        """Staging area: files are written here and renamed into place only when committed (so it must be
        on the evidence folder's file system)."""
        return self.evidence / "tmp"

    @property
    def originals(self) -> Path:
        return self.evidence / "originals"

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_NAME

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
        return self.evidence / relative

    def rel(self, path: Path) -> str:
        return path.relative_to(self.evidence).as_posix()


def read_config(root: Path) -> dict[str, str]:
    path = root / CONFIG_NAME
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise WorkspaceConfigError(f"{path}: {e}") from None
    if not isinstance(data, dict) or set(data) - set(CONFIG_KEYS):
        raise WorkspaceConfigError(f"{path}: only the keys {', '.join(CONFIG_KEYS)} are allowed")
    return {k: str(v) for k, v in data.items() if v}


def write_config(root: Path, database: str | None, evidence: Path | None) -> Path:
    """Save the workspace's database and evidence folder; owner-only, since a URL may hold a password."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / CONFIG_NAME
    data = {k: v for k, v in (("database", database), ("evidence", str(evidence) if evidence else None)) if v}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, allow_unicode=True)
    return path
