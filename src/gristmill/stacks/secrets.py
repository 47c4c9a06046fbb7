"""Secrets: key/value sets encrypted at rest in the metadata store (Fernet: AES-128-CBC with an
HMAC), referenced from component settings as ``{{ secret.NAME.KEY }}`` and resolved only when
a component is built. Values never reach stored configurations, ``describe`` output, logs or
error messages: every resolved value is remembered and ``redact`` replaces it with ``***``.

The key comes from ``GRISTMILL_SECRETS_KEY`` or, failing that, the project's
``.gristmill/secrets.key`` (created by ``gristmill init``, mode 0600). Everyone sharing a
metadata store must use the same key.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gristmill.errors import ConfigError, NotFoundError, SecretError
from gristmill.store import MetadataStore

REFERENCE = re.compile(r"\{\{\s*secret\.([A-Za-z0-9_\-]+)\.([A-Za-z0-9_\-]+)\s*\}\}")
NAME = re.compile(r"^[A-Za-z0-9_\-]+$")
KEY_FILE = "secrets.key"
_MASK = "***"
# Replaced, never changed in place, so readers on other threads iterate a stable snapshot;
# longest first, so a value containing another is masked whole.
_known_values: tuple[str, ...] = ()
_known_lock = threading.Lock()


def has_reference(text: str) -> bool:
    return bool(REFERENCE.search(text))


def references(value: Any) -> set[tuple[str, str]]:
    """Every (secret, key) referenced anywhere in a configuration."""
    found: set[tuple[str, str]] = set()
    if isinstance(value, str):
        found.update(REFERENCE.findall(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= references(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= references(item)
    return found


def remember(value: str) -> None:
    """Make ``redact`` hide this value from now on. Values under 8 characters are not hidden:
    they would mask pieces of ids and words everywhere (and are not worth keeping secret)."""
    global _known_values
    if len(value) >= 8 and value not in _known_values:
        with _known_lock:
            if not _known_values:
                logging.getLogger("gristmill").addFilter(_RedactFilter())
            _known_values = tuple(sorted({*_known_values, value}, key=len, reverse=True))


class _RedactFilter(logging.Filter):
    """gristmill's own log messages (a path, a URL in an error) never carry a secret value."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def redact(text: str) -> str:
    """``text`` with every secret value this process resolved replaced by ``***``."""
    if not _known_values or not text:
        return text
    for value in _known_values:
        if value in text:
            text = text.replace(value, _MASK)
    return text


def any_known() -> bool:
    """Whether this process resolved a secret value yet (until then redacting is a no-op)."""
    return bool(_known_values)


def redact_value(value: Any) -> Any:
    """A JSON-like value (metadata, a preview's data) with every string in it, keys included,
    redacted; other values as they are."""
    if not _known_values:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(k) if isinstance(k, str) else k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    return value


def redact_stream(pending: str) -> tuple[str, str]:
    """For text shown as it is written (a step's live output): ``pending`` (what was written
    and not shown yet), redacted, split into what can be shown now and a tail held back because
    it may be the beginning of a secret value whose rest is still to be written."""
    text = redact(pending)
    hold = 0
    for value in _known_values:
        for size in range(min(len(value) - 1, len(text)), hold, -1):
            if text.endswith(value[:size]):
                hold = size
                break
    return (text[:-hold], text[-hold:]) if hold else (text, "")


class Secrets:
    """Secret sets of one metadata store, encrypted with one key."""

    def __init__(self, store: MetadataStore, project_directory: Path) -> None:
        self.store = store
        self._directory = project_directory
        self._fernet: Any = None
        self._cache: dict[str, dict[str, str]] = {}

    def _cipher(self) -> Any:
        if self._fernet is None:
            from cryptography.fernet import Fernet

            key = os.environ.get("GRISTMILL_SECRETS_KEY")
            if not key:
                path = self._directory / KEY_FILE
                if not path.exists():
                    raise SecretError(
                        f"no secrets key: set GRISTMILL_SECRETS_KEY, or run `gristmill init` in "
                        f"{self._directory.parent} to create {path}"
                    )
                key = path.read_text(encoding="utf-8").strip()
            try:
                self._fernet = Fernet(key.encode())
            except (ValueError, TypeError):
                raise SecretError(
                    "the secrets key (GRISTMILL_SECRETS_KEY or .gristmill/secrets.key) is not a valid "
                    "Fernet key: 32 url-safe base64 bytes, as `gristmill init` creates"
                ) from None
        return self._fernet

    def create(self, name: str, values: Mapping[str, str]) -> None:
        _check_name(name)
        try:
            self.store.get_secret(name)
        except NotFoundError:
            self._save(name, dict(values))
            return
        raise ConfigError(
            f"secret '{name}' already exists: use `gristmill secret update {name} ...`"
        )

    def update(self, name: str, values: Mapping[str, str], remove: tuple[str, ...] = ()) -> None:
        current = self.get(name)
        missing = [k for k in remove if k not in current]
        if missing:
            raise ConfigError(
                f"secret '{name}' has no key '{missing[0]}' (keys: {', '.join(sorted(current))})"
            )
        merged = {k: v for k, v in current.items() if k not in remove}
        merged.update(values)
        if not merged:
            raise ConfigError(f"secret '{name}' would have no keys left: delete it instead")
        self._save(name, merged)

    def _save(self, name: str, values: dict[str, str]) -> None:
        if not values:
            raise ConfigError(f"secret '{name}' needs at least one KEY=VALUE")
        for key, value in values.items():
            if not NAME.fullmatch(key):
                raise ConfigError(
                    f"secret key '{key}' is not valid: use letters, digits, '_' or '-'"
                )
            if not isinstance(value, str):
                raise ConfigError(f"secret values are text; '{key}' is {type(value).__name__}")
            remember(value)
        token = self._cipher().encrypt(json.dumps(values).encode()).decode()
        self.store.save_secret(name, list(values), token)
        self._cache[name] = dict(values)

    def get(self, name: str) -> dict[str, str]:
        if name in self._cache:
            return dict(self._cache[name])
        record = self.store.get_secret(name)
        from cryptography.fernet import InvalidToken

        try:
            values: dict[str, str] = json.loads(self._cipher().decrypt(record.ciphertext.encode()))
        except InvalidToken:
            raise SecretError(
                f"secret '{name}' was encrypted with another key: set GRISTMILL_SECRETS_KEY to the key "
                "used where it was created"
            ) from None
        for value in values.values():
            remember(value)
        self._cache[name] = values
        return dict(values)

    def delete(self, name: str) -> None:
        self.store.delete_secret(name)
        self._cache.pop(name, None)

    def resolve(self, config: Mapping[str, Any], *, where: str) -> dict[str, Any]:
        """``config`` with every secret reference replaced by its value (a new dict)."""

        def value_of(match: re.Match[str]) -> str:
            name, key = match.group(1), match.group(2)
            try:
                values = self.get(name)
            except NotFoundError as exc:
                raise ConfigError(f"{where} refers to {match.group(0)}, but {exc}") from None
            if key not in values:
                raise ConfigError(
                    f"{where} refers to {match.group(0)}, but secret '{name}' has no key '{key}' "
                    f"(keys: {', '.join(sorted(values))})"
                )
            return values[key]

        def walk(value: Any) -> Any:
            if isinstance(value, str):
                return REFERENCE.sub(value_of, value)
            if isinstance(value, Mapping):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        resolved: dict[str, Any] = walk(dict(config))
        return resolved


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise ConfigError(f"secret name '{name}' is not valid: use letters, digits, '_' or '-'")
