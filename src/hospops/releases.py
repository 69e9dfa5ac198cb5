"""The release tarballs on the control node: where they are (inventory ``hospops_releases_dir``),
the index beside them (``index.json``) and their checksums.

The index, when there is one, is ``{"format": 1, "releases": [{"service", "version", "file"
(relative to the directory), "sha256", "size", "top_dir", "schema_required", "fault", "note"}]}``
(``lab/apps/build_releases.py`` writes it for the lab).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hospops.errors import UserError

INDEX_NAME = "index.json"


def releases_dir(inv) -> Path | None:
    """The inventory's ``hospops_releases_dir``, or None when it declares none."""
    value = inv.var("hospops_releases_dir", None) if inv is not None else None
    return Path(str(value)) if value else None


def load_index(directory: Path | None) -> list[dict[str, Any]] | None:
    """The index's releases, or None when there is no index (an index is optional)."""
    if directory is None:
        return None
    path = directory / INDEX_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"release index {path} is not readable JSON ({exc})",
                        "rebuild it (in the lab: python3 lab/apps/build_releases.py --out DIR)") from exc
    if not isinstance(doc, dict) or doc.get("format") != 1 or not isinstance(doc.get("releases"), list):
        raise UserError(f"release index {path} is not format 1 ({{\"format\": 1, \"releases\": [...]}})",
                        "rebuild it, or remove it to skip the index checks")
    return [r for r in doc["releases"] if isinstance(r, dict)]


def find(index: list[dict[str, Any]] | None, service: str, version: str) -> dict[str, Any] | None:
    for entry in index or []:
        if entry.get("service") == service and str(entry.get("version")) == version:
            return entry
    return None


def versions(index: list[dict[str, Any]] | None, service: str) -> list[str]:
    return [str(e.get("version")) for e in index or [] if e.get("service") == service]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
