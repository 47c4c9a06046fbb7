"""Server credentials on a real SQLite store: roles, argon2 password hashes, API tokens
(hashed, capped roles, expiry, revocation, last use), sessions (expiry, ending), the failed-
login rate limit, and migration 0007 on an existing store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select

from gristmill.errors import AuthError, ConfigError, LoginThrottledError, NotFoundError, StoreError
from gristmill.project import Project
from gristmill.server.credentials import (
    LoginLimits,
    Role,
    authenticate_password,
    authenticate_session,
    authenticate_token,
    create_token,
    create_user,
    end_session,
    hash_password,
    parse_duration,
    start_session,
    verify_password,
)
from gristmill.store import MetadataStore, schema
from gristmill.store.migrations import upgrade
from gristmill.store.sql import SQLStore

PASSWORD = "correct horse battery"


@pytest.fixture
def store(project: Project) -> MetadataStore:
    return project.store()


def test_roles_are_ordered_and_parsed() -> None:
    assert Role.VIEWER < Role.EDITOR < Role.ADMIN
    assert max(Role) is Role.ADMIN and min(Role) is Role.VIEWER
    assert Role.parse(" Editor ") is Role.EDITOR
    assert Role.EDITOR == "editor"  # a str enum: JSON and the store keep the plain name
    with pytest.raises(ConfigError, match="did you mean 'admin'"):
        Role.parse("admn")


def test_passwords_are_argon2id_hashes_with_their_own_salt() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("$argon2id$") and first != second
    assert PASSWORD not in first
    assert verify_password(first, PASSWORD) and verify_password(second, PASSWORD)
    assert not verify_password(first, PASSWORD + "!")
    assert not verify_password("not a hash", PASSWORD)


def test_users_keep_only_a_hash_and_refuse_weak_or_duplicate_input(store: MetadataStore) -> None:
    user = create_user(store, "ann", role="admin", password=PASSWORD)
    assert user.role == "admin" and user.password_hash.startswith("$argon2id$")
    with pytest.raises(StoreError, match="exists already"):
        create_user(store, "ann", role="viewer", password=PASSWORD)
    with pytest.raises(ConfigError, match="too short"):
        create_user(store, "bob", role="viewer", password="short")
    with pytest.raises(ConfigError, match="not valid"):
        create_user(store, "../x", role="viewer", password=PASSWORD)
    with pytest.raises(NotFoundError, match="did you mean 'ann'"):
        store.get_user("an")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("90m", 5400),
        ("45s", 45),
        ("2w", 1209600),
        ("1", 86400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0d", "-1d", "soon", "3y"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ConfigError, match="such as 30d"):
        parse_duration(text)


def test_a_token_is_random_shown_once_and_stored_as_its_sha256(store: MetadataStore) -> None:
    create_user(store, "ann", role="editor", password=PASSWORD)
    token, record = create_token(store, "ann", name="ci")
    other, _ = create_token(store, "ann", name="laptop")
    assert token.startswith("gm_") and len(token) > 40 and token != other
    assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert record.role == "editor"  # the user's role by default
    engine = create_engine(store.url)
    with engine.connect() as conn:
        stored = conn.execute(select(schema.api_tokens)).all()
    engine.dispose()
    assert all(token not in str(tuple(row)) for row in stored)
    principal = authenticate_token(store, token)
    assert (principal.user, principal.role, principal.via) == ("ann", Role.EDITOR, "token")
    with pytest.raises(StoreError, match="has a token named 'ci' already"):
        create_token(store, "ann", name="ci")
    with pytest.raises(AuthError, match="not valid"):
        authenticate_token(store, token + "x")


def test_a_token_role_is_capped_by_its_user_and_its_creator(store: MetadataStore) -> None:
    create_user(store, "ed", role="editor", password=PASSWORD)
    with pytest.raises(AuthError, match="the most it may have is editor"):
        create_token(store, "ed", name="x", role="admin")
    with pytest.raises(AuthError, match="the most it may have is viewer"):
        create_token(store, "ed", name="x", role="editor", limit=Role.VIEWER)
    token, record = create_token(store, "ed", name="read", role="viewer")
    assert authenticate_token(store, token).role is Role.VIEWER
    # a user demoted later: their editor token acts as a viewer at once
    editor_token, _ = create_token(store, "ed", name="write")
    store.update_user("ed", role="viewer", at=record.created_at + 1)
    assert authenticate_token(store, editor_token).role is Role.VIEWER


def test_expired_revoked_and_orphaned_tokens_are_refused(store: MetadataStore) -> None:
    create_user(store, "ann", role="admin", password=PASSWORD)
    token, record = create_token(store, "ann", name="short", expires_in=60)
    assert record.expires_at is not None
    authenticate_token(store, token, now=record.created_at + 59)
    with pytest.raises(AuthError, match="has expired"):
        authenticate_token(store, token, now=record.created_at + 61)

    kept, kept_record = create_token(store, "ann", name="kept")
    revoked = store.revoke_api_token(kept_record.id[:10], at=kept_record.created_at + 5)
    assert revoked.revoked_at == kept_record.created_at + 5
    with pytest.raises(AuthError, match="was revoked"):
        authenticate_token(store, kept)
    assert [t.name for t in store.list_api_tokens(user="ann")] == ["short"]
    assert {t.name for t in store.list_api_tokens(include_revoked=True)} == {"short", "kept"}
    # a revoked token's name may be used again
    create_token(store, "ann", name="kept")

    create_user(store, "bob", role="viewer", password=PASSWORD)
    bobs, _ = create_token(store, "bob", name="ci")
    store.update_user("bob", disabled=True, at=record.created_at + 1)
    with pytest.raises(AuthError, match="disabled"):
        authenticate_token(store, bobs)
    store.delete_user("bob")
    assert store.list_api_tokens(user="bob", include_revoked=True) == []
    with pytest.raises(AuthError, match="not valid"):
        authenticate_token(store, bobs)


def test_last_use_is_recorded_at_most_once_a_minute(store: MetadataStore) -> None:
    create_user(store, "ann", role="admin", password=PASSWORD)
    token, record = create_token(store, "ann", name="ci")
    t0 = record.created_at
    authenticate_token(store, token, now=t0 + 1)
    assert store.get_api_token(record.id).last_used_at == t0 + 1
    authenticate_token(store, token, now=t0 + 30)
    assert store.get_api_token(record.id).last_used_at == t0 + 1
    authenticate_token(store, token, now=t0 + 62)
    assert store.get_api_token(record.id).last_used_at == t0 + 62


def test_sessions_expire_end_and_end_with_a_new_password(store: MetadataStore) -> None:
    user = create_user(store, "ann", role="editor", password=PASSWORD)
    cookie, session = start_session(store, user, lifetime=3600, address="10.0.0.1")
    assert session.session_hash == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in session.session_hash and len(session.csrf_token) >= 32
    principal = authenticate_session(store, cookie, now=session.created_at + 10)
    assert (principal.user, principal.role, principal.via) == ("ann", Role.EDITOR, "session")
    assert principal.csrf_token == session.csrf_token
    authenticate_session(store, cookie, now=session.created_at + 70)
    (seen,) = store.list_sessions(user="ann")
    assert seen.last_seen_at == session.created_at + 70 and seen.address == "10.0.0.1"
    with pytest.raises(AuthError, match="expired"):
        authenticate_session(store, cookie, now=session.created_at + 3601)
    assert store.list_sessions(user="ann") == []  # the expired session was deleted

    cookie, _ = start_session(store, user, lifetime=3600)
    end_session(store, cookie)
    with pytest.raises(AuthError, match="log in again"):
        authenticate_session(store, cookie)

    cookie, session = start_session(store, user, lifetime=3600)
    store.update_user("ann", password_hash=hash_password("another password"), at=session.created_at)
    with pytest.raises(AuthError):
        authenticate_session(store, cookie)


def test_logins_check_the_password(store: MetadataStore) -> None:
    create_user(store, "ann", role="viewer", password=PASSWORD)
    assert authenticate_password(store, "ann", PASSWORD).name == "ann"
    with pytest.raises(AuthError, match="wrong user name or password"):
        authenticate_password(store, "ann", "wrong password")
    with pytest.raises(AuthError, match="wrong user name or password"):
        authenticate_password(store, "nobody", PASSWORD)
    store.update_user("ann", disabled=True, at=0)
    with pytest.raises(AuthError):
        authenticate_password(store, "ann", PASSWORD)


def test_failed_logins_are_rate_limited_per_user(store: MetadataStore) -> None:
    create_user(store, "ann", role="viewer", password=PASSWORD)
    limits = LoginLimits(max_failures=5, window=900, max_delay=900)
    t = 1_000_000.0
    for i in range(5):
        with pytest.raises(AuthError) as refused:
            authenticate_password(
                store, "ann", f"guess {i}", address=f"10.0.0.{i}", limits=limits, now=t + i
            )
        assert not isinstance(refused.value, LoginThrottledError)
    # the sixth attempt is refused before the password is checked, even the right one
    with pytest.raises(
        LoginThrottledError, match="too many failed logins for this user"
    ) as throttled:
        authenticate_password(
            store, "ann", PASSWORD, address="10.0.9.9", limits=limits, now=t + 4.5
        )
    assert 0 < throttled.value.retry_after <= 1
    # after the wait, the right password works and clears the count
    assert authenticate_password(store, "ann", PASSWORD, limits=limits, now=t + 6).name == "ann"
    assert store.login_failures("user:ann") == (0, None)
    # the wait doubles with each further failure, up to max_delay
    assert [limits.delay(n) for n in (4, 5, 6, 7, 30)] == [0.0, 1.0, 2.0, 4.0, 900.0]


def test_failed_logins_are_rate_limited_per_address(store: MetadataStore) -> None:
    for name in ("ann", "bob"):
        create_user(store, name, role="viewer", password=PASSWORD)
    limits = LoginLimits(max_failures=3, window=900, max_delay=60)
    t = 2_000_000.0
    for i, name in enumerate(["x1", "x2", "ann"]):  # unknown names count too
        with pytest.raises(AuthError):
            authenticate_password(
                store, name, "nope", address="203.0.113.7", limits=limits, now=t + i
            )
    with pytest.raises(LoginThrottledError, match="this address"):
        authenticate_password(
            store, "bob", PASSWORD, address="203.0.113.7", limits=limits, now=t + 2.5
        )
    # another address is not held back, and failures outside the window start again
    assert authenticate_password(
        store, "bob", PASSWORD, address="198.51.100.1", limits=limits, now=t + 3
    )
    assert authenticate_password(
        store, "bob", PASSWORD, address="203.0.113.7", limits=limits, now=t + 1000
    )


def test_an_existing_store_upgrades_to_the_user_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        upgrade(conn, "0006")
    assert "users" not in inspect(engine).get_table_names()
    engine.dispose()
    store = SQLStore(url)
    try:
        tables = set(inspect(store.engine).get_table_names())
        assert {"users", "api_tokens", "sessions", "login_failures"} <= tables
        create_user(store, "ann", role="admin", password=PASSWORD)
        token, _ = create_token(store, "ann", name="ci")
        assert authenticate_token(store, token).user == "ann"
    finally:
        store.close()
