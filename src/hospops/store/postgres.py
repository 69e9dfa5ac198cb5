"""PostgreSQL backend, for a team sharing one store (needs the ``postgres`` extra: psycopg 3)."""

from __future__ import annotations

import re
from typing import Any

from hospops.errors import UserError
from hospops.store import Row
from hospops.store._base import BaseStore

_PARAM = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")
# One advisory lock key for all writers: the same one-writer semantics as SQLite.
_WRITE_LOCK = 0x6F70735F686F73  # "hos_ops"


def _adapt(sql: str) -> str:
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class PostgresStore(BaseStore):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__()
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UserError("the PostgreSQL store needs psycopg", "pip install 'hospops[postgres]'") from exc
        self.url = url
        try:
            self._db = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        except psycopg.OperationalError as exc:
            raise UserError(f"cannot connect to the store at {url.split('@')[-1]}: {exc}",
                            "check HOSPOPS_STORE_URL and that the server is up") from exc

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        with self._lock:
            return self._db.execute(_adapt(sql), params or {}).rowcount

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        with self._lock:
            cur = self._db.execute(_adapt(sql), params or {})
            return list(cur.fetchall()) if cur.description else []

    def _raw(self, statement: str) -> None:
        self._db.execute(statement)

    def _begin(self) -> None:
        self._db.execute("BEGIN")
        self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))

    def close(self) -> None:
        self._db.close()
