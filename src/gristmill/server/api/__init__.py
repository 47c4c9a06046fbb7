"""The REST API, ``/api/v1``: one module per area, each with a module-level
``router: fastapi.APIRouter`` that ``create_app`` includes (every module here whose name does
not start with ``_``). ``auth.py``: login, logout, the current user, users and API tokens;
the others: what the metadata store holds. Every route declares its role with
``Depends(require(...))`` (see ``gristmill.server.auth``)."""
