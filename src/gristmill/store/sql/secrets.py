"""Secrets on the SQL store (``SecretVault``): names, key names and one ciphertext each. The
store never sees a secret's values; encryption is the caller's (``gristmill.stacks.secrets``)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from gristmill.errors import NotFoundError, did_you_mean
from gristmill.store.base import SecretVault
from gristmill.store.ids import secret_id
from gristmill.store.metadata_values import dumps
from gristmill.store.records import SecretRecord
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import SQLEngine
from gristmill.store.sql.rows import secret_record


class SQLSecretVault(SQLEngine, SecretVault):
    def save_secret(self, name: str, keys: Sequence[str], ciphertext: str) -> None:
        new_id = secret_id(name)
        now = time.time()
        values = {"keys": dumps(sorted(keys)), "ciphertext": ciphertext, "updated_at": now}

        def work(conn: sa.Connection) -> None:
            exists = conn.execute(sa.select(s.secrets.c.id).where(s.secrets.c.id == new_id)).first()
            if exists is None:
                conn.execute(
                    sa.insert(s.secrets), {"id": new_id, "name": name, "created_at": now, **values}
                )
            else:
                conn.execute(sa.update(s.secrets).where(s.secrets.c.id == new_id).values(**values))

        self._retrying(work, f"saving secret '{name}'")

    def get_secret(self, name: str) -> SecretRecord:
        with self._reading(f"reading secret '{name}'") as conn:
            row = conn.execute(sa.select(s.secrets).where(s.secrets.c.name == name)).first()
            if row is None:
                names = conn.execute(sa.select(s.secrets.c.name)).scalars().all()
                raise NotFoundError(
                    f"no secret named '{name}'{did_you_mean(name, names)}; create it with "
                    f"`gristmill secret create {name} KEY=VALUE ...`"
                )
        return secret_record(row)

    def list_secrets(self) -> list[SecretRecord]:
        with self._reading("listing secrets") as conn:
            rows = conn.execute(sa.select(s.secrets).order_by(s.secrets.c.name))
            return [secret_record(r) for r in rows]

    def delete_secret(self, name: str) -> None:
        self.get_secret(name)

        def work(conn: sa.Connection) -> None:
            conn.execute(s.secrets.delete().where(s.secrets.c.name == name))

        self._retrying(work, f"deleting secret '{name}'")
