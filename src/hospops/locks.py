"""Host locks: one changing run per host at a time, held by a process that can be checked for life.

A lock row names its holder process by node, pid and the process start time (from /proc), so a
lock whose process has died (or whose pid was reused by another program) is recognised as stale
and released, with an audit record. Locks held from another node are never guessed at.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from typing import Iterable

from hospops import audit
from hospops.errors import UserError


def node() -> str:
    return socket.gethostname()


def proc_start(pid: int) -> str | None:
    """The boot id and start time (clock ticks since boot) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()
    except OSError:
        return None
    return f"{boot}:{stat.rsplit(')', 1)[-1].split()[19]}"


def me() -> tuple[str, int, str]:
    pid = os.getpid()
    return node(), pid, proc_start(pid) or "unknown"


def holder_alive(lock: dict) -> bool:
    if lock["node"] != node():
        return True  # cannot tell from here: assume it lives
    return proc_start(int(lock["pid"])) == lock["proc_start"]


def acquire(store, hosts: Iterable[str], run_id: str, holder: str) -> list[str]:
    """Lock every host for ``run_id`` or none; refuse naming who holds a host and since when."""
    hosts = sorted(set(hosts))
    here, pid, start = me()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with store.transaction():
        busy = []
        for host in hosts:
            lock = store.one("SELECT * FROM host_locks WHERE host = :h", {"h": host})
            if lock is None:
                continue
            if holder_alive(lock):
                busy.append(lock)
            else:
                store.execute("DELETE FROM host_locks WHERE host = :h AND run_id = :r", {"h": host, "r": lock["run_id"]})
                audit.record(store, "lock.stale_released", host,
                             {"run_id": lock["run_id"], "holder": lock["holder"], "pid": lock["pid"], "since": lock["since"]},
                             actor=holder)
        if busy:
            who = "; ".join(f"{b['host']} by {b['holder']} (run {b['run_id']}, pid {b['pid']} on {b['node']}, since {b['since']})"
                            for b in busy)
            raise UserError(f"host(s) busy with another change: {who}",
                            "wait for that run to finish, or coordinate with its operator")
        for host in hosts:
            store.execute("INSERT INTO host_locks (host, run_id, holder, node, pid, proc_start, since)"
                          " VALUES (:h, :r, :who, :node, :pid, :start, :since)",
                          {"h": host, "r": run_id, "who": holder, "node": here, "pid": pid, "start": start, "since": now})
    return hosts


def release(store, run_id: str) -> int:
    with store.transaction():
        return store.execute("DELETE FROM host_locks WHERE run_id = :r", {"r": run_id})


def held(store) -> list[dict]:
    return store.query("SELECT * FROM host_locks ORDER BY host")
