"""Inspection wall time and control-node CPU for 1, 4 and all lab hosts at several fork counts.

Run by hand against the running lab (`hospops lab up`):

    .venv/bin/python bench/bench_inspection.py [--light] [--forks 1,4,10] [--repeat 1]

Each cell runs `ansible-playbook playbooks/inspect.yml` (the real play, over SSH with ControlPersist as
configured in ansible.cfg) and measures wall time and the CPU seconds of the control-node processes
(user + system of ansible-playbook and its children). The baseline is 1 host with 1 fork, measured in
the same run; every row prints its ratio to it, and the per-host wall time. Fork counts above the
number of hosts are capped at it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOST_SETS = {"1": "db", "4": "db,gateway,ih1,portal", "all": "all"}


def one_run(limit: str, forks: int, light: bool) -> tuple[float, float]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections")}
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(REPO / "inventories" / "lab"),
            str(REPO / "playbooks" / "inspect.yml"), "--limit", limit, "-f", str(forks),
            "-e", f"inspection_light={'true' if light else 'false'}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"inspection failed (limit {limit}, forks {forks}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--light", action="store_true", help="the daily light inspection instead of the full one")
    ap.add_argument("--forks", default="1,4,10")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell (median reported)")
    args = ap.parse_args()
    forks = [int(f) for f in args.forks.split(",")]
    one_run("db", 1, args.light)  # warm-up: SSH control masters, page cache
    rows = []
    for label, limit in HOST_SETS.items():
        n = 8 if label == "all" else int(label)
        for f in sorted({min(f, n) for f in forks}):
            samples = [one_run(limit, f, args.light) for _ in range(args.repeat)]
            rows.append((label, n, f, statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)))
    base_wall, base_cpu = next((r[3], r[4]) for r in rows if r[0] == "1" and r[2] == forks[0])
    kind = "light" if args.light else "full"
    print(f"inspection ({kind}) on the lab; baseline = 1 host, {forks[0]} fork(s): {base_wall:.1f} s wall, {base_cpu:.1f} s CPU")
    print(f"{'hosts':>5} {'forks':>5} {'wall s':>8} {'x base':>7} {'s/host':>7} {'CPU s':>7} {'x base':>7} {'CPU s/host':>10}")
    for label, n, f, wall, cpu in rows:
        print(f"{label:>5} {f:>5} {wall:>8.1f} {wall / base_wall:>7.2f} {wall / n:>7.1f} {cpu:>7.1f} {cpu / base_cpu:>7.2f} {cpu / n:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
