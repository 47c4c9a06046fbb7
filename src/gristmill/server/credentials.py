"""Users' credentials, without FastAPI: roles, argon2 password hashes, API tokens (random,
shown once, kept as SHA-256), dashboard sessions (a random cookie value kept as SHA-256, with
a CSRF value and an expiry) and the rate limit on failed logins. The CLI (``gristmill user``,
``gristmill token``) and the server's auth layer (``auth.py``) both use these; the store only
ever sees hashes. argon2 (the ``server`` extra) is imported on first use."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from gristmill.errors import (
    AuthError,
    ConfigError,
    LoginThrottledError,
    MissingIntegrationError,
    NotFoundError,
    did_you_mean,
)
from gristmill.store.records import ApiTokenRecord, SessionRecord, UserRecord

if TYPE_CHECKING:
    from gristmill.store import UserDirectory

__all__ = [
    "TOKEN_PREFIX",
    "LoginLimits",
    "Principal",
    "Role",
    "authenticate_password",
    "authenticate_session",
    "authenticate_token",
    "check_password",
    "check_user_name",
    "create_token",
    "create_user",
    "end_session",
    "hash_password",
    "hash_secret",
    "parse_duration",
    "start_session",
    "verify_password",
]

# Every token starts with this, so a leaked one is easy to recognise (and to grep for).
TOKEN_PREFIX = "gm_"
MIN_PASSWORD_LENGTH = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
_RANKS = {"viewer": 0, "editor": 1, "admin": 2}


class Role(str, Enum):
    """What a user (or a token) may do: ``viewer`` reads, ``editor`` also runs pipelines,
    edits stacks and promotes models, ``admin`` also manages users and everyone's tokens.
    Ordered: ``Role.VIEWER < Role.EDITOR < Role.ADMIN``."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self.value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: str | Role, where: str = "role") -> Role:
        """The role named ``value``; ConfigError (with the valid names) otherwise."""
        if isinstance(value, Role):
            return value
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ConfigError(
                f"{where} '{value}' is not a role{did_you_mean(value, _RANKS)}; "
                "roles are viewer (read only), editor (run, edit, promote) and admin (users)"
            ) from None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, the role in effect (a token's role, capped by the user's
    current role) and how they authenticated. For a dashboard session, ``csrf_token`` is the
    value its pages must send back on every unsafe request (``X-CSRF-Token`` header or a
    ``csrf_token`` form field)."""

    user: str
    role: Role
    via: Literal["token", "session"]
    csrf_token: str | None = None
    token_id: str | None = None
    session_id: str | None = None

    def at_least(self, role: Role) -> bool:
        return self.role >= role


@dataclass(frozen=True)
class LoginLimits:
    """Failed logins allowed in a row (per user name and per client address) before the
    next attempt is refused; the wait then doubles with each further failure (from 1 s) up
    to ``max_delay``. Failures further apart than ``window`` start the count again."""

    max_failures: int = 5
    window: float = 15 * 60
    max_delay: float = 15 * 60

    def delay(self, failures: int) -> float:
        """Seconds to wait after the latest of ``failures`` failures in a row."""
        if failures < self.max_failures:
            return 0.0
        return float(min(self.max_delay, 2 ** (failures - self.max_failures)))


# -- hashing ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _hasher() -> Any:
    try:
        from argon2 import PasswordHasher
    except ImportError as exc:
        raise MissingIntegrationError("argon2-cffi", "server", "hashing passwords") from exc
    # argon2id with the library's defaults (RFC 9106's low-memory profile: 64 MiB, t=3).
    return PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash of a password, in argon2's encoded form (salt and cost included)."""
    return str(_hasher().hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_secret(value: str) -> str:
    """SHA-256 (hex) of a token or session cookie value. They are 256-bit random strings, so
    a fast hash cannot be brute-forced and lookups stay one indexed query."""
    return hashlib.sha256(value.encode()).hexdigest()


# A hash of a random password, verified when the user does not exist, so an unknown name
# takes as long to refuse as a wrong password (no user enumeration by timing).
@functools.lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


# -- checks -----------------------------------------------------------------------------------


def check_user_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"user name '{name}' is not valid: use 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(
            f"the password is too short ({len(password)} characters): use at least "
            f"{MIN_PASSWORD_LENGTH}, ideally a passphrase"
        )
    return password


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 86400.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_duration(text: str, where: str = "--expires") -> float:
    """Seconds in ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (a bare number is days)."""
    found = _DURATION.match(text)
    if not found or float(found.group(1)) <= 0:
        raise ConfigError(
            f"{where} '{text}' is not a duration: write a positive number with a unit, "
            "such as 30d, 12h, 90m, 45s or 2w (a bare number is days)"
        )
    return float(found.group(1)) * _UNITS[found.group(2)]


