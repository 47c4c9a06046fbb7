"""Server users, API tokens, dashboard sessions and failed-login counters on the SQL store
(``UserDirectory``). Only hashes are stored: the server hashes passwords (argon2) and tokens
and session cookies (SHA-256) before they get here."""

from __future__ import annotations

from typing import Any

from gristmill.errors import NotFoundError, StoreError, did_you_mean
from gristmill.store.base import UserDirectory
from gristmill.store.records import ApiTokenRecord, SessionRecord, UserRecord
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import SQLEngine


def _user(row: Any) -> UserRecord:
    return UserRecord(
        row.name, row.role, row.password_hash, row.created_at, row.updated_at, bool(row.disabled)
    )


def _token(row: Any) -> ApiTokenRecord:
    return ApiTokenRecord(
        id=row.id,
        user=row.user_name,
        name=row.name,
        role=row.role,
        token_hash=row.token_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _session(row: Any) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user=row.user_name,
        session_hash=row.session_hash,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_seen_at=row.last_seen_at,
        address=row.address,
    )


class SQLUserDirectory(SQLEngine, UserDirectory):
    # -- users --------------------------------------------------------------------------------

    def create_user(self, name: str, *, role: str, password_hash: str, at: float) -> UserRecord:
        u = s.users

        def work(conn: sa.Connection) -> None:
            if conn.execute(sa.select(u.c.name).where(u.c.name == name)).first() is not None:
                raise StoreError(
                    f"a user named '{name}' exists already; change it with "
                    f"`gristmill user set-role {name} ROLE` or delete it first"
                )
            conn.execute(
                sa.insert(u),
                {
                    "name": name,
                    "role": role,
                    "password_hash": password_hash,
                    "disabled": False,
                    "created_at": at,
                    "updated_at": at,
                },
            )

        self._retrying(work, f"creating user '{name}'", retry_conflicts=False)
        return self.get_user(name)

    def get_user(self, name: str) -> UserRecord:
        u = s.users
        with self._reading(f"reading user '{name}'") as conn:
            row = conn.execute(sa.select(u).where(u.c.name == name)).first()
            if row is None:
                names = conn.execute(sa.select(u.c.name)).scalars().all()
                raise NotFoundError(
                    f"no user named '{name}'{did_you_mean(name, names)}; list them with "
                    "`gristmill user list`, create one with "
                    f"`gristmill user create {name} --role viewer`"
                )
        return _user(row)

    def list_users(self) -> list[UserRecord]:
        with self._reading("listing users") as conn:
            return [_user(r) for r in conn.execute(sa.select(s.users).order_by(s.users.c.name))]

    def update_user(
        self,
        name: str,
        *,
        role: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
        at: float,
    ) -> UserRecord:
        self.get_user(name)
        values: dict[str, Any] = {"updated_at": at}
        if role is not None:
            values["role"] = role
        if password_hash is not None:
            values["password_hash"] = password_hash
        if disabled is not None:
            values["disabled"] = disabled

        def work(conn: sa.Connection) -> None:
            conn.execute(sa.update(s.users).where(s.users.c.name == name).values(**values))
            if password_hash is not None or disabled:
                conn.execute(sa.delete(s.sessions).where(s.sessions.c.user_name == name))

        self._retrying(work, f"updating user '{name}'")
        return self.get_user(name)

    def delete_user(self, name: str) -> None:
        self.get_user(name)

        def work(conn: sa.Connection) -> None:
            conn.execute(sa.delete(s.sessions).where(s.sessions.c.user_name == name))
            conn.execute(sa.delete(s.api_tokens).where(s.api_tokens.c.user_name == name))
            conn.execute(
                sa.delete(s.login_failures).where(s.login_failures.c.key == f"user:{name}")
            )
            conn.execute(sa.delete(s.users).where(s.users.c.name == name))

        self._retrying(work, f"deleting user '{name}'")

    # -- API tokens ---------------------------------------------------------------------------

    def create_api_token(self, token: ApiTokenRecord) -> None:
        t = s.api_tokens

        def work(conn: sa.Connection) -> None:
            taken = conn.execute(
                sa.select(t.c.id).where(
                    t.c.user_name == token.user, t.c.name == token.name, t.c.revoked_at.is_(None)
                )
            ).first()
            if taken is not None:
                raise StoreError(
                    f"user '{token.user}' has a token named '{token.name}' already; pick another "
                    f"name or revoke it first (`gristmill token revoke {taken.id[:8]}`)"
                )
            conn.execute(
                sa.insert(t),
                {
                    "id": token.id,
                    "user_name": token.user,
                    "name": token.name,
                    "role": token.role,
                    "token_hash": token.token_hash,
                    "created_at": token.created_at,
                    "expires_at": token.expires_at,
                    "last_used_at": token.last_used_at,
                    "revoked_at": token.revoked_at,
                },
            )

        self._retrying(work, f"creating token '{token.name}'", retry_conflicts=False)

    def find_api_token(self, token_hash: str) -> ApiTokenRecord | None:
        t = s.api_tokens
        with self._reading("looking up an API token") as conn:
            row = conn.execute(sa.select(t).where(t.c.token_hash == token_hash)).first()
        return _token(row) if row is not None else None

    def get_api_token(self, token_id: str) -> ApiTokenRecord:
        t = s.api_tokens
        with self._reading(f"reading token '{token_id}'") as conn:
            rows = conn.execute(sa.select(t).where(t.c.id.startswith(token_id, autoescape=True)))
            found = rows.fetchmany(2)
        if len(found) == 1 and token_id:
            return _token(found[0])
        if len(found) > 1:
            raise NotFoundError(
                f"token id prefix '{token_id}' matches several tokens; give more characters"
            )
        raise NotFoundError(
            f"no API token with id '{token_id}'; list them with `gristmill token list`"
        )

    def list_api_tokens(
        self, *, user: str | None = None, include_revoked: bool = False
    ) -> list[ApiTokenRecord]:
        t = s.api_tokens
        query = sa.select(t).order_by(t.c.created_at.desc(), t.c.id)
        if user is not None:
            query = query.where(t.c.user_name == user)
        if not include_revoked:
            query = query.where(t.c.revoked_at.is_(None))
        with self._reading("listing API tokens") as conn:
            return [_token(r) for r in conn.execute(query)]

    def touch_api_token(self, token_id: str, at: float) -> None:
        t = s.api_tokens

        def work(conn: sa.Connection) -> None:
            conn.execute(sa.update(t).where(t.c.id == token_id).values(last_used_at=at))

        self._retrying(work, "recording an API token's use")

    def revoke_api_token(self, token_id: str, at: float) -> ApiTokenRecord:
        token = self.get_api_token(token_id)
        t = s.api_tokens

        def work(conn: sa.Connection) -> None:
            conn.execute(
                sa.update(t)
                .where(t.c.id == token.id, t.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )

        self._retrying(work, f"revoking token '{token.name}'")
        return self.get_api_token(token.id)

    # -- sessions -----------------------------------------------------------------------------

    def create_session(self, session: SessionRecord) -> None:
        def work(conn: sa.Connection) -> None:
            conn.execute(
                sa.insert(s.sessions),
                {
                    "id": session.id,
                    "user_name": session.user,
                    "session_hash": session.session_hash,
                    "csrf_token": session.csrf_token,
                    "created_at": session.created_at,
                    "expires_at": session.expires_at,
                    "last_seen_at": session.last_seen_at,
                    "address": session.address,
                },
            )

        self._retrying(work, f"starting a session for '{session.user}'", retry_conflicts=False)

    def find_session(self, session_hash: str) -> SessionRecord | None:
        t = s.sessions
        with self._reading("looking up a session") as conn:
            row = conn.execute(sa.select(t).where(t.c.session_hash == session_hash)).first()
        return _session(row) if row is not None else None

    def touch_session(self, session_id: str, at: float) -> None:
        t = s.sessions

        def work(conn: sa.Connection) -> None:
            conn.execute(sa.update(t).where(t.c.id == session_id).values(last_seen_at=at))

        self._retrying(work, "recording a session's use")

    def end_session(self, session_id: str) -> None:
        def work(conn: sa.Connection) -> None:
            conn.execute(sa.delete(s.sessions).where(s.sessions.c.id == session_id))

        self._retrying(work, "ending a session")

    def list_sessions(self, *, user: str | None = None) -> list[SessionRecord]:
        t = s.sessions
        query = sa.select(t).order_by(t.c.created_at.desc(), t.c.id)
        if user is not None:
            query = query.where(t.c.user_name == user)
        with self._reading("listing sessions") as conn:
            return [_session(r) for r in conn.execute(query)]

    def end_sessions(self, *, user: str | None = None, expired_before: float | None = None) -> int:
        t = s.sessions
        query = sa.delete(t)
        if user is not None:
            query = query.where(t.c.user_name == user)
        if expired_before is not None:
            query = query.where(t.c.expires_at < expired_before)

        def work(conn: sa.Connection) -> int:
            return int(conn.execute(query).rowcount or 0)

        return self._retrying(work, "ending sessions")

    # -- failed logins ------------------------------------------------------------------------

    def record_login_failure(self, key: str, at: float, *, window: float) -> tuple[int, float]:
        t = s.login_failures

        def work(conn: sa.Connection) -> tuple[int, float]:
            row = conn.execute(sa.select(t).where(t.c.key == key)).first()
            if row is None:
                conn.execute(
                    sa.insert(t), {"key": key, "failures": 1, "first_at": at, "last_at": at}
                )
                return 1, at
            if at - row.last_at > window:
                failures, first = 1, at
            else:
                failures, first = row.failures + 1, row.first_at
            conn.execute(
                sa.update(t)
                .where(t.c.key == key)
                .values(failures=failures, first_at=first, last_at=at)
            )
            return failures, first

        return self._retrying(work, "recording a failed login")

    def login_failures(self, key: str) -> tuple[int, float | None]:
        t = s.login_failures
        with self._reading("reading failed logins") as conn:
            row = conn.execute(sa.select(t).where(t.c.key == key)).first()
        return (0, None) if row is None else (int(row.failures), float(row.last_at))

    def clear_login_failures(self, key: str) -> None:
        def work(conn: sa.Connection) -> None:
            conn.execute(sa.delete(s.login_failures).where(s.login_failures.c.key == key))

        self._retrying(work, "clearing failed logins")
