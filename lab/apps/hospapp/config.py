"""The config file (JSON) written by the deploy role to /etc/hospapp/<service>.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import SERVICES
from .fakedata import DEFAULT_SEED


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class DbConfig:
    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False)
    connect_timeout: int = 3
    sslmode: str = "prefer"

    def dsn_kwargs(self, application_name: str) -> dict:
        return {
            "host": self.host, "port": self.port, "dbname": self.dbname, "user": self.user,
            "password": self.password, "connect_timeout": self.connect_timeout,
            "sslmode": self.sslmode, "application_name": application_name,
            # Always UTF-8 on the wire: a cluster made under the C locale is SQL_ASCII, whose client
            # encoding would refuse the Chinese text the app stores and the migrations' comments.
            "client_encoding": "UTF8",
        }


@dataclass(frozen=True)
class Config:
    path: Path
    service: str
    node: str
    listen_host: str
    listen_port: int
    db: DbConfig
    migrate_db: DbConfig  # same as db unless the file has a "migrate_db" section (owner credentials)
    log_file: str | None
    log_level: str
    activity_log_interval: float
    fake_seed: int
    statement_timeout_ms: int


def _need(d: dict, key: str, kind, where: str):
    if key not in d:
        raise ConfigError(f"{where}: missing key {key!r}")
    value = d[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}: {key!r} must be an integer, not {value!r}")
    if kind is str and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}: {key!r} must be a non-empty string")
    return value


def _db(section: dict, where: str, base: DbConfig | None = None) -> DbConfig:
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be an object")
    merged = dict(vars(base)) if base else {}
    merged.update(section)
    for key, kind in (("host", str), ("dbname", str), ("user", str)):
        _need(merged, key, kind, where)
    port = merged.get("port", 5432)
    timeout = merged.get("connect_timeout", 3)
    if not isinstance(port, int) or not isinstance(timeout, int):
        raise ConfigError(f"{where}: port and connect_timeout must be integers")
    password = merged.get("password", "")
    if not isinstance(password, str):
        raise ConfigError(f"{where}: password must be a string")
    return DbConfig(host=merged["host"], port=port, dbname=merged["dbname"], user=merged["user"],
                    password=password, connect_timeout=timeout,
                    sslmode=str(merged.get("sslmode", "prefer")))


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"config {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must hold a JSON object")
    where = str(path)
    service = _need(raw, "service", str, where)
    if service not in SERVICES:
        raise ConfigError(f"{where}: service {service!r} is not one of {', '.join(SERVICES)}")
    port = raw.get("listen_port", 8000)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"{where}: listen_port must be an integer 0-65535")
    db = _db(_need(raw, "db", dict, where), f"{where}: db")
    migrate_db = _db(raw["migrate_db"], f"{where}: migrate_db", base=db) if "migrate_db" in raw else db
    interval = raw.get("activity_log_interval", 5)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval < 0:
        raise ConfigError(f"{where}: activity_log_interval must be a number >= 0 (0 turns it off)")
    level = str(raw.get("log_level", "INFO")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{where}: log_level must be DEBUG, INFO, WARNING or ERROR")
    seed = raw.get("fake_seed", DEFAULT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{where}: fake_seed must be an integer")
    log_file = raw.get("log_file")
    if log_file is not None and not isinstance(log_file, str):
        raise ConfigError(f"{where}: log_file must be a path or null")
    timeout_ms = raw.get("statement_timeout_ms", 5000)
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
        raise ConfigError(f"{where}: statement_timeout_ms must be an integer >= 0")
    return Config(
        path=path, service=service, node=str(raw.get("node") or "localhost"),
        listen_host=str(raw.get("listen_host", "0.0.0.0")), listen_port=port,
        db=db, migrate_db=migrate_db, log_file=log_file or None, log_level=level,
        activity_log_interval=float(interval), fake_seed=seed, statement_timeout_ms=timeout_ms,
    )
