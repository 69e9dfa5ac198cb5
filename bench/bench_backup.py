#!/usr/bin/env python3
"""Benchmark pgBackRest as fuhosp.ops.pg_backup sets it up, against pg_basebackup of the same data, run by hand:

    .venv/bin/python bench/bench_backup.py [--scale 50] [--runs 3] [--rpo-seconds 75] [--keep]

Needs the lab image and network (`hospops lab up`). It starts two throwaway containers on the lab network (a
database host and an off-site repository host), applies the real role (encrypted repository, lz4, process-max 2,
asynchronous archiving, archive_timeout 60), loads pgbench at the given scale into a database `bench`, then prints:

- full backup: pgBackRest (over SSH to the repository host, encrypted) against local `pg_basebackup -Ft -X fetch`,
  medians of --runs and the ratio;
- restore: `pgbackrest restore` into an empty directory against `tar -x` of the base backup, medians and ratio;
- RPO: pgbench writes 5 transactions a second; after --rpo-seconds PostgreSQL is killed (-9); the repository is
  restored to the end of the archive and the newest transaction there is compared with the newest one the
  crashed primary had committed (read after its own crash recovery).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOME = os.environ.get("HOSPOPS_HOME") or str(Path.home() / ".local" / "state" / "hospops")
DB, RP = "hospops-bench-db", "hospops-bench-repo"
PG = "/usr/lib/postgresql/15/bin"

SETUP = """\
- name: Database host for the benchmark
  hosts: bench_db
  gather_facts: false
  tasks:
    - name: Create the cluster
      ansible.builtin.command:
        argv: [pg_createcluster, --locale, C.UTF-8, "15", main, --start, --, --data-checksums]
        creates: /etc/postgresql/15/main/postgresql.conf
    - name: Set up backups
      ansible.builtin.include_role:
        name: fuhosp.ops.pg_backup
      vars:
        pg_backup_repo_host: bench_repo
        pg_backup_repo_address: %(rp)s
        pg_backup_db_address: %(db)s
        pg_backup_cipher_pass: BenchOnlyPassphrase0123456789abcdef
        pg_backup_schedule: {}
        pg_backup_archive_timeout: 60
