"""hospops lab up|down|status: the local lab of the four services in systemd containers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from hospops import health
from hospops.errors import UserError
from hospops.inventory import load
from hospops.paths import INVENTORIES_DIR, PLAYBOOKS_DIR, REPO_ROOT, hospops_home


def register(sub) -> None:
    p = sub.add_parser("lab", help="bring the local lab up or down; show its health")
    s = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = s.add_parser("up", help="create the containers, database, services and gateway (idempotent)")
    up.set_defaults(func=_up)
    down = s.add_parser("down", help="remove the lab's containers and network")
    down.set_defaults(func=_down)
    st = s.add_parser("status", help="health of every service object, read from the real services")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_status)


def _playbook(name: str) -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "HOSPOPS_HOME": str(hospops_home())}
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i", str(INVENTORIES_DIR / "lab"), str(PLAYBOOKS_DIR / name)]
    started = time.monotonic()
    if subprocess.run(argv, cwd=REPO_ROOT, env=env).returncode != 0:
        raise UserError(f"{name} failed (see the task output above)",
                        "fix what the failed task names, then run it again: it is safe to repeat")
    print(f"{name}: done in {time.monotonic() - started:.0f} s")


def _ensure_lab_approver_keys() -> None:
    """The lab's approvers sign with keys made here; production keys never live on this machine."""
    try:
        from hospops.keys import LAB_APPROVERS, ensure_keypair
    except ImportError:  # the change gate is not installed in this build
        return
    for name in LAB_APPROVERS:
        ensure_keypair(name, hospops_home() / "lab" / "approvers")


def _up(args) -> int:
    _ensure_lab_approver_keys()
    _playbook("lab_up.yml")
    return _status(args, wait=60)


def _down(args) -> int:
    _playbook("lab_down.yml")
    return 0


def _status(args, wait: float = 0) -> int:
    inv = load(INVENTORIES_DIR / "lab")
    deadline = time.monotonic() + wait
    rows = health.check(inv)
    while wait and time.monotonic() < deadline and any(r.status != "ok" for r in rows):
        time.sleep(2)
        rows = health.check(inv)
    if getattr(args, "json", False):
        import json

        print(json.dumps([r.__dict__ for r in rows], ensure_ascii=False, indent=2))
    else:
        print(health.render(rows))
    return 0 if all(r.status == "ok" for r in rows) else 1
