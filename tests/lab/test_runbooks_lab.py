"""The fault runbooks against the running lab, for real (issue 4): an approved restart repairs a
stopped ih node and a payment works afterwards; the broken release rolls back by itself while the
other node keeps recording payments; the log bundle leaves no planted patient value; a run by hand
without an approval changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from labkit import get_json as _get
from labkit import hospops as _hospops

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB_HOME = Path(os.environ.get("HOSPOPS_LAB_HOME") or Path.home() / ".local" / "state" / "hospops")
IH1, IH2 = "http://127.0.0.1:42312", "http://127.0.0.1:42313"
sys.path.insert(0, str(REPO / "lab" / "apps"))


def _pay(base: str, ref: str) -> int | None:
    body = json.dumps({"amount_fen": 1, "method": "scan", "order_ref": ref, "probe": True}).encode()
    req = urllib.request.Request(f"{base}/api/payments", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())["id"] if resp.status == 201 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if _get(f"{IH2}/health")[0] != 200:
        pytest.skip("the lab is not up (ih2 health does not answer); run `hospops lab up`")
    home = tmp_path_factory.mktemp("hospops-home")
    (home / "lab").symlink_to(LAB_HOME / "lab")  # the lab's SSH and approver keys; a store of our own
    e = {**os.environ, "HOSPOPS_HOME": str(home), "HOSPOPS_INVENTORY": str(REPO / "inventories" / "lab"),
         "HOSPOPS_ACTOR": "oncall", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    e.pop("HOSPOPS_STORE_URL", None)
    return e


def _approved_change(env, action: str, targets: list[str], reason: str) -> str:
    argv = ["change", "request", action, "--reason", reason]
    for t in targets:
        argv += ["--target", t]
    filed = _hospops(env, *argv)
    assert filed.returncode == 0, filed.stderr
    change_id = next(w for w in (filed.stdout + filed.stderr).split() if w.startswith("CHG-")).rstrip(":")
    signed = _hospops(env, "change", "approve", change_id, "--as", "zhang-it",
                      "--key", str(LAB_HOME / "lab" / "approvers" / "zhang-it.key"))
    assert signed.returncode == 0, signed.stderr
    return change_id


def _podman(host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", "exec", f"hospops-{host}", *args], capture_output=True, text=True, timeout=60)


def _main_pid(host: str) -> str:
    return _podman(host, "systemctl", "show", "-p", "MainPID", "--value", "hospapp-ih").stdout.strip()


def _wait(url: str, want: int, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    status = _get(url)[0]
    while status != want and time.monotonic() < deadline:
        time.sleep(0.5)
        status = _get(url)[0]
    return status


def test_approved_restart_repairs_a_stopped_node(env):
    assert _podman("ih1", "systemctl", "stop", "hospapp-ih").returncode == 0
    try:
        assert _wait(f"{IH1}/health", 0) == 0                       # the probe sees it down
        status = _hospops(env, "lab", "status")
        rows = {tuple(line.split()[:3]): line.split()[3] for line in status.stdout.splitlines()[1:]}
        assert status.returncode == 1 and rows[("ih", "ih1", "direct")] != "ok", status.stdout
        assert rows[("ih", "ih2", "direct")] == "ok", status.stdout
        change = _approved_change(env, "restart", ["ih1"], "ih1 stopped answering its health check")
        run = _hospops(env, "restart", "ih", "--change", change)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "restarted, healthy after" in run.stdout and "test payment" in run.stdout
    finally:
        _podman("ih1", "systemctl", "start", "hospapp-ih")
    assert _get(f"{IH1}/health")[0] == 200
    assert _pay(IH1, "after-restart") is not None                  # the payment path works afterwards
    again = _hospops(env, "restart", "ih", "--change", change)       # one approval, one run
    assert again.returncode != 0
    assert "already" in (again.stdout + again.stderr).lower() or "used" in (again.stdout + again.stderr).lower()


def test_broken_release_rolls_back_while_the_other_node_records_payments(env):
    change = _approved_change(env, "redeploy", ["svc_ih"], "redeploy the broken build to prove rollback")
    made: list[int | None] = []
    stop = threading.Event()

    def pay_ih2() -> None:
        n = 0
        while not stop.is_set():
            made.append(_pay(IH2, f"during-roll-{n}"))
            n += 1
            time.sleep(0.1)

    payer = threading.Thread(target=pay_ih2)
    payer.start()
    try:
        started = time.monotonic()
        run = _hospops(env, "redeploy", "ih", "2.0.1-broken", "--change", change)
        took = time.monotonic() - started
    finally:
        stop.set()
        payer.join()
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "rolled back to 1.0.0" in out, out
    assert _get(f"{IH1}/health")[1].get("version") == "1.0.0"      # v1 serves again on ih1
    assert _get(f"{IH2}/health")[1].get("version") == "1.0.0"      # the roll stopped before ih2
    link = _podman("ih1", "readlink", "/opt/hospapp/ih/current").stdout.strip()
    assert link.endswith("/releases/1.0.0")
    assert made and all(pid is not None for pid in made), f"{made.count(None)} of {len(made)} payments failed"
    for pid in made:                                                 # every one is in the database
        status, doc = _get(f"{IH2}/api/payments/{pid}")
        assert status == 200 and doc.get("status") == "recorded", pid
    print(f"\nredeploy of the broken build with automatic rollback: {took:.1f} s; {len(made)} payments on ih2, 0 lost")


def test_log_bundle_holds_no_patient_value(env, tmp_path):
    from hospapp.fakedata import patient_records

    collected = _hospops(env, "logs", "collect", "--service", "ih")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    bundles = sorted((Path(env["HOSPOPS_HOME"]) / "bundles").iterdir())
    bundle = bundles[-1]
    summary = json.loads((bundle / "summary.json").read_text())
    assert set(summary["hosts"]) == {"ih1", "ih2"}
    for counts in summary["redactions_by_host"].values():
        for kind in ("id_card", "phone", "bank_card", "mrn", "name"):
            assert counts.get(kind, 0) > 0, (kind, counts)
    out = tmp_path / "x"
    for archive in bundle.glob("*.tar.gz"):
        with tarfile.open(archive) as tar:
            tar.extractall(out / archive.stem, filter="data")
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*") if p.is_file()]
    texts += [(bundle / name).read_text() for name in ("summary.json", "SHA256SUMS")]
    assert any("redaction_report.json" in str(p) for p in out.rglob("*"))
    planted = [v for p in patient_records() for v in p.values()]
    leaked = sorted({v for v in planted for t in texts if v in t})
    assert not leaked, f"patient values left in the bundle: {len(leaked)}"
    for host in ("ih1", "ih2"):                                      # nothing left on the hosts
        assert "hospops-bundle" not in _podman(host, "ls", "/var/tmp").stdout


def test_a_run_by_hand_without_approval_changes_nothing(env):
    before = _main_pid("ih2")
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", env["HOSPOPS_INVENTORY"],
                          str(REPO / "playbooks" / "restart.yml"), "--limit", "ih2", "-e", "restart_mode=always"],
                         env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode != 0
    assert "change_ticket" in run.stdout or "ticket" in run.stdout.lower()
    assert _main_pid("ih2") == before
