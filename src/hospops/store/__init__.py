"""One small storage interface: SQLite by default, PostgreSQL by URL.

SQL is written once, portable, with ``:name`` parameters; each backend adapts the placeholder
style. Schema comes only from the numbered files in ``hospops/migrations/`` (applied in order,
recorded in ``schema_migrations``), never from ad-hoc CREATE TABLEs elsewhere.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from hospops.paths import hospops_home

Row = dict[str, Any]


class Store(Protocol):
    url: str

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        """Run a statement; return the number of rows it touched."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        """Run a query; return rows as dicts."""

    def one(self, sql: str, params: dict[str, Any] | None = None) -> Row | None:
        """The first row of a query, or None."""

    def transaction(self):
        """Context manager: one writer at a time; commits on success, rolls back on error."""

    def close(self) -> None: ...


def default_url() -> str:
    return os.environ.get("HOSPOPS_STORE_URL") or f"sqlite:///{hospops_home() / 'hospops.db'}"


def open_store(url: str | None = None) -> Store:
    """Open (and migrate) the store named by URL: ``sqlite:///PATH`` or ``postgresql://...``."""
    from hospops.store.migrate import migrate

    url = url or default_url()
    if url.startswith("sqlite:///"):
        from hospops.store.sqlite import SqliteStore

        store: Store = SqliteStore(url)
    elif url.startswith(("postgresql://", "postgres://")):
        from hospops.store.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        from hospops.errors import UserError

        raise UserError(
            f"store URL {url!r} is not understood",
            "use sqlite:///PATH (the default) or postgresql://USER@HOST/DB in HOSPOPS_STORE_URL",
        )
    migrate(store)
    return store