# -- users and tokens -------------------------------------------------------------------------


def create_user(store: UserDirectory, name: str, *, role: Role | str, password: str) -> UserRecord:
    """A new user with an argon2 hash of ``password``; StoreError if the name is taken."""
    check_user_name(name)
    check_password(password)
    return store.create_user(
        name, role=Role.parse(role).value, password_hash=hash_password(password), at=time.time()
    )


def create_token(
    store: UserDirectory,
    user: str,
    *,
    name: str,
    role: Role | str | None = None,
    expires_in: float | None = None,
    limit: Role | None = None,
) -> tuple[str, ApiTokenRecord]:
    """A new API token for ``user``: (the token, shown only now; its record). Its role is
    ``role`` (default: the user's), never above the user's role nor above ``limit`` (the
    role of whoever creates it); AuthError otherwise."""
    owner = store.get_user(user)
    owner_role = Role.parse(owner.role)
    wanted = Role.parse(role, "token role") if role is not None else owner_role
    cap = min(owner_role, limit) if limit is not None else owner_role
    if wanted > cap:
        raise AuthError(
            f"a token for '{user}' cannot have the {wanted} role: the most it may have is "
            f"{cap} (a token's role is at most its user's and its creator's); ask for "
            f"--role {cap} or lower"
        )
    if not name.strip() or len(name) > 255:
        raise ConfigError("a token needs a name (1-255 characters), such as 'ci' or 'laptop'")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = time.time()
    record = ApiTokenRecord(
        id=uuid.uuid4().hex,
        user=user,
        name=name.strip(),
        role=wanted.value,
        token_hash=hash_secret(token),
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
    )
    store.create_api_token(record)
    return token, record


def _refused(reason: str) -> AuthError:
    return AuthError(reason)


def authenticate_token(
    store: UserDirectory, token: str, *, touch_interval: float = 60.0, now: float | None = None
) -> Principal:
    """The principal an API token stands for; AuthError saying why it is refused (unknown,
    revoked, expired, or its user disabled or deleted)."""
    now = time.time() if now is None else now
    record = store.find_api_token(hash_secret(token.strip()))
    fix = "create a new one with `gristmill token create --name NAME` (or in the dashboard)"
    if record is None:
        raise _refused(f"the API token is not valid; {fix}")
    if record.revoked_at is not None:
        raise _refused(f"the API token '{record.name}' of '{record.user}' was revoked; {fix}")
    if record.expires_at is not None and record.expires_at <= now:
        raise _refused(f"the API token '{record.name}' of '{record.user}' has expired; {fix}")
    user = _active_user(store, record.user)
    role = min(Role.parse(record.role), Role.parse(user.role))
    if record.last_used_at is None or now - record.last_used_at >= touch_interval:
        store.touch_api_token(record.id, now)
    return Principal(user=user.name, role=role, via="token", token_id=record.id)


