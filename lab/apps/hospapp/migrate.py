"""hospapp-migrate: apply or revert the release's SQL migrations, in ONE transaction per run.

    hospapp-migrate --config /etc/hospapp/ih.json status
    hospapp-migrate --config /etc/hospapp/ih.json up   [--to N] [--check]
    hospapp-migrate --config /etc/hospapp/ih.json down [--to N] [--check]

The applied version is the single row of ``<service>_schema(version int)``. A run takes a
transaction-scoped advisory lock (so two hosts migrating at once do not collide), applies every step,
updates the version and commits; if any statement fails, everything is rolled back and the database is
exactly as it was. Running ``up`` again when nothing is pending changes nothing (idempotent).

It prints one JSON object on stdout (for Ansible: ``changed``, ``from``, ``to``, and ``applied`` -- the
migrations run, a key present only when some ran) and exits
0 on success, 1 when a migration failed (nothing changed), 2 on bad usage/config, 3 when the database
cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import db
from .config import ConfigError, load_config
from .release import ReleaseError, list_migrations, load_release, release_root


class MigrateError(Exception):
    def __init__(self, message: str, code: int = 1, **extra) -> None:
        super().__init__(message)
        self.code = code
        self.extra = extra


def _ensure_schema_table(cur, service: str) -> int:
    cur.execute(f"CREATE TABLE IF NOT EXISTS {service}_schema (version integer NOT NULL)")
    cur.execute(f"SELECT version FROM {service}_schema FOR UPDATE")
    rows = cur.fetchall()
    if not rows:
        cur.execute(f"INSERT INTO {service}_schema (version) VALUES (0)")
        return 0
    if len(rows) > 1:
        raise MigrateError(f"{service}_schema holds {len(rows)} rows; it must hold exactly one")
    return rows[0][0]


def plan(action: str, current: int, available: dict[int, dict], target: int | None) -> list[int]:
    """The migration numbers to run, in order (up: ascending; down: descending)."""
    numbers = sorted(available)
    latest = numbers[-1] if numbers else 0
    if action == "up":
        to = latest if target is None else target
        if to > latest:
            raise MigrateError(f"--to {to}: this release ships migrations up to {latest}", code=2)
        steps = [n for n in numbers if current < n <= to]
        missing = [n for n in range(current + 1, to + 1) if n not in available]
        if missing:
            raise MigrateError(f"migrations {missing} are missing from this release", code=2)
        return steps
    to = current - 1 if target is None else target
    if to < 0:
        raise MigrateError("cannot go below version 0", code=2)
    if to > current:
        raise MigrateError(f"--to {to} is above the current version {current}; use up", code=2)
    steps = list(range(current, to, -1))
    unknown = [n for n in steps if "down" not in available.get(n, {})]
    if unknown:
        raise MigrateError(f"this release has no down migration for {unknown}; run down with the release "
                           "that shipped them", code=2)
    return steps


def _grant_app_user(cur, service: str, app_user: str) -> None:
    """When migrations run as an owner role, let the app's own role use the service's tables."""
    from psycopg2 import sql

    cur.execute("SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'S') AND c.relname LIKE %s",
                (f"{service}\\_%",))
    for name, kind in cur.fetchall():
        privileges = "SELECT, INSERT, UPDATE, DELETE" if kind == "r" else "USAGE, SELECT, UPDATE"
        cur.execute(sql.SQL("GRANT {} ON {} TO {}").format(
            sql.SQL(privileges), sql.Identifier(name), sql.Identifier(app_user)))


def run(config_path: str, action: str, target: int | None, check: bool, root: Path) -> dict:
    config = load_config(config_path)
    release = load_release(root)
    if release.service != config.service:
        raise MigrateError(f"this release is for {release.service!r}, the config for {config.service!r}",
                           code=2)
    service = config.service
    available = list_migrations(release.migrations_dir)
    result = {"service": service, "release": release.version, "action": action, "check": check,
              "available": sorted(available), "changed": False}
    import psycopg2

    try:
        conn = db.connect(config.migrate_db, f"hospapp-migrate-{service}@{config.node}")
    except db.DbUnavailable as exc:
        raise MigrateError(f"database unreachable: {exc}", code=3) from exc
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = '15s'")
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('hospapp-migrate'), hashtext(%s))", (service,))
            if action == "status" or check:
                current = db.schema_version(cur, service) or 0
            else:
                current = _ensure_schema_table(cur, service)
            result["from"] = current
            result["latest"] = max(available, default=0)
            if action == "status":
                result["to"] = current
                result["pending"] = [n for n in sorted(available) if n > current]
                result["ahead"] = current > result["latest"]
                conn.rollback()
                return result
            steps = plan(action, current, available, target)
            result["to"] = (steps[-1] if action == "up" else steps[-1] - 1) if steps else current
            result["changed"] = bool(steps)
            if steps:  # the key is present only when something runs: `'applied' in stdout` means changed
                result["applied"] = [f"{n:04d}_{available[n]['name']}.{action}" for n in steps]
            if current > result["latest"] and action == "up":
                result["note"] = f"database schema {current} is ahead of this release ({result['latest']})"
            if check or not steps:
                conn.rollback()
                return result
            for n in steps:
                path = available[n][action]
                try:
                    cur.execute(path.read_text(encoding="utf-8"))
                except psycopg2.Error as exc:
                    message = (exc.pgerror or str(exc)).strip().splitlines()[0]
                    raise MigrateError(f"migration {path.name} failed: {message}; rolled back, the database "
                                       f"is unchanged at version {current}", failed=path.name,
                                       sqlstate=exc.pgcode) from exc
            cur.execute(f"UPDATE {service}_schema SET version = %s", (result["to"],))
            if config.migrate_db.user != config.db.user:
                _grant_app_user(cur, service, config.db.user)
        conn.commit()
        return result
    except BaseException:
        if not conn.closed:
            conn.rollback()
        raise
    finally:
        conn.close()


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hospapp-migrate", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="the app's JSON config (db / migrate_db sections)")
    parser.add_argument("action", choices=("status", "up", "down"))
    parser.add_argument("--to", type=int, default=None, help="target version (up: latest; down: one below)")
    parser.add_argument("--check", action="store_true", help="report what would run, change nothing")
    args = parser.parse_args(argv)
    if root is None:
        root = release_root()
    try:
        result = run(args.config, args.action, args.to, args.check, root)
    except (ConfigError, ReleaseError) as exc:
        print(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        print(f"hospapp-migrate: {exc}", file=sys.stderr)
        return 2
    except MigrateError as exc:
        print(json.dumps({"ok": False, "error": str(exc), **exc.extra}, ensure_ascii=False))
        print(f"hospapp-migrate: {exc}", file=sys.stderr)
        return exc.code
    print(json.dumps({"ok": True, **result}, ensure_ascii=False))
    return 0
