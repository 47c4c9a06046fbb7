"""``/api/v1/auth`` (log in and out, who am I, change my password), ``/api/v1/users``
(admin) and ``/api/v1/tokens`` (everyone manages their own; admins everyone's). A token is
returned in clear once, in the answer that creates it; passwords and hashes never leave."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gristmill.errors import AuthError, ConfigError, LoginThrottledError
from gristmill.server.auth import (
    SESSION_COOKIE,
    AsViewer,
    Role,
    app_settings,
    app_store,
    authenticate_password,
    clear_session_cookies,
    client_address,
    end_session,
    login_limits,
    public,
    require,
    set_session_cookies,
    start_session,
)
from gristmill.server.credentials import (
    check_password,
    create_token,
    create_user,
    hash_password,
    parse_duration,
    verify_password,
)
from gristmill.store import MetadataStore
from gristmill.store.records import ApiTokenRecord, UserRecord

router = APIRouter(prefix="/api/v1", tags=["auth"])


class User(BaseModel):
    name: str
    role: Role
    disabled: bool
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, record: UserRecord) -> User:
        return cls(
            name=record.name,
            role=Role.parse(record.role),
            disabled=record.disabled,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class Token(BaseModel):
    id: str
    user: str
    name: str
    role: Role
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None

    @classmethod
    def of(cls, record: ApiTokenRecord) -> Token:
        return cls(
            id=record.id,
            user=record.user,
            name=record.name,
            role=Role.parse(record.role),
            created_at=record.created_at,
            expires_at=record.expires_at,
            last_used_at=record.last_used_at,
            revoked_at=record.revoked_at,
        )


class NewToken(Token):
    token: str = Field(description="The token itself: shown only in this answer, never again.")


class Me(BaseModel):
    user: str
    role: Role
    via: Literal["token", "session"]
    csrf_token: str | None = None


class Login(BaseModel):
    username: str
    password: str


class NewUser(BaseModel):
    name: str
    role: Role = Role.VIEWER
    password: str


class UserChange(BaseModel):
    role: Role | None = None
    password: str | None = None
    disabled: bool | None = None


class PasswordChange(BaseModel):
    current_password: str
    new_password: str


class TokenRequest(BaseModel):
    name: str
    role: Role | None = None
    expires: str | None = Field(default=None, description="Lifetime such as 30d, 12h, 90m.")
    user: str | None = Field(default=None, description="Admins only: another user's token.")


# -- auth ---------------------------------------------------------------------------------------


@router.post("/auth/login", dependencies=[Depends(public)])
async def login(body: Login, request: Request, response: Response) -> Me:
    """Log in with a user name and password: sets the session cookie (HttpOnly) and the CSRF
    cookie, and returns the CSRF value to send back as ``X-CSRF-Token``. 401 for a wrong
    name or password, 429 (``Retry-After``) after too many failures."""
    store, settings = app_store(request), app_settings(request)
    address = client_address(request)
    try:
        user = await run_in_threadpool(
            authenticate_password,
            store,
            body.username,
            body.password,
            address=address,
            limits=login_limits(settings),
        )
    except LoginThrottledError as exc:
        raise HTTPException(
            429, str(exc), headers={"Retry-After": str(int(exc.retry_after) + 1)}
        ) from None
    except AuthError as exc:
        raise HTTPException(401, str(exc)) from None
    cookie, session = await run_in_threadpool(
        start_session, store, user, lifetime=settings.session_lifetime, address=address
    )
    set_session_cookies(response, cookie, session.csrf_token, settings=settings)
    return Me(
        user=user.name, role=Role.parse(user.role), via="session", csrf_token=session.csrf_token
    )


@router.post("/auth/logout")
async def logout(request: Request, response: Response, principal: AsViewer) -> dict[str, str]:
    """End the current dashboard session (a token caller: nothing to end) and clear its
    cookies."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if principal.via == "session" and cookie:
        await run_in_threadpool(end_session, app_store(request), cookie)
    clear_session_cookies(response, settings=app_settings(request))
    return {"status": "logged out"}


@router.get("/auth/me")
def me(principal: AsViewer) -> Me:
    """Who is calling, with which role, and (for a session) the CSRF value."""
    return Me(
        user=principal.user, role=principal.role, via=principal.via, csrf_token=principal.csrf_token
    )


@router.post("/auth/password")
def change_password(body: PasswordChange, request: Request, principal: AsViewer) -> dict[str, str]:
    """Change one's own password (the current one is asked again); ends every session of
    the user, this one included."""
    store = app_store(request)
    user = store.get_user(principal.user)
    if not verify_password(user.password_hash, body.current_password):
        raise HTTPException(403, "the current password is wrong; the password was not changed")
    check_password(body.new_password)
    store.update_user(user.name, password_hash=hash_password(body.new_password), at=time.time())
    return {"status": "password changed; log in again"}