def _active_user(store: UserDirectory, name: str) -> UserRecord:
    try:
        user = store.get_user(name)
    except NotFoundError:
        raise _refused(f"user '{name}' no longer exists; ask an admin for an account") from None
    if user.disabled:
        raise _refused(f"user '{name}' is disabled; ask an admin to enable the account")
    return user


# -- logins and sessions ----------------------------------------------------------------------


def _throttled(store: UserDirectory, keys: list[str], limits: LoginLimits, now: float) -> None:
    for key in keys:
        failures, last = store.login_failures(key)
        if last is None or now - last > limits.window:
            continue
        wait = limits.delay(failures) - (now - last)
        if wait > 0:
            who = "this user" if key.startswith("user:") else "this address"
            raise LoginThrottledError(
                f"too many failed logins for {who} ({failures} in a row): wait "
                f"{int(wait) + 1} s before trying again (each further failure doubles the wait)",
                retry_after=wait,
            )


def authenticate_password(
    store: UserDirectory,
    name: str,
    password: str,
    *,
    address: str | None = None,
    limits: LoginLimits | None = None,
    now: float | None = None,
) -> UserRecord:
    """The user whose name and password these are. Refused with LoginThrottledError (before
    the password is even checked) after too many failures in a row for this user name or
    this client address, else AuthError for a wrong name or password, which counts as a
    failure for both. A success clears the user's and the address's count."""
    limits = limits or LoginLimits()
    now = time.time() if now is None else now
    keys = [f"user:{name}"] + ([f"address:{address}"] if address else [])
    _throttled(store, keys, limits, now)
    try:
        user: UserRecord | None = store.get_user(name)
    except NotFoundError:
        user = None
    if user is None:
        verify_password(_decoy_hash(), password)
        ok = False
    else:
        ok = verify_password(user.password_hash, password) and not user.disabled
    if not ok or user is None:
        for key in keys:
            store.record_login_failure(key, now, window=limits.window)
        raise AuthError("wrong user name or password (or the account is disabled)")
    for key in keys:
        store.clear_login_failures(key)
    if _hasher().check_needs_rehash(user.password_hash):
        store.update_user(user.name, password_hash=hash_password(password), at=now)
    return user


def start_session(
    store: UserDirectory,
    user: UserRecord | str,
    *,
    lifetime: float,
    address: str | None = None,
    now: float | None = None,
) -> tuple[str, SessionRecord]:
    """A new dashboard session: (the cookie value, given to the browser only; its record).
    Expired sessions of every user are deleted on the way."""
    now = time.time() if now is None else now
    name = user.name if isinstance(user, UserRecord) else user
    cookie = secrets.token_urlsafe(32)
    record = SessionRecord(
        id=uuid.uuid4().hex,
        user=name,
        session_hash=hash_secret(cookie),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + lifetime,
        last_seen_at=now,
        address=address,
    )
    store.end_sessions(expired_before=now)
    store.create_session(record)
    return cookie, record


def authenticate_session(
    store: UserDirectory, cookie: str, *, touch_interval: float = 60.0, now: float | None = None
) -> Principal:
    """The principal a session cookie stands for; AuthError when it is unknown, ended or
    expired (log in again) or its user was disabled or deleted. Its last-seen time is
    written at most once per ``touch_interval``."""
    now = time.time() if now is None else now
    record = store.find_session(hash_secret(cookie))
    if record is None or record.expires_at <= now:
        if record is not None:
            store.end_session(record.id)
        raise _refused("the session has expired or was ended; log in again at /login")
    user = _active_user(store, record.user)
    if now - record.last_seen_at >= touch_interval:
        store.touch_session(record.id, now)
    return Principal(
        user=user.name,
        role=Role.parse(user.role),
        via="session",
        csrf_token=record.csrf_token,
        session_id=record.id,
    )


def end_session(store: UserDirectory, cookie: str) -> None:
    """Log out: delete the session this cookie value stands for (nothing if there is none)."""
    record = store.find_session(hash_secret(cookie))
    if record is not None:
        store.end_session(record.id)
