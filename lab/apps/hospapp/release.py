"""What this release is: read from the release directory's VERSION and RELEASE.json.

A release tree (as unpacked from ``hospapp-<service>-<version>.tar.gz``) looks like::

    bin/hospapp  bin/hospapp-migrate  VERSION  RELEASE.json  migrations/NNNN_name.{up,down}.sql
    lib/hospapp/...
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")


class ReleaseError(Exception):
    pass


@dataclass(frozen=True)
class Release:
    root: Path
    service: str
    version: str
    schema_required: int  # the newest migration shipped; the app needs the database at least there
    fault: str | None  # None, "broken" (health 500, payments fail) or "badmigration"

    @property
    def migrations_dir(self) -> Path:
        return self.root / "migrations"

    def has(self, feature_schema: int) -> bool:
        """True when this release's code uses the columns that migration ``feature_schema`` adds."""
        return self.schema_required >= feature_schema


def release_root() -> Path:
    """The release this code runs from: two levels up from the package (``<release>/lib/hospapp``)."""
    return Path(__file__).resolve().parents[2]


def load_release(root: Path) -> Release:
    try:
        version = (root / "VERSION").read_text(encoding="utf-8").strip()
        meta = json.loads((root / "RELEASE.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{root} is not a hospapp release: {exc}") from exc
    return Release(
        root=root,
        service=str(meta["service"]),
        version=version,
        schema_required=int(meta["schema_required"]),
        fault=meta.get("fault"),
    )


def list_migrations(directory: Path) -> dict[int, dict[str, Path]]:
    """{number: {"name": ..., "up": path, "down": path}} for the files in ``directory``."""
    found: dict[int, dict] = {}
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        m = MIGRATION_RE.match(path.name)
        if not m:
            continue
        entry = found.setdefault(int(m.group(1)), {"name": m.group(2)})
        entry[m.group(3)] = path
    return found
