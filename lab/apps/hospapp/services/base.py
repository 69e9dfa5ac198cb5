"""What every service has, and input checks that answer 400 with a readable message."""

from __future__ import annotations

import random
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..web import HttpError, Router

if TYPE_CHECKING:
    from ..app import App

DEPARTMENTS = ("内科", "外科", "儿科", "妇产科", "心内科", "呼吸内科", "消化内科", "骨科", "眼科", "皮肤科")


class Service:
    name = ""
    main_table = ""

    def __init__(self, app: App) -> None:
        self.app = app

    def register(self, router: Router) -> None:
        raise NotImplementedError

    def activity(self, rng: random.Random) -> str:
        """A line of everyday activity for the background log."""
        raise NotImplementedError


def want_str(body: dict[str, Any], key: str, *, max_len: int = 64, default: str | None = None,
             choices: tuple[str, ...] | None = None) -> str:
    value = body.get(key, default)
    if value is None:
        raise HttpError(400, f"{key!r} is required")
    if not isinstance(value, str) or not value.strip():
        raise HttpError(400, f"{key!r} must be a non-empty string")
    if len(value) > max_len:
        raise HttpError(400, f"{key!r} is longer than {max_len} characters")
    if choices is not None and value not in choices:
        raise HttpError(400, f"{key!r} must be one of {', '.join(choices)}")
    return value


def want_int(body: dict[str, Any], key: str, *, low: int, high: int) -> int:
    value = body.get(key)
    if value is None:
        raise HttpError(400, f"{key!r} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise HttpError(400, f"{key!r} must be an integer")
    if not low <= value <= high:
        raise HttpError(400, f"{key!r} must be between {low} and {high}")
    return value


def want_bool(body: dict[str, Any], key: str, default: bool = False) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise HttpError(400, f"{key!r} must be true or false")
    return value


def want_datetime(body: dict[str, Any], key: str) -> datetime:
    text = want_str(body, key, max_len=40)
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise HttpError(400, f"{key!r} must be an ISO date-time such as 2026-12-01T09:30") from exc


def query_limit(query: dict[str, str], default: int = 20, high: int = 200) -> int:
    text = query.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= high:
        raise HttpError(400, f"limit must be an integer 1-{high}")
    return int(text)


def iso(value) -> str | None:
    return value.isoformat() if value is not None else None
