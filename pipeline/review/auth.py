"""Authentication for the review workstation: passwords, signed session cookies, CSRF, throttling.

The session lives entirely in a signed cookie (no server-side session table), so the user row is
re-read on every request: disabling a user or changing a role takes effect on their next click.
Every cookie carries its own CSRF token, including the anonymous one given to the login form, so
even the login POST cannot be forged from another site.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

ROLES = ("analyst", "assessor", "admin")
DECIDERS = frozenset({"analyst", "admin"})
EXPORTERS = frozenset({"assessor", "admin"})  # counts, charts and packs are for assessment staff
COOKIE = "vaudit_session"
SESSION_MAX_AGE_S = 12 * 3600  # one working day; a stolen cookie stops working by the next morning
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MIN_PASSWORD = 8

_hasher = PasswordHasher()
# verified against when the user does not exist, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def load_secret(root: Path) -> str:
    """The cookie-signing key, kept in the workspace (0600) so restarts keep users logged in."""
    path = root / "review-secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32))
    return path.read_text(encoding="ascii").strip()


@dataclass
class Sessions:
    """Reads and writes the session cookie; ``secure`` forces the Secure flag even over plain http."""

    secret: str
    secure: bool = False

    def __post_init__(self) -> None:
        self._signer = URLSafeTimedSerializer(self.secret, salt="vaudit-review-session")

    def read(self, request: Request) -> dict:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return {}
        try:
            data = self._signer.loads(raw, max_age=SESSION_MAX_AGE_S)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, request: Request, response: Response, user: str | None, token: str | None = None) -> str:
        """Set the cookie; without ``token`` a fresh CSRF token is made (at login: defeats fixation)."""
        token = token or new_token()
        payload = {"csrf": token, **({"u": user} if user else {})}
        response.set_cookie(
            COOKIE, self._signer.dumps(payload), max_age=SESSION_MAX_AGE_S, path="/", httponly=True,
            samesite="lax", secure=self.secure or request.url.scheme == "https",
        )
        return token

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


@dataclass
class Throttle:
    """Failed logins per (user, address); after ``limit`` in ``window_s`` the pair is refused outright."""

    limit: int = 5
    window_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _fails: dict[tuple[str, str], deque[float]] = field(default_factory=dict)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def blocked(self, key: tuple[str, str]) -> bool:
        return len(self._recent(key)) >= self.limit

    def fail(self, key: tuple[str, str]) -> None:
        self._recent(key).append(self.clock())

    def reset(self, key: tuple[str, str]) -> None:
        self._fails.pop(key, None)


async def csrf_ok(request: Request) -> bool:
    """The token from the header or form field must equal the one in this request's own cookie."""
    expected = request.state.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return bool(expected and sent) and secrets.compare_digest(expected, sent)


Endpoint = Callable[[Request], Awaitable[Response]]


def action(*roles: str) -> Callable[[Endpoint], Endpoint]:
    """Guard a state-changing endpoint: CSRF first (403), then role (403). Login is checked by the
    middleware before any endpoint runs; this decorator is the single place POSTs are authorised."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @wraps(endpoint)
        async def guarded(request: Request) -> Response:
            if not await csrf_ok(request):
                return Response("CSRF 校验失败，请刷新页面后重试。", status_code=403, media_type="text/plain")
            user = request.state.user
            if roles and (user is None or user["role"] not in roles):
                return Response("无权执行此操作。", status_code=403, media_type="text/plain")
            return await endpoint(request)

        return guarded

    return wrap
