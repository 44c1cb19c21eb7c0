"""Plain functions behind the ``vaudit review`` / ``vaudit user`` CLI commands.

User errors raise ValueError or LookupError with one line the CLI prints as is.
"""

from __future__ import annotations

from ..config import Config
from ..store import SessionStore, Store
from ..workspace import Workspace
from . import queries
from .auth import ROLES, hash_password, password_problem


def serve(ws: Workspace, cfg: Config, host: str = "127.0.0.1", port: int = 8000, *,
          secure_cookies: bool = False) -> None:
    """Run the review app until interrupted. Localhost by default: put it behind a TLS proxy (and pass
    ``secure_cookies``) before exposing it to a network. uvicorn's own forwarded-header handling is off:
    the app reads ``X-Forwarded-For`` itself, and only from ``review.trusted_proxies``."""
    import uvicorn

    from .app import create_app

    if not ws.has_db:
        raise ValueError(f"no evidence database in {ws.root}: run `vaudit run` first")
    uvicorn.run(create_app(ws, cfg, secure_cookies=secure_cookies), host=host, port=port, log_level="info",
                proxy_headers=False)


def user_add(ws: Workspace, name: str, role: str, password: str) -> None:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise ValueError("user name must be 1-64 characters without spaces")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if problem := password_problem(name, password):
        raise ValueError(problem)
    store = Store(ws.db)
    try:
        if store.user(name):
            raise ValueError(f"user {name!r} already exists")
        store.add_user(name, role, hash_password(password), actor="cli")
    finally:
        store.close()


def user_list(ws: Workspace) -> list[dict]:
    """Users without their password hashes."""
    store = Store(ws.db)
    try:
        return [{**u, "disabled": bool(u["disabled"])} for u in queries.users(store)]
    finally:
        store.close()


def user_disable(ws: Workspace, name: str) -> None:
    """Disable (never delete: decisions keep naming them) a user; their open sessions are deleted, so they
    stop working at once and do not come back if the user is enabled again."""
    store = Store(ws.db)
    try:
        store.set_user_disabled(name, True, actor="cli")
    finally:
        store.close()
    sessions = SessionStore(ws.sessions_db)
    try:
        sessions.revoke_user(name)
    finally:
        sessions.close()
