"""Who may use the studio page: the token, sessions and CSRF.

- **Loopback** (``127.0.0.1``, ``::1``, ``localhost``: the default ``web.listen``): only
  programs on the Jetson itself can connect, so no token is asked.
- **Anything else** (``0.0.0.0`` included): every client needs the token. It is made once
  (``miragen web token``, run by the installer), kept in a file only the service user can read
  (mode 0600), and exchanged on the login page for a session cookie. Scripts may send it as
  ``Authorization: Bearer TOKEN`` instead.
- **CSRF**: every state-changing request is a POST and carries the session's CSRF token in the
  ``X-CSRF-Token`` header (the page reads it from ``GET /api/session``). The session cookie is
  ``HttpOnly`` and ``SameSite=Strict``; a POST whose ``Origin`` names another site is refused
  before anything else. A request with a valid bearer token needs no CSRF token (a browser never
  adds that header by itself).

Sessions live in the web process's memory (bounded, 12 hours): a restart asks for the token
again.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MiragenError

SESSION_COOKIE = "miragen_session"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 12 * 3600
MAX_SESSIONS = 256
TOKEN_BYTES = 24
LOGIN_TRIES = 10  # failed logins per client address per LOGIN_WINDOW_S
LOGIN_WINDOW_S = 60.0


class WebAuthError(MiragenError):
    """The token file cannot be made or read."""


def is_loopback(host: str) -> bool:
    """Does listening on ``host`` reach this machine only?"""
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8808"`` → ("127.0.0.1", 8808); ``"[::1]:8808"`` → ("::1", 8808)."""
    host, _, port = listen.strip().rpartition(":")
    return host.strip("[]"), int(port)


def token_path(cfg: dict) -> Path:
    """Where the token lives: ``web.token_file``, else ``web-token`` in the state folder."""
    return Path(cfg["web"]["token_file"] or Path(cfg["paths"]["state"]) / "web-token")


def read_token(path: Path) -> str | None:
    """The token in ``path`` (None when there is none yet); refuses a file others can read."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WebAuthError(f"{path}: cannot read the web token ({exc.strerror or exc})") from None
    if st.st_mode & 0o077:
        raise WebAuthError(
            f"{path}: the web token is readable by other users (mode {st.st_mode & 0o777:o}); "
            f"run: chmod 600 {path}"
        )
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise WebAuthError(f"{path}: cannot read the web token ({exc})") from None
    if len(token) < 16:
        raise WebAuthError(f"{path}: not a web token (too short); delete it and run again")
    return token


def ensure_token(path: Path) -> tuple[str, bool]:
    """The token, made (mode 0600, created exclusively) when there is none; (token, made)."""
    token = read_token(path)
    if token is not None:
        return token, False
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # made by someone else meanwhile: theirs counts
        return read_token(path) or token, False
    except OSError as exc:
        raise WebAuthError(f"{path}: cannot write the web token ({exc.strerror or exc})") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
    return token, True


@dataclass
class Session:
    sid: str
    csrf: str
    authed: bool
    created: float = field(default_factory=time.monotonic)


class Sessions:
    """The web process's sessions (in memory, bounded, oldest dropped first)."""

    def __init__(self, token: str | None, *, ttl_s: float = SESSION_TTL_S):
        self.token = token  # None: loopback, no token asked
        self.ttl_s = ttl_s
        self._by_id: OrderedDict[str, Session] = OrderedDict()
        self._fails: dict[str, list[float]] = {}

    @property
    def open_access(self) -> bool:
        return self.token is None

    def get(self, sid: str | None) -> Session | None:
        s = self._by_id.get(sid or "")
        if s is None:
            return None
        if time.monotonic() - s.created > self.ttl_s:
            del self._by_id[s.sid]
            return None
        return s

    def new(self) -> Session:
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.open_access)
        self._by_id[s.sid] = s
        while len(self._by_id) > MAX_SESSIONS:
            self._by_id.popitem(last=False)
        return s

    def bearer_ok(self, header: str | None) -> bool:
        """A valid ``Authorization: Bearer TOKEN`` header (always False on loopback, where
        nothing is asked)."""
        if self.token is None or not header:
            return False
        kind, _, value = header.partition(" ")
        return kind.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.token.encode()
        )

    def login(self, session: Session, token: str, client: str) -> str | None:
        """Check ``token`` for ``session``; returns the reason when refused."""
        now = time.monotonic()
        recent = [t for t in self._fails.get(client, []) if now - t < LOGIN_WINDOW_S]
        if len(recent) >= LOGIN_TRIES:
            return f"too many wrong tokens from {client}; wait a minute"
        if self.token is not None and not hmac.compare_digest(
            token.strip().encode(), self.token.encode()
        ):
            self._fails[client] = recent + [now]
            if len(self._fails) > 1024:
                self._fails.clear()
            return "wrong token (print it on the Jetson with: miragen web token)"
        session.authed = True
        return None

    def csrf_ok(self, session: Session | None, header: str | None) -> bool:
        return (
            session is not None
            and bool(header)
            and hmac.compare_digest(header.encode(), session.csrf.encode())
        )
