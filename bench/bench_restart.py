"""Restart of one ih node: through hospops (change gate, restart, health, test payment) against a bare
`ssh HOST systemctl restart` plus a health poll, side by side in one invocation, on the running lab.

    .venv/bin/python bench/bench_restart.py [--rounds 5]

Prints both medians, the ratio and the product's overhead per node (target: under 3 s).
The approvals are signed before the clock starts: a person's signing time is not the tool's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAB = Path(os.environ.get("HOSPOPS_LAB_HOME") or Path.home() / ".local" / "state" / "hospops") / "lab"
HEALTH = "http://127.0.0.1:42312/health"


def healthy() -> bool:
    try:
        with urllib.request.urlopen(HEALTH, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def bare_restart() -> float:
    ssh = ["ssh", "-i", str(LAB / "ssh" / "id_ed25519"), "-p", "42212", "-o", "BatchMode=yes",
           "-o", f"UserKnownHostsFile={LAB / 'ssh' / 'known_hosts'}",
           "root@127.0.0.1", "systemctl", "restart", "hospapp-ih"]
    start = time.monotonic()
    subprocess.run(ssh, check=True, capture_output=True)
    while not healthy():
        time.sleep(0.1)
    return time.monotonic() - start


def hospops(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hospops", *args], env=env, capture_output=True, text=True, cwd=REPO)


def product_restart(env: dict) -> float:
    filed = hospops(env, "change", "request", "restart", "--target", "ih1", "--reason", "benchmark restart of ih1")
    change = next(w for w in (filed.stdout + filed.stderr).split() if w.startswith("CHG-")).rstrip(":")
    hospops(env, "change", "approve", change, "--as", "zhang-it", "--key", str(LAB / "approvers" / "zhang-it.key"))
    start = time.monotonic()
    run = hospops(env, "restart", "ih", "--change", change, "--force")
    took = time.monotonic() - start
    if run.returncode != 0:
        sys.exit(f"hospops restart failed:\n{run.stdout}\n{run.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not healthy():
        sys.exit("the lab is not up: run `hospops lab up`")
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "lab").symlink_to(LAB)
        env = {**os.environ, "HOSPOPS_HOME": home, "HOSPOPS_ACTOR": "bench"}
        env.pop("HOSPOPS_STORE_URL", None)
        bare, product = [], []
        for _ in range(args.rounds):  # interleaved, so drift in machine load hits both alike
            bare.append(bare_restart())
            product.append(product_restart(env))
    b, p = statistics.median(bare), statistics.median(product)
    print(f"bare ssh restart + health poll : median {b:6.2f} s  ({', '.join(f'{x:.2f}' for x in bare)})")
    print(f"hospops restart (gate+health+pay): median {p:6.2f} s  ({', '.join(f'{x:.2f}' for x in product)})")
    print(f"ratio {p / b:.2f}x; overhead per node {p - b:.2f} s (target < 3 s)")


if __name__ == "__main__":
    main()
