"""Stacks, components and secrets over ``/api/v1``. Viewers read stacks and components
(their settings hold secret references, never values) and the names and keys of secrets;
editors change them and read a secret's ciphertext. No secret is ever returned in clear:
the server does not hold the key that decrypts them (each project's ``secrets.key``)."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request, Response
from pydantic import BaseModel

from gristmill.server.api._common import EDITOR, Limit, Offset, Store, reply, sliced, store_router
from gristmill.store import MetadataStore, SecretRecord

router = store_router("stacks")


# -- components -----------------------------------------------------------------------------------


@router.get("/components", summary="List stack components")
def list_components(
    request: Request,
    type: str | None = Query(None, description="only components of this type"),
    limit: int = Limit,
    offset: int = Offset,
    store: MetadataStore = Store,
) -> Response:
    return sliced(request, store.list_components(type), limit=limit, offset=offset)


@router.get("/components/{type}/{name}", summary="A stack component")
def get_component(request: Request, type: str, name: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_component(type, name))


class ComponentBody(BaseModel):
    flavor: str
    config: dict[str, Any] = {}


@router.put(
    "/components/{type}/{name}", summary="Register or replace a component", dependencies=[EDITOR]
)
def save_component(
    request: Request, type: str, name: str, body: ComponentBody, store: MetadataStore = Store
) -> Response:
    """The settings are stored as given: validate them against the flavor first (the CLI
    does); secret values must be references (``{{secret.NAME.KEY}}``), never values."""
    return reply(request, store.save_component(type, name, body.flavor, body.config))


@router.delete("/components/{type}/{name}", summary="Delete a component", dependencies=[EDITOR])
def delete_component(
    request: Request, type: str, name: str, store: MetadataStore = Store
) -> Response:
    store.delete_component(type, name)
    return reply(request, {})


# -- stacks ---------------------------------------------------------------------------------------


@router.get("/stacks", summary="List stacks")
def list_stacks(
    request: Request, limit: int = Limit, offset: int = Offset, store: MetadataStore = Store
) -> Response:
    return sliced(request, store.list_stacks(), limit=limit, offset=offset)


@router.get("/stacks/{name}", summary="A stack with its components")
def get_stack(request: Request, name: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_stack(name))


class StackBody(BaseModel):
    components: dict[str, str]


@router.put("/stacks/{name}", summary="Register or replace a stack", dependencies=[EDITOR])
def save_stack(
    request: Request, name: str, body: StackBody, store: MetadataStore = Store
) -> Response:
    """``components``: component type → component name (registered already)."""
    return reply(request, store.save_stack(name, body.components))


@router.delete("/stacks/{name}", summary="Delete a stack", dependencies=[EDITOR])
def delete_stack(request: Request, name: str, store: MetadataStore = Store) -> Response:
    store.delete_stack(name)
    return reply(request, {})


# -- secrets --------------------------------------------------------------------------------------


def _public(secret: SecretRecord) -> dict[str, Any]:
    return {
        "name": secret.name,
        "keys": secret.keys,
        "created_at": secret.created_at,
        "updated_at": secret.updated_at,
    }


@router.get("/secrets", summary="List secrets: names and keys, no values")
def list_secrets(
    request: Request, limit: int = Limit, offset: int = Offset, store: MetadataStore = Store
) -> Response:
    secrets = [_public(s) for s in store.list_secrets()]
    return sliced(request, secrets, limit=limit, offset=offset)


@router.get("/secrets/{name}", summary="A secret's name and keys, no values")
def get_secret(request: Request, name: str, store: MetadataStore = Store) -> Response:
    return reply(request, _public(store.get_secret(name)))


@router.get(
    "/secrets/{name}/ciphertext",
    summary="A secret's ciphertext (decrypted only where its project's key is)",
    dependencies=[EDITOR],
)
def get_secret_ciphertext(request: Request, name: str, store: MetadataStore = Store) -> Response:
    return reply(request, store.get_secret(name))


class SecretBody(BaseModel):
    keys: list[str]
    ciphertext: str


@router.put("/secrets/{name}", summary="Store a secret's ciphertext", dependencies=[EDITOR])
def save_secret(
    request: Request, name: str, body: SecretBody, store: MetadataStore = Store
) -> Response:
    """Encrypted by the client with its project's key; the server never sees the values."""
    store.save_secret(name, body.keys, body.ciphertext)
    return reply(request, {})


@router.delete("/secrets/{name}", summary="Delete a secret", dependencies=[EDITOR])
def delete_secret(request: Request, name: str, store: MetadataStore = Store) -> Response:
    store.delete_secret(name)
    return reply(request, {})
