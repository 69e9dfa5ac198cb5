"""Approver keys: Ed25519 key pairs, the private half 0600 on the approver's machine, the public
half (one OpenSSH line) pasted into the inventory's ``hospops_approvers``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hospops._collection import approval
from hospops.errors import UserError
from hospops.paths import hospops_home

#: Approvers the lab declares (inventories/lab/group_vars/all/approvers.yml); the lab bring-up
#: creates their key pairs with ``ensure_keypair(name, HOSPOPS_HOME / "lab" / "approvers")``.
LAB_APPROVERS: tuple[str, ...] = ("zhang-it", "li-outpatient", "wang-vendor")

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise UserError(f"approver name {name!r} is not usable",
                        "use lower-case letters, digits, '.', '_' or '-' (e.g. zhang-it)")
    return name


def key_dir() -> Path:
    return hospops_home() / "keys"


def ensure_keypair(name: str, directory: Path) -> Path:
    """Create ``NAME.key`` (0600, PKCS8 PEM) and ``NAME.pub`` (OpenSSH line) if absent; return the .pub path."""
    ap = approval()
    check_name(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    if key_path.exists():
        key = ap.load_private_key(key_path.read_bytes())
    else:
        key = ap.new_private_key()
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            key = ap.load_private_key(key_path.read_bytes())
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(ap.private_key_pem(key))
    line = ap.public_key_line(key, f"hospops:{name}") + "\n"
    if not pub_path.exists() or pub_path.read_text() != line:
        tmp = pub_path.with_suffix(".pub.tmp")
        tmp.write_text(line)
        tmp.replace(pub_path)
    return pub_path


def find_private_key(name: str, path: str | Path | None = None) -> Path:
    """The approver's private key: ``path`` if given, else HOSPOPS_HOME/keys/NAME.key (then the lab's)."""
    if path:
        candidates = [Path(path).expanduser()]
    else:
        candidates = [key_dir() / f"{name}.key", hospops_home() / "lab" / "approvers" / f"{name}.key"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UserError(f"no private key for {name} at {candidates[0]}",
                    f"pass --key PATH, or create one with `hospops keys new {name}` and declare its public key")


def load_private_key(path: Path):
    ap = approval()
    if path.stat().st_mode & 0o077:
        raise UserError(f"private key {path} is readable by others", f"chmod 600 {path}")
    try:
        return ap.load_private_key(path.read_bytes())
    except ValueError as exc:
        raise UserError(f"{path} is not an Ed25519 private key ({exc})", "use a key made by `hospops keys new`") from exc
