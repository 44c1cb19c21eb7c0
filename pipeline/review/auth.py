"""Authentication for the review workstation: passwords, server-side sessions, CSRF, throttling.

The cookie is signed and carries a random session id plus the session's CSRF token; the session itself
(whose it is, until when) is a row in the workspace's ``review-sessions.db``, so logging out or
disabling a user ends it at once, whatever copies of the cookie exist. The user row is still re-read on
every request: disabling a user or changing a role takes effect on their next click. Every cookie
carries its own CSRF token, including the anonymous one given to the login form, so even the login POST
cannot be forged from another site.

Password hashes (Argon2, deliberately slow) are computed in a small thread pool, never on the event
loop, so a flood of bad logins costs CPU but cannot stall the pages of those already logged in; the
pool takes only so many waiting checks, and failed logins are throttled per account, per client address
and per pair. The client address is the peer's, unless the peer is a configured proxy
(``review.trusted_proxies``): only then is ``X-Forwarded-For`` read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ..store import SessionStore

ROLES = ("analyst", "assessor", "admin")
DECIDERS = frozenset({"analyst", "admin"})
EXPORTERS = frozenset({"assessor", "admin"})  # counts, charts and packs are for assessment staff
COOKIE = "vaudit_session"
SESSION_MAX_AGE_S = 12 * 3600  # one working day; a stolen cookie stops working by the next morning
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MIN_PASSWORD = 10
# the most used passwords (and the keyboard walks and office patterns they come from), lower case;
# a password equal to one of these, or to one with digits or punctuation around it, is refused
_COMMON = """
123456 1234567 12345678 123456789 1234567890 0123456789 12345678910 987654321 0987654321 9876543210
111111 1111111 11111111 111111111 1111111111 000000 00000000 0000000000 666666 66666666 888888 88888888
123123 123123123 123321 1234554321 112233 11223344 123qwe 1q2w3e 1q2w3e4r 1q2w3e4r5t 1qaz2wsx 1qaz2wsx3edc
qwerty qwertyuiop qwerty123 qwe123 asdfgh asdfghjkl zxcvbnm qazwsx abc123 abcd1234 a123456 a1234567
aa123456 password password1 password123 passw0rd p@ssw0rd p@ssword admin admin123 admin1234 administrator
root letmein welcome welcome1 iloveyou monkey dragon sunshine princess football baseball master
changeme default secret test test123 testtest guest user login woaini woaini1314 5201314 1314520
abcdefg abcdefgh abcdefghij aaaaaaaa zhangwei wangfang china beijing shanghai vaudit vaudit123
"""
COMMON_PASSWORDS = frozenset(_COMMON.split())

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


def password_problem(name: str, password: str) -> str | None:
    """Why ``password`` may not be used (one English line for the CLI), or None if it may."""
    if len(password) < MIN_PASSWORD:
        return f"password must be at least {MIN_PASSWORD} characters"
    core = password.lower().strip("0123456789!@#$%^&*._-+=?~ ")
    if password.lower() in COMMON_PASSWORDS or core in COMMON_PASSWORDS or len(set(password)) < 4:
        return "password is too common: choose a passphrase of several words"
    if len(name) >= 3 and name.lower() in password.lower():
        return "password must not contain the user name"
    return None


class PasswordChecker:
    """Verifies passwords in a bounded thread pool, off the event loop.

    Argon2 releases the GIL while hashing, so the loop keeps serving pages while checks run. At most
    ``workers`` hashes run at once (one per two CPU cores: hashing never takes the whole machine) and at
    most ``max_waiting`` more may queue; past that ``verify`` answers None at once ("busy, try later").
    """

    def __init__(self, workers: int | None = None, max_waiting: int = 64):
        self.workers = workers or max(1, (os.cpu_count() or 2) // 2)
        self.max_waiting = max_waiting
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vaudit-password")
        self._pending = 0  # only touched on the event loop

    async def verify(self, password_hash: str | None, password: str) -> bool | None:
        if self._pending >= self.workers + self.max_waiting:
            return None
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, verify_password, password_hash,
                                                                    password)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def load_secret(path: Path) -> str:
    """The cookie-signing key, kept in the workspace (0600) so restarts keep users logged in."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32))
    return path.read_text(encoding="ascii").strip()


