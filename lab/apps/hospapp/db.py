"""Database access: one short-lived connection per request (robust across database restarts)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .config import DbConfig


class DbUnavailable(Exception):
    """The database could not be reached (connection refused, timeout, authentication failure)."""


class SchemaMissing(Exception):
    """The service's tables are not there: migrations were never applied."""


def _driver():
    import psycopg2  # Debian's python3-psycopg2; imported here so tests of other parts need not have it

    return psycopg2


def connect(db: DbConfig, application_name: str, statement_timeout_ms: int = 0):
    psycopg2 = _driver()
    kwargs = db.dsn_kwargs(application_name)
    if statement_timeout_ms:
        kwargs["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    try:
        return psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        raise DbUnavailable(_first_line(exc)) from exc


@contextmanager
def transaction(db: DbConfig, application_name: str, statement_timeout_ms: int = 0) -> Iterator:
    """A cursor inside one transaction: committed on success, rolled back on any error."""
    psycopg2 = _driver()
    conn = connect(db, application_name, statement_timeout_ms)
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except psycopg2.errors.UndefinedTable as exc:
        conn.rollback()
        raise SchemaMissing(_first_line(exc)) from exc
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        raise DbUnavailable(_first_line(exc)) from exc
    except BaseException:
        if not conn.closed:
            conn.rollback()
        raise
    finally:
        conn.close()


def schema_version(cur, service: str) -> int | None:
    """The version in ``<service>_schema``, or None when the table does not exist yet."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{service}_schema",))
    if not cur.fetchone()[0]:
        return None
    cur.execute(f"SELECT max(version) FROM {service}_schema")  # noqa: S608 - service is validated
    row = cur.fetchone()
    return row[0] if row and row[0] is not None else 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
