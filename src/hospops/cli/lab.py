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


# The lab's mail catcher and robot-webhook catcher (lab/receivers), where notifications land.
RECEIVERS = {"smtp_sink": (42325, "mail"), "webhook_sink": (42326, "webhooks")}


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start_receivers() -> None:
    """Start each receiver unless something already answers on its port (safe to repeat)."""
    base = hospops_home() / "lab"
    for name, (port, store) in RECEIVERS.items():
        if _listening(port):
            continue
        (base / store).mkdir(parents=True, exist_ok=True, mode=0o700)
        log = open(base / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "lab" / "receivers" / f"{name}.py"),
                                 "--port", str(port), "--dir", str(base / store)],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        (base / f"{name}.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 10
        while not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"{name}: listening on 127.0.0.1:{port}, storing into {base / store}")


def _stop_receivers() -> None:
    import signal

    for name in RECEIVERS:
        pid_file = hospops_home() / "lab" / f"{name}.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
            pid_file.unlink()


def _up(args) -> int:
    _ensure_lab_approver_keys()
    _playbook("lab_up.yml")
    _start_receivers()
    return _status(args, wait=60)


def _down(args) -> int:
    _stop_receivers()
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
