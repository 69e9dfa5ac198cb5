"""SQLite backend: a file under the state directory, nothing to start."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from hospops.store import Row


class SqliteStore:
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN ourselves, so writers take the lock up front.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
        self._lock = threading.RLock()
        path.chmod(0o600)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        with self._lock:
            return self._db.execute(sql, params or {}).rowcount

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, params or {}).fetchall()]

    def one(self, sql: str, params: dict[str, Any] | None = None) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator["SqliteStore"]:
        with self._lock:
            if self._depth:  # nested: part of the outer transaction
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            # IMMEDIATE takes the write lock now: two processes deciding on one row serialise.
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def close(self) -> None:
        self._db.close()
