#!/usr/bin/env python3
"""Build the stand-in apps' release tarballs, deterministically.

    python3 lab/apps/build_releases.py [--out DIR]      (default DIR: lab/dist/releases, git-ignored)

Writes ``DIR/<service>/hospapp-<service>-<version>.tar.gz`` and a ``.sha256`` beside each (sha256sum
format), and ``DIR/index.json`` listing service, version, file, sha256. Entries are sorted, owner
0:0, mtime fixed, gzip header mtime 0 and no file name, so the same sources always give the same
bytes and checksums. Files whose content is unchanged are not rewritten (a re-run changes nothing).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = HERE / "hospapp"
BIN_DIR = HERE / "bin"
MIGRATIONS_DIR = HERE / "migrations"
DEFAULT_OUT = HERE.parent / "dist" / "releases"
SERVICES = ("portal", "ih", "waiting", "journey")
FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z: every entry carries it, whatever the checkout's times


@dataclass(frozen=True)
class ReleaseSpec:
    version: str
    schema: int  # migrations 0001..schema are shipped; the app requires the database at this version
    fault: str | None  # None, "broken" or "badmigration"
    note: str


RELEASES = (
    ReleaseSpec("1.0.0", 1, None, "first release"),
    ReleaseSpec("2.0.0", 2, None, "adds a backward-compatible column (migration 0002, with a down)"),
    ReleaseSpec("2.0.1-broken", 2, "broken", "DELIBERATELY BROKEN: listens, but /health answers 500 and "
                                             "the service's API fails"),
    ReleaseSpec("2.1.0-badmigration", 3, "badmigration", "DELIBERATELY BROKEN: migration 0003 fails "
                                                         "half-way (must leave the database as it was)"),
)


def _migration_files(service: str, schema: int) -> list[Path]:
    files = []
    for path in sorted((MIGRATIONS_DIR / service).glob("*.sql")):
        if int(path.name[:4]) <= schema:
            files.append(path)
    numbers = {int(p.name[:4]) for p in files}
    if numbers != set(range(1, schema + 1)):
        raise SystemExit(f"build_releases: {service} needs migrations 1..{schema}, found {sorted(numbers)}")
    return files


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def release_members(service: str, spec: ReleaseSpec) -> list[tuple[str, bytes | None, int]]:
    """(path inside the tarball, content or None for a directory, mode), sorted by path."""
    top = f"hospapp-{service}-{spec.version}"
    meta = {"service": service, "version": spec.version, "schema_required": spec.schema,
            "fault": spec.fault, "note": spec.note}
    members: dict[str, tuple[bytes | None, int]] = {
        "VERSION": (spec.version.encode() + b"\n", 0o644),
        "RELEASE.json": (json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n", 0o644),
    }
    for name in ("hospapp", "hospapp-migrate"):
        members[f"bin/{name}"] = ((BIN_DIR / name).read_bytes(), 0o755)
    for path in _migration_files(service, spec.schema):
        members[f"migrations/{path.name}"] = (path.read_bytes(), 0o644)
    for path in _package_files():
        members[f"lib/hospapp/{path.relative_to(PACKAGE_DIR).as_posix()}"] = (path.read_bytes(), 0o644)
    dirs = {top}
    for rel in members:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add(f"{top}/{'/'.join(parts[:i])}")
    out: list[tuple[str, bytes | None, int]] = [(d, None, 0o755) for d in dirs]
    out += [(f"{top}/{rel}", data, mode) for rel, (data, mode) in members.items()]
    return sorted(out, key=lambda m: m[0])


def build_tarball(service: str, spec: ReleaseSpec) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data, mode in release_members(service, spec):
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, mode, 0, 0, "root", "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def build(out: Path, services: tuple[str, ...] = SERVICES) -> list[dict]:
    """Build every release of ``services`` into ``out``; return the index entries."""
    index = []
    for service in services:
        for spec in RELEASES:
            data = build_tarball(service, spec)
            digest = hashlib.sha256(data).hexdigest()
            name = f"hospapp-{service}-{spec.version}.tar.gz"
            target = out / service / name
            changed = _write_if_changed(target, data)
            changed |= _write_if_changed(target.with_name(name + ".sha256"), f"{digest}  {name}\n".encode())
            index.append({"service": service, "version": spec.version, "file": f"{service}/{name}",
                          "sha256": digest, "size": len(data), "top_dir": f"hospapp-{service}-{spec.version}",
                          "schema_required": spec.schema, "fault": spec.fault, "note": spec.note,
                          "changed": changed})
    listing = [{k: v for k, v in e.items() if k != "changed"} for e in index]
    _write_if_changed(out / "index.json",
                      (json.dumps({"format": 1, "releases": listing}, indent=2, ensure_ascii=False) + "\n").encode())
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--service", action="append", choices=SERVICES, help="only this service (repeatable)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    index = build(args.out, tuple(args.service) if args.service else SERVICES)
    for e in index:
        print(f"{'built    ' if e['changed'] else 'unchanged'} {e['file']}  {e['sha256'][:16]}")
    print(f"{len(index)} releases in {args.out} ({time.monotonic() - started:.2f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
