"""What both backends share: one() and the one-writer transaction; each supplies how to begin it."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator


class BaseStore:
    def __init__(self) -> None:
        self._depth = 0
        self._lock = threading.RLock()

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _raw(self, statement: str) -> None:
        """Run a transaction-control statement as it is."""
        raise NotImplementedError

    def _begin(self) -> None:
        """Start a write transaction that holds the store's single writer lock."""
        raise NotImplementedError

    def one(self, sql: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator["BaseStore"]:
        with self._lock:
            if self._depth:  # nested: part of the outer transaction
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._begin()
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._raw("ROLLBACK")
                raise
            else:
                self._raw("COMMIT")
            finally:
                self._depth = 0
