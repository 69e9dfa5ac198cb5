"""The ``hospops`` command. Each sub-command lives in its own module in this package and
registers itself with ``register(subparsers)``; this file only finds and dispatches them."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from hospops import __version__
from hospops.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hospops",
        description="Operate the internet hospital's services under its operations contract.",
    )
    parser.add_argument("--version", action="version", version=f"hospops {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"hospops: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hospops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
