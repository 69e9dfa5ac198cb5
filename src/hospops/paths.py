"""Where things live: the repository, the collection, and the state directory (HOSPOPS_HOME)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = REPO_ROOT / "collections"
COLLECTION_ROOT = COLLECTIONS_PATH / "ansible_collections" / "fuhosp" / "ops"
PLAYBOOKS_DIR = REPO_ROOT / "playbooks"
INVENTORIES_DIR = REPO_ROOT / "inventories"


def hospops_home() -> Path:
    """The state directory: store, run artifacts, gate ledger, lab keys. Created 0700 on first use."""
    home = Path(os.environ.get("HOSPOPS_HOME") or Path.home() / ".local" / "state" / "hospops")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def default_inventory() -> Path:
    return Path(os.environ.get("HOSPOPS_INVENTORY") or INVENTORIES_DIR / "lab")
