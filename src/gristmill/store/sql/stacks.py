"""Stack components and stacks on the SQL store (``StackCatalog``): registered by type and
name, configurations as JSON holding secret references, never secret values."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gristmill.errors import NotFoundError, StoreError, did_you_mean
from gristmill.spec import check_component_name
from gristmill.store.base import StackCatalog
from gristmill.store.ids import component_id, stack_id
from gristmill.store.metadata_values import dumps
from gristmill.store.records import ComponentRecord, StackRecord
from gristmill.store.sql._lazy import sa
from gristmill.store.sql._lazy import schema as s
from gristmill.store.sql.engine import SQLEngine
from gristmill.store.sql.prepared import Prepared, StatementConnection, execute
from gristmill.store.sql.rows import component_record


class SQLStackCatalog(SQLEngine, StackCatalog):
    def save_component(
        self, type: str, name: str, flavor: str, config: Mapping[str, Any]
    ) -> ComponentRecord:
        check_component_name(name, type.replace("_", " "))
        new_id = component_id(type, name)
        now = time.time()
        t = s.components
        c = t.c

        def work(conn: sa.Connection) -> None:
            existing = conn.execute(sa.select(c.id).where(c.id == new_id)).first()
            values = {"flavor": flavor, "config": dumps(dict(config)), "updated_at": now}
            if existing is None:
                conn.execute(
                    sa.insert(t),
                    {"id": new_id, "type": type, "name": name, "created_at": now, **values},
                )
            else:
                conn.execute(sa.update(t).where(c.id == new_id).values(**values))

        self._retrying(work, f"saving {type} '{name}'")
        return self.get_component(type, name)

    def get_component(self, type: str, name: str) -> ComponentRecord:
        t = s.components
        c = t.c
        with self._reading(f"reading {type} '{name}'") as conn:
            row = conn.execute(sa.select(t).where(c.type == type, c.name == name)).first()
            if row is None:
                names = conn.execute(sa.select(c.name).where(c.type == type)).scalars().all()
                kind = type.replace("_", " ")
                raise NotFoundError(
                    f"no {kind} named '{name}'{did_you_mean(name, names)}; register one with "
                    f"`gristmill component register {type} {name} --flavor ...`"
                )
        return component_record(row)

    def list_components(self, type: str | None = None) -> list[ComponentRecord]:
        t = s.components
        c = t.c
        query = sa.select(t).order_by(c.type, c.name)
        if type is not None:
            query = query.where(c.type == type)
        with self._reading("listing components") as conn:
            return [component_record(r) for r in conn.execute(query)]

    def delete_component(self, type: str, name: str) -> None:
        record = self.get_component(type, name)

        def work(conn: sa.Connection) -> None:
            users = (
                conn.execute(
                    sa.select(s.stacks.c.name)
                    .join(s.stack_components, s.stack_components.c.stack_id == s.stacks.c.id)
                    .where(s.stack_components.c.component_id == record.id)
                )
                .scalars()
                .all()
            )
            if users:
                raise StoreError(
                    f"{type.replace('_', ' ')} '{name}' is used by stack(s) {', '.join(sorted(users))}: "
                    "remove it from them (or delete them) first"
                )
            conn.execute(s.components.delete().where(s.components.c.id == record.id))

        self._retrying(work, f"deleting {type} '{name}'")

    def save_stack(self, name: str, components: Mapping[str, str]) -> StackRecord:
        check_component_name(name, "stack")
        resolved = {
            kind: self.get_component(kind, component) for kind, component in components.items()
        }
        new_id = stack_id(name)
        now = time.time()

        def work(conn: sa.Connection) -> None:
            exists = conn.execute(sa.select(s.stacks.c.id).where(s.stacks.c.id == new_id)).first()
            if exists is None:
                conn.execute(
                    sa.insert(s.stacks),
                    {"id": new_id, "name": name, "created_at": now, "updated_at": now},
                )
            else:
                conn.execute(
                    sa.update(s.stacks).where(s.stacks.c.id == new_id).values(updated_at=now)
                )
                conn.execute(
                    s.stack_components.delete().where(s.stack_components.c.stack_id == new_id)
                )
            if resolved:
                conn.execute(
                    sa.insert(s.stack_components),
                    [
                        {"stack_id": new_id, "type": kind, "component_id": c.id}
                        for kind, c in resolved.items()
                    ],
                )

        self._retrying(work, f"saving stack '{name}'")
        return self.get_stack(name)

    def get_stack(self, name: str) -> StackRecord:
        with self._reading(f"reading stack '{name}'", prepared=True) as conn:
            row = execute(conn, _STACK_NAMED, {"name": name}).first()
            if row is not None:
                return _stack(conn, row)
        with self._reading(f"reading stack '{name}'") as conn:
            names = conn.execute(sa.select(s.stacks.c.name)).scalars().all()
        raise NotFoundError(
            f"no stack named '{name}'{did_you_mean(name, names)}; `gristmill stack list` shows them"
        )

    def list_stacks(self) -> list[StackRecord]:
        with self._reading("listing stacks") as conn:
            rows = conn.execute(sa.select(s.stacks).order_by(s.stacks.c.name)).all()
            return [_stack(conn, r) for r in rows]

    def delete_stack(self, name: str) -> None:
        record = self.get_stack(name)

        def work(conn: sa.Connection) -> None:
            conn.execute(
                s.stack_components.delete().where(s.stack_components.c.stack_id == record.id)
            )
            conn.execute(s.stacks.delete().where(s.stacks.c.id == record.id))

        self._retrying(work, f"deleting stack '{name}'")


def _stack(conn: StatementConnection, row: Any) -> StackRecord:
    members = execute(conn, _STACK_MEMBERS, {"stack_id": row.id}).all()
    components = {m.role: component_record(m) for m in members}
    return StackRecord(
        row.id, row.name, dict(sorted(components.items())), row.created_at, row.updated_at
    )


# A run reads its stack: prepared, as the rest of what a run executes.
_STACK_NAMED = Prepared(
    "stacks.named", lambda: sa.select(s.stacks).where(s.stacks.c.name == sa.bindparam("name"))
)
_STACK_MEMBERS = Prepared(
    "stacks.members",
    lambda: (
        sa.select(s.components, s.stack_components.c.type.label("role"))
        .join(s.stack_components, s.stack_components.c.component_id == s.components.c.id)
        .where(s.stack_components.c.stack_id == sa.bindparam("stack_id"))
    ),
)