# -- users (admin) --------------------------------------------------------------------------------

_ADMIN = [Depends(require(Role.ADMIN))]


@router.get("/users", dependencies=_ADMIN)
def list_users(request: Request) -> list[User]:
    return [User.of(u) for u in app_store(request).list_users()]


@router.post("/users", dependencies=_ADMIN, status_code=201)
def add_user(body: NewUser, request: Request) -> User:
    return User.of(
        create_user(app_store(request), body.name, role=body.role, password=body.password)
    )


@router.get("/users/{name}", dependencies=_ADMIN)
def get_user(name: str, request: Request) -> User:
    return User.of(app_store(request).get_user(name))


def _check_not_last_admin(store: MetadataStore, name: str) -> None:
    admins = [u.name for u in store.list_users() if u.role == Role.ADMIN.value and not u.disabled]
    if admins == [name]:
        raise ConfigError(
            f"'{name}' is the only admin: make another user admin first "
            "(`gristmill user set-role NAME admin`), so someone can still manage users"
        )


@router.patch("/users/{name}", dependencies=_ADMIN)
def change_user(name: str, body: UserChange, request: Request) -> User:
    """Change a user's role, password or disabled flag; a new password or disabling ends the
    user's sessions. The last admin cannot be demoted or disabled."""
    store = app_store(request)
    current = store.get_user(name)
    demoted = body.role is not None and body.role != Role.ADMIN
    if current.role == Role.ADMIN.value and (demoted or body.disabled):
        _check_not_last_admin(store, name)
    password_hash = None
    if body.password is not None:
        password_hash = hash_password(check_password(body.password))
    record = store.update_user(
        name,
        role=body.role.value if body.role is not None else None,
        password_hash=password_hash,
        disabled=body.disabled,
        at=time.time(),
    )
    return User.of(record)


@router.delete("/users/{name}", dependencies=_ADMIN)
def delete_user(name: str, request: Request) -> dict[str, str]:
    """Delete a user with their tokens and sessions (the last admin cannot be deleted)."""
    store = app_store(request)
    if store.get_user(name).role == Role.ADMIN.value:
        _check_not_last_admin(store, name)
    store.delete_user(name)
    return {"status": f"user '{name}' deleted"}


@router.delete("/users/{name}/sessions", dependencies=_ADMIN)
def end_user_sessions(name: str, request: Request) -> dict[str, int]:
    """Log a user out everywhere."""
    store = app_store(request)
    store.get_user(name)
    return {"ended": store.end_sessions(user=name)}


# -- tokens ---------------------------------------------------------------------------------------


@router.get("/tokens")
def list_tokens(
    request: Request,
    principal: AsViewer,
    user: str | None = None,
    all_users: bool = False,
    include_revoked: bool = False,
) -> list[Token]:
    """The caller's tokens; an admin may list another user's (``user=``) or everyone's
    (``all_users=true``). Never the tokens themselves."""
    if (all_users or (user is not None and user != principal.user)) and principal.role < Role.ADMIN:
        raise HTTPException(403, "only an admin may list other users' tokens")
    who = None if all_users else (user or principal.user)
    records = app_store(request).list_api_tokens(user=who, include_revoked=include_revoked)
    return [Token.of(t) for t in records]


@router.post("/tokens", status_code=201)
def add_token(body: TokenRequest, request: Request, principal: AsViewer) -> NewToken:
    """A new API token, returned in clear in this answer only. Its role is at most the
    caller's; an admin may create one for another user (at most that user's role)."""
    owner = body.user or principal.user
    if owner != principal.user and principal.role < Role.ADMIN:
        raise HTTPException(403, "only an admin may create tokens for other users")
    expires_in = parse_duration(body.expires, "expires") if body.expires else None
    token, record = create_token(
        app_store(request),
        owner,
        name=body.name,
        role=body.role,
        expires_in=expires_in,
        limit=principal.role,
    )
    return NewToken(token=token, **Token.of(record).model_dump())


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: str, request: Request, principal: AsViewer) -> Token:
    """Revoke a token: one's own, or anyone's for an admin."""
    store = app_store(request)
    record = store.get_api_token(token_id)
    if record.user != principal.user and principal.role < Role.ADMIN:
        # Not 403: do not confirm that another user's token id exists.
        raise HTTPException(404, f"no API token with id '{token_id}' among yours")
    return Token.of(store.revoke_api_token(record.id, time.time()))
