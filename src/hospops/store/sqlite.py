"""SQLite backend: a file under the state directory, nothing to start."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from hospops.store import Row
from hospops.store._base import BaseStore


class SqliteStore(BaseStore):
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves, so writers take the lock up front.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        path.chmod(0o600)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        with self._lock:
            return self._db.execute(sql, params or {}).rowcount

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, params or {}).fetchall()]

    def _raw(self, statement: str) -> None:
        self._db.execute(statement)

    def _begin(self) -> None:
        # IMMEDIATE takes the write lock now: two processes deciding on one row serialise.
        self._db.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        self._db.close()