"""


def run(*argv: str, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


def px(container: str, cmd: str, user: str = "postgres", timeout: float = 1800, check: bool = True):
    return run("podman", "exec", "--user", user, container, "bash", "-c", cmd, timeout=timeout, check=check)


def timed(fn) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def setup(scale: int) -> None:
    for c in (DB, RP):
        run("podman", "rm", "-f", c, check=False)
        run("podman", "run", "-d", "--name", c, "--hostname", c, "--network", "hospops-lab", "--systemd=always",
            "localhost/hospops-lab:bookworm", "/sbin/init")
    for c in (DB, RP):
        run("podman", "exec", c, "systemctl", "is-system-running", "--wait", check=False)
    with tempfile.TemporaryDirectory() as tmp:
        inv, book = Path(tmp) / "inv.json", Path(tmp) / "setup.yml"
        inv.write_text(json.dumps({"all": {"hosts": {
            "bench_db": {"ansible_connection": "containers.podman.podman", "ansible_host": DB},
            "bench_repo": {"ansible_connection": "containers.podman.podman", "ansible_host": RP}}}}))
        book.write_text(SETUP % {"db": DB, "rp": RP})
        env = {**os.environ, "HOSPOPS_HOME": HOME, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
               "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"), "PATH": f"{BIN}:{os.environ['PATH']}"}
        p = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv), str(book)], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            sys.exit("role setup failed:\n" + p.stdout[-4000:])
    px(DB, f"createdb bench && pgbench -i -q -s {scale} bench")
    px(DB, "psql -Atc CHECKPOINT && pgbackrest --stanza=hospital check")


def bench_backups(runs: int) -> tuple[list[float], list[float], list[float], list[float]]:
    pgb, base, rest, untar = [], [], [], []
    for _ in range(runs):
        pgb.append(timed(lambda: px(RP, "pgbackrest --stanza=hospital --type=full backup", user="pgbackrest")))
        px(DB, "rm -rf /var/tmp/bb")
        base.append(timed(lambda: px(DB, "pg_basebackup -D /var/tmp/bb -Ft -X fetch -c fast")))
    for _ in range(runs):
        px(DB, "rm -rf /var/tmp/rs && mkdir -m 700 /var/tmp/rs")
        rest.append(timed(lambda: px(DB, "pgbackrest --stanza=hospital --pg1-path=/var/tmp/rs --type=immediate restore")))
        px(DB, "rm -rf /var/tmp/ut && mkdir -m 700 /var/tmp/ut")
        untar.append(timed(lambda: px(DB, "tar -C /var/tmp/ut -xf /var/tmp/bb/base.tar")))
    px(DB, "rm -rf /var/tmp/rs /var/tmp/ut /var/tmp/bb")
    return pgb, base, rest, untar


def bench_rpo(seconds: int) -> float:
    px(DB, "nohup pgbench -n -c 1 -R 5 -T 600 bench >/var/tmp/pgbench.log 2>&1 &")
    time.sleep(seconds)
    px(DB, "pkill -9 -x pgbench; pkill -9 -u postgres -x postgres", user="root", check=False)
    time.sleep(3)  # let the asynchronous archiver finish what was already handed to it
    px(DB, "rm -rf /var/tmp/rpo && pgbackrest --stanza=hospital --pg1-path=/var/tmp/rpo --type=default restore")
    px(DB, f": > /var/tmp/rpo/postgresql.conf; cp /etc/postgresql/15/main/pg_hba.conf /var/tmp/rpo/;"
           f" {PG}/pg_ctl -D /var/tmp/rpo -w -t 300 -l /var/tmp/rpo.log"
           " -o '-c port=5499 -c unix_socket_directories=/tmp -c archive_mode=off' start")
    for _ in range(120):
        p = px(DB, "psql -h /tmp -p 5499 -d bench -Atc 'SELECT pg_is_in_recovery()'", check=False)
        if p.stdout.strip() == "f":
            break
        time.sleep(1)
    restored = float(px(DB, "psql -h /tmp -p 5499 -d bench -Atc \"SELECT extract(epoch FROM max(mtime)) FROM pgbench_history\"").stdout)
    px(DB, f"{PG}/pg_ctl -D /var/tmp/rpo -m fast stop; rm -rf /var/tmp/rpo")
    px(DB, "systemctl start postgresql@15-main", user="root")
    time.sleep(2)
    live = float(px(DB, "psql -d bench -Atc \"SELECT extract(epoch FROM max(mtime)) FROM pgbench_history\"").stdout)
    return live - restored


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rpo-seconds", type=int, default=75)
    ap.add_argument("--keep", action="store_true", help="leave the containers")
    args = ap.parse_args()
    try:
        t = timed(lambda: setup(args.scale))
        size = px(DB, "psql -d bench -Atc \"SELECT pg_size_pretty(pg_database_size('bench'))\"").stdout.strip()
        print(f"setup (containers, role, pgbench -s {args.scale}, {size}): {t:.0f} s")
        pgb, base, rest, untar = bench_backups(args.runs)
        m = statistics.median
        print(f"full backup   pgBackRest (encrypted, lz4, pm2, to the repo host) median {m(pgb):6.2f} s  {['%.2f' % x for x in pgb]}")
        print(f"              pg_basebackup -Ft -X fetch (local, plain)          median {m(base):6.2f} s  {['%.2f' % x for x in base]}")
        print(f"              ratio pgBackRest / pg_basebackup                    {m(pgb) / m(base):6.2f}")
        print(f"restore       pgBackRest restore (from the repo host)             median {m(rest):6.2f} s  {['%.2f' % x for x in rest]}")
        print(f"              tar -x of the base backup                           median {m(untar):6.2f} s  {['%.2f' % x for x in untar]}")
        print(f"              ratio                                               {m(rest) / m(untar):6.2f}")
        rpo = bench_rpo(args.rpo_seconds)
        print(f"RPO           kill -9 after {args.rpo_seconds} s of 5 tps, restore to end of archive: {rpo:.1f} s of"
              " transactions lost (archive_timeout 60)")
    finally:
        if not args.keep:
            for c in (DB, RP):
                run("podman", "rm", "-f", c, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