@dataclass
class Sessions:
    """The session cookie and the server-side session it names; ``secure`` forces the Secure flag even
    over plain http. The cookie is signed, so its session id and CSRF token cannot be swapped."""

    secret: str
    store: SessionStore
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

    def user(self, data: dict) -> str | None:
        """Whose live session the cookie names; None once it was logged out, revoked or expired."""
        sid = data.get("sid")
        return self.store.user(sid) if isinstance(sid, str) else None

    def write(self, request: Request, response: Response, user: str | None, token: str | None = None) -> str:
        """Set the cookie. With ``user``: a new server-side session and a fresh CSRF token (at login:
        defeats fixation). Without: an anonymous cookie holding only ``token``, for the login form."""
        token = token or new_token()
        payload: dict[str, str] = {"csrf": token}
        if user:
            payload["sid"] = new_token()
            self.store.create(user, payload["sid"], SESSION_MAX_AGE_S)
        response.set_cookie(
            COOKIE, self._signer.dumps(payload), max_age=SESSION_MAX_AGE_S, path="/", httponly=True,
            samesite="lax", secure=self.secure or getattr(request.state, "https", request.url.scheme == "https"),
        )
        return token

    def end(self, request: Request, response: Response) -> None:
        """Log out: the server-side session is deleted, so every copy of the cookie stops working."""
        sid = self.read(request).get("sid")
        if isinstance(sid, str):
            self.store.revoke(sid)
        self.clear(response)

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


Key = tuple[str, ...]


@dataclass
class Throttle:
    """Failed logins over ``window_s``, counted per (account, client) pair, per account and per client.

    Past any limit the login is refused before the password is checked. An attempt counts when it
    starts, so a burst of concurrent attempts cannot slip past a limit while their hashes run; a right
    password takes its attempt back (and clears the pair). The pair limit is what a user who mistypes
    meets; the account limit stops guessing one password from many addresses, the client limit guessing
    many accounts from one. The table is pruned, so sprayed names cannot grow it without bound.
    """

    limit: int = 5
    account_limit: int = 20
    client_limit: int = 30
    window_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 50_000
    _fails: dict[Key, deque[float]] = field(default_factory=dict)

    def _keys(self, name: str, client: str) -> list[tuple[Key, int]]:
        return [(("pair", name, client), self.limit), (("account", name), self.account_limit),
                (("client", client), self.client_limit)]

    def _recent(self, key: Key) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        cutoff = self.clock() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def blocked(self, name: str, client: str) -> bool:
        return any(len(self._recent(key)) >= limit for key, limit in self._keys(name, client))

    def attempt(self, name: str, client: str) -> bool:
        """Count a login attempt; False (and nothing counted) when a limit is already reached."""
        if self.blocked(name, client):
            return False
        if len(self._fails) >= self.max_keys:
            self._prune()
        now = self.clock()
        for key, _ in self._keys(name, client):
            self._fails.setdefault(key, deque()).append(now)
        return True

    def succeeded(self, name: str, client: str) -> None:
        """The password was right: this attempt was no failure."""
        pair, *others = (key for key, _ in self._keys(name, client))
        self._fails.pop(pair, None)
        for key in others:
            q = self._fails.get(key)
            if q:
                q.pop()

    def _prune(self) -> None:
        for key in list(self._fails):
            self._recent(key)
        if len(self._fails) >= self.max_keys:  # still full inside one window: forget the stalest half
            stale = sorted(self._fails, key=lambda k: self._fails[k][-1])[: len(self._fails) // 2]
            for key in stale:
                del self._fails[key]


def parse_networks(items: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(i, strict=False) for i in items)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(request: Request, proxies: tuple) -> tuple[str, bool]:
    """(the client's address, whether the request reached the proxy over https).

    The connecting peer is the client unless it is one of ``proxies``; then ``X-Forwarded-For`` is read
    from the right, skipping further trusted proxies, and the first other address is the client. Headers
    from anyone else are ignored, so a client cannot pick its own address (and reset its throttle)."""
    peer = request.client.host if request.client else ""
    https = request.url.scheme == "https"

    def trusted(addr: str) -> bool:
        ip = _ip(addr)
        return ip is not None and any(ip in net for net in proxies)

    if not proxies or not trusted(peer):
        return peer, https
    hops = [h.strip() for value in request.headers.getlist("x-forwarded-for") for h in value.split(",")]
    client = peer
    for hop in reversed([h for h in hops if h]):
        if _ip(hop) is None:
            break  # garbage in the header: the last address we can vouch for is the client
        client = str(_ip(hop))
        if not trusted(hop):
            break
    proto = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    return client, https or proto == "https"


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
