"""Errors meant for people: what failed, why, and what to do next."""

from __future__ import annotations


class UserError(Exception):
    """A failure the operator can fix; the CLI prints it without a traceback (exit 2)."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.what}\n  fix: {self.fix}" if self.fix else self.what
