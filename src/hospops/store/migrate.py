"""Apply the numbered SQL files in hospops/migrations in order, once each.

Files are named ``NNNN_topic.sql``; later features add new files, never edit applied ones.
A file may have a dialect twin (``NNNN_topic.postgresql.sql``) when portable SQL is not enough.
"""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import resources

_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
)


def _migrations(dialect: str) -> list[tuple[str, str]]:
    files = {f.name: f for f in resources.files("hospops.migrations").iterdir() if f.name.endswith(".sql")}
    chosen: dict[str, str] = {}
    for name in sorted(files):
        stem = name[: -len(".sql")]
        version, _, rest = stem.partition("_")
        if "." in rest:  # a dialect twin
            if rest.rsplit(".", 1)[1] == dialect:
                chosen[version] = files[name].read_text(encoding="utf-8")
            continue
        chosen.setdefault(version, files[name].read_text(encoding="utf-8"))
    return sorted(chosen.items())


def migrate(store) -> list[str]:
    """Bring the schema up to date; return the versions applied now."""
    store.execute(_LEDGER)
    applied = {r["version"] for r in store.query("SELECT version FROM schema_migrations")}
    done = []
    for version, sql in _migrations(store.dialect):
        if version in applied:
            continue
        with store.transaction():
            # Another process may have applied it while we waited for the write lock.
            if store.one("SELECT 1 AS x FROM schema_migrations WHERE version = :v", {"v": version}):
                continue
            for statement in _statements(sql):
                store.execute(statement)
            store.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (:v, :at)",
                {"v": version, "at": datetime.now(timezone.utc).isoformat()},
            )
        done.append(version)
    return done


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (migrations keep ';' out of literals and bodies)."""
    out = []
    for chunk in sql.split(";"):
        body = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            out.append(body)
    return out
