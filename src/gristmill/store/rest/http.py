"""The HTTP session the REST store talks through: one pooled ``httpx.Client`` per process
(rebuilt after a fork), timeouts, bounded retries when the server cannot be reached, and
the one place where HTTP failures become gristmill's errors. httpx is imported when the first
REST store is opened, never at ``import gristmill``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gristmill import errors
from gristmill.errors import GristmillError, MissingIntegrationError, StoreError
from gristmill.store.rest import wire

if TYPE_CHECKING:
    import httpx

API_PREFIX = "/api/v1"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
# Tries for a call whose request never reached the server (connection refused, DNS, a
# connect timeout): 4 tries over ~1.5 s ride out a server restarting behind a proxy.
TRIES = 4
BACKOFF = (0.1, 0.3, 1.0)
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})

# Error classes a server may name in {"error": ...}: gristmill's own, nothing else.
_ERRORS: dict[str, type[GristmillError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type)
    and issubclass(cls, GristmillError)
    and cls not in (errors.MissingIntegrationError, errors.RunFailedError)
}


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise MissingIntegrationError("httpx", "server", "A gristmill server URL") from exc
    return httpx


class HttpSession:
    """Calls to one gristmill server's ``/api/v1``, authenticated with a bearer token."""

    def __init__(self, url: str, token: str | None, *, timeout: float = READ_TIMEOUT) -> None:
        self.url = url
        self._token = token
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpSession({self.url!r})"

    def _http(self) -> httpx.Client:
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                # A forked worker must not share the parent's sockets: a new pool per process.
                httpx = _httpx()
                from gristmill._version import __version__

                headers = {"User-Agent": f"gristmill/{__version__}", "Accept": "application/json"}
                if self._token:
                    headers["Authorization"] = f"Bearer {self._token}"
                self._client = httpx.Client(
                    base_url=self.url + API_PREFIX,
                    headers=headers,
                    timeout=httpx.Timeout(self._timeout, connect=CONNECT_TIMEOUT),
                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                    follow_redirects=False,
                )
                self._pid = os.getpid()
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None

    # -- calls ----------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None, *, idempotent: bool = False) -> Any:
        return self.call("POST", path, body=body, idempotent=idempotent)

    def put(self, path: str, body: Any = None) -> Any:
        return self.call("PUT", path, body=body)

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.call("DELETE", path, params=params)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = False,
    ) -> Any:
        """The decoded JSON answer of one call; gristmill errors for every failure."""
        httpx = _httpx()
        content = None
        headers = None
        if body is not None:
            # Python's JSON (NaN allowed): a metric that went NaN is recorded as such.
            import json

            content = json.dumps(wire.plain(body), separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json"}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        retry_sent = idempotent or method in IDEMPOTENT
        for attempt in range(TRIES):
            try:
                response = self._http().request(
                    method, path, params=query, content=content, headers=headers
                )
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The request never left: trying again cannot do it twice.
                failure: Exception = exc
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # A pooled connection the server closed: safe to repeat only if idempotent.
                if not retry_sent:
                    raise self._unreachable(method, path, exc) from exc
                failure = exc
            except httpx.TimeoutException as exc:
                raise StoreError(
                    f"the gristmill server at {self.url} did not answer {method} {path} within "
                    f"{self._timeout:g} s; is it overloaded? check its logs"
                ) from exc
            except httpx.HTTPError as exc:
                raise self._unreachable(method, path, exc) from exc
            if attempt + 1 < TRIES:
                time.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
        else:
            raise self._unreachable(method, path, failure) from failure
        if response.status_code >= 400:
            raise self._failure(response)
        if response.status_code == 204 or not response.content:
            return None
        return wire.from_json(response.content)

    # -- errors ---------------------------------------------------------------------------------

    def _unreachable(self, method: str, path: str, exc: Exception) -> StoreError:
        reason = str(exc) or type(exc).__name__
        if "refused" in reason.lower():
            reason = "connection refused"
        return StoreError(
            f"cannot reach the gristmill server at {self.url}: {reason}; is it running? "
            "(`gristmill up` starts one; check the URL in GRISTMILL_STORE_URL or "
            "`gristmill connect`)"
        )

    def _failure(self, response: httpx.Response) -> GristmillError:
        detail: str = response.reason_phrase or "error"
        name = None
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            found = data.get("detail")
            if isinstance(found, str):
                detail = found
            elif found is not None:  # FastAPI's validation errors: a list of problems
                detail = (
                    "; ".join(_problem(p) for p in found) if isinstance(found, list) else str(found)
                )
            name = data.get("error")
        status = response.status_code
        where = f"{response.request.method} {response.request.url.path}"
        if status == 401:
            return StoreError(
                f"the gristmill server at {self.url} refused the token ({detail}): set "
                "GRISTMILL_API_TOKEN or run `gristmill connect URL` with a valid token"
            )
        if status == 403:
            return StoreError(
                f"the gristmill server at {self.url} refused {where}: {detail}; ask an admin "
                "for a token with a higher role (`gristmill token create --role editor`)"
            )
        cls = _ERRORS.get(name) if isinstance(name, str) else None
        if cls is not None:
            return cls(detail)
        if status == 404:
            return errors.NotFoundError(detail)
        if status == 422:
            return errors.ConfigError(f"the gristmill server refused {where}: {detail}")
        return StoreError(f"the gristmill server at {self.url} failed {where} ({status}): {detail}")


def _problem(problem: Any) -> str:
    if isinstance(problem, dict):
        where = ".".join(str(p) for p in problem.get("loc", ()))
        return f"{where}: {problem.get('msg', problem)}"
    return str(problem)
