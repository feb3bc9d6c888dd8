"""Console sign-in sessions, held on the server: the browser's cookie carries only a random session id.

A session names the officer (member, user name), their role as it was at sign-in (the role is looked up again on
every request, so a disabled or demoted officer loses access at once), the form token that every POST must carry
(CSRF), and the language chosen. It ends after ``idle`` without a request, ``max_age`` after sign-in, or at sign-out.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "apihub_console"
# The most sessions the console keeps; the oldest go first (a flood of sign-ins cannot exhaust memory).
MAX_SESSIONS = 10_000


@dataclass
class Session:
    id: str
    member: str
    username: str
    csrf: str
    language: str
    # The officer's User.stamp at sign-in: a new password ends the session.
    stamp: str
    started: float
    seen: float = field(default=0.0)


class Sessions:
    def __init__(self, idle_s: float, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_s, self._max_age_s, self._clock = idle_s, max_age_s, clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, member: str, username: str, language: str, stamp: str = "") -> Session:
        now = self._clock()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session = Session(token, member, username, csrf, language, stamp, now, now)
        with self._lock:
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of this id (its idle clock restarted), or None."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.seen > self._idle_s or now - session.started > self._max_age_s:
                del self._sessions[session_id]
                return None
            session.seen = now
            return session

    def peek(self, session_id: str | None) -> Session | None:
        """The live session of this id, without counting as a request (its idle clock is not restarted): for a
        live stream that stays open for hours, which must end with the session but not keep it alive."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or now - session.seen > self._idle_s or now - session.started > self._max_age_s:
                return None
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def end_user(self, member: str, username: str) -> None:
        """Sign an officer out of this console process at once (account disabled); other processes see the
        change on the users topic."""
        with self._lock:
            for sid in [s.id for s in self._sessions.values() if (s.member, s.username) == (member, username)]:
                del self._sessions[sid]

    @property
    def max_age_s(self) -> float:
        return self._max_age_s


class SignInLimiter:
    """Failed sign-ins are limited: at most ``per_minute`` per user name and ``per_address_factor`` times that per
    client address in any 60 s, so password guessing is slow, while one officer's mistyping never locks out another
    (nor a colleague behind the same office address)."""

    MAX_KEYS = 50_000

    def __init__(self, per_minute: int, per_address_factor: int = 5, clock: Callable[[], float] = time.monotonic):
        self._per_minute, self._factor, self._clock = per_minute, per_address_factor, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _window(self, key: str, now: float) -> deque[float]:
        window = self._failures.get(key)
        if window is None:
            if len(self._failures) >= self.MAX_KEYS:
                self._failures.pop(next(iter(self._failures)))
            window = self._failures[key] = deque()
        while window and now - window[0] > 60.0:
            window.popleft()
        return window

    def allow(self, user: str, address: str) -> bool:
        """Whether a sign-in of this user from this address may be tried now."""
        now = self._clock()
        with self._lock:
            return (
                len(self._window(f"user:{user}", now)) < self._per_minute
                and len(self._window(f"addr:{address}", now)) < self._per_minute * self._factor
            )

    def failed(self, user: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            self._window(f"user:{user}", now).append(now)
            self._window(f"addr:{address}", now).append(now)
