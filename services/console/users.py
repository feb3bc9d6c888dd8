"""The member console's officers: named users of one member each, with a role and an argon2id password hash.

They live on a compacted Kafka topic (``Topics.console_users``, key ``MEMBER/username``, a JSON value; a tombstone
deletes), so they are backed up with the hub's other state (`apihub backup`) and every console process converges on
the same table. `apihub users` writes it (operators: a member's first admin); the console's member admins manage
their own officers through the console, which writes the same records.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.errors import HubError

# Each role may do what the ones before it may, and more.
ROLES = ("analyst", "duty-officer", "member-admin")
ROLE_HELP = {
    "analyst": "works the hit queue: reads hits, records dispositions, browses lists and rules, backtests rules",
    "duty-officer": "an analyst who also loads the member's watchlists and rule files",
    "member-admin": "everything for the member: officers' accounts, oversight and exports too",
}
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the user name is unknown, so an attacker cannot tell unknown names by the answer's speed.
_DUMMY_HASH = _HASHER.hash("not a password of anyone's")


class UserError(HubError):
    """A user record that cannot be made as asked (bad name, role, password): the message says which and why."""


def check_username(name: str) -> str:
    if not USERNAME.fullmatch(name or ""):
        raise UserError("a user name is 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if not (MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD):
        raise UserError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(check_password(password))


@dataclass(frozen=True)
class User:
    member: str
    username: str
    role: str
    password_hash: str
    disabled: bool = False
    created_at: str = ""

    @property
    def key(self) -> str:
        return user_key(self.member, self.username)

    @property
    def stamp(self) -> str:
        """Changes with the password: a session started under another password is over."""
        import hashlib

        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]

    def may(self, role: str) -> bool:
        """Whether this user holds ``role`` or one above it."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> User:
        raw = json.loads(data)
        return cls(
            member=str(raw["member"]),
            username=check_username(str(raw["username"])),
            role=check_role(str(raw["role"])),
            password_hash=str(raw["password_hash"]),
            disabled=bool(raw.get("disabled", False)),
            created_at=str(raw.get("created_at", "")),
        )


def user_key(member: str, username: str) -> str:
    return f"{member.upper()}/{username}"


def new_user(member: str, username: str, role: str, password: str, now: datetime | None = None) -> User:
    at = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return User(member.upper(), check_username(username), check_role(role), hash_password(password), created_at=at)


def with_password(user: User, password: str) -> User:
    return replace(user, password_hash=hash_password(password))


class UserTable:
    """The users topic in memory: applied record by record (services.bus.TableReader), read by sign-in and pages."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._lock = threading.Lock()

    def apply(self, key: bytes | None, value: bytes | None, _record=None) -> None:
        if key is None:
            return
        name = key.decode(errors="replace")
        with self._lock:
            if value is None:
                self._users.pop(name, None)
                return
            try:
                user = User.from_json(value)
            except (ValueError, KeyError, TypeError, HubError):
                return  # a record this console cannot read signs no one in
            if user.key == name:
                self._users[name] = user

    def get(self, member: str, username: str) -> User | None:
        with self._lock:
            return self._users.get(user_key(member, username))

    def of_member(self, member: str) -> list[User]:
        with self._lock:
            return sorted((u for u in self._users.values() if u.member == member.upper()), key=lambda u: u.username)

    def all(self) -> list[User]:
        with self._lock:
            return sorted(self._users.values(), key=lambda u: (u.member, u.username))

    def members(self) -> set[str]:
        """Members with at least one enabled user: the ones whose hits the console reads."""
        with self._lock:
            return {u.member for u in self._users.values() if not u.disabled}

    def verify(self, member: str, username: str, password: str) -> User | None:
        """The user, if the name exists, is enabled and the password is theirs; None otherwise (always one hash
        verification, whichever it is)."""
        user = self.get(member, username)
        try:
            _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return None
        if user is None or user.disabled:
            return None
        return user


def read_users(settings, client_id: str) -> UserTable:
    """The users topic as it is now, read to its end (operators' commands; the console follows it instead)."""
    from services.bus import Topics, read_to_end

    table = UserTable()
    for record in read_to_end(settings, Topics(settings.topic_prefix).console_users, client_id):
        table.apply(record.key, record.value)
    return table


class UserWriter:
    """Writes user records to the users topic and waits for the broker's acknowledgement."""

    def __init__(self, settings, client_id: str = "apihub-console-users") -> None:
        from services.bus import Topics, make_producer

        self._topic = Topics(settings.topic_prefix).console_users
        self._producer = make_producer(settings, client_id)

    def put(self, user: User, timeout_s: float = 15.0) -> None:
        self._producer.send(self._topic, key=user.key.encode(), value=user.to_json()).get(timeout=timeout_s)

    def delete(self, member: str, username: str, timeout_s: float = 15.0) -> None:
        self._producer.send(self._topic, key=user_key(member, username).encode(), value=None).get(timeout=timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=5)
