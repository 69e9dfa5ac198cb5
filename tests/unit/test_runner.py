"""run_playbook through ansible-runner: gate, records, host locks, and the secret canary."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hospops import audit, changes, locks
from hospops.errors import UserError
from hospops.runner import run_playbook
from hospops.store import open_store

CANARY_API = "canary-7f3a9c1e-API-s3cr3t"
CANARY_CLI = "canary-51d2b8e0-CLI-s3cr3t"

SECRET_PLAY = """\
- name: Restart with a database password
  hosts: web
  gather_facts: false
  tasks:
    - name: Verify the hospital's approval for this change
      fuhosp.ops.change_gate:
        action: restart
    - name: Use the password (never logged)
      ansible.builtin.copy:
        dest: "{{ mark_dir }}/{{ inventory_hostname }}"
        content: "{{ app_db_password }}"
        mode: "0600"
      no_log: true
"""


@pytest.fixture()
def world(approval_lab, tmp_path):
    store = open_store(f"sqlite:///{Path(os.environ['HOSPOPS_HOME']) / 'hospops.db'}")
    play = approval_lab.root / "secret.yml"
    play.write_text(SECRET_PLAY)
    yield approval_lab, store, approval_lab.policy(), play
    store.close()


def _approved(lab, store, policy, **over) -> str:
    args = {"action": "restart", "targets": ["web"], "reason": "portal hangs on login", "requester": "dave"}
    args.update(over)
    change = changes.request(store, policy, **args)
    changes.decide(store, policy, change.id, approver="bob", key=lab.key("bob"), decision="approve")
    return change.id


def _files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
            hits.append(str(path))
    return hits


def test_run_under_a_change_and_the_secret_canary(world):
    lab, store, policy, play = world
    home = Path(os.environ["HOSPOPS_HOME"])
    change_id = _approved(lab, store, policy)
    lines: list[str] = []
    result = run_playbook(str(play), change_id=change_id, inventory=lab.inventory, actor="dave", store=store,
                          extravars={"app_db_password": CANARY_API}, progress=lines.append)
    assert result.ok, (result, lines)
    assert result.gate and result.gate["decision"] == "pass"
    assert set(result.stats) == {"h1", "h2"} and result.stats["h1"]["ok"] == 2
    assert any("h1" in line and "Verify the hospital" in line for line in lines)  # live progress
    assert (lab.marks / "h1").read_text() == CANARY_API  # the secret did reach the play
    row = store.one("SELECT * FROM runs WHERE id = :id", {"id": result.run_id})
    assert row["status"] == "successful" and row["rc"] == 0 and json.loads(row["extravar_names"]) == ["app_db_password"]
    assert result.artifacts_dir.is_dir() and (result.artifacts_dir / "stdout").exists()
    assert locks.held(store) == []

    # the same approval a second time: the orchestrator starts the run, the gate refuses it
    again = run_playbook(str(play), change_id=change_id, inventory=lab.inventory, actor="dave", store=store,
                         extravars={"app_db_password": CANARY_API}, progress=lines.append)
    assert not again.ok and again.gate["decision"] == "refuse" and again.failed_hosts
    assert again.gate["problems"][0]["code"] == "nonce_used"

    # the CLI, with the secret passed as -e
    cli_change = _approved(lab, store, policy)
    env = {**os.environ, "HOSPOPS_STORE_URL": store.url}
    out = subprocess.run([sys.executable, "-m", "hospops", "run", str(play), "--change", cli_change, "-i", str(lab.inventory),
                          "-e", f"app_db_password={CANARY_CLI}", "--as", "dave"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "gate=pass" in out.stdout

    kinds = [r["kind"] for r in store.query("SELECT kind FROM audit ORDER BY seq")]
    for kind in ("change.request", "change.approve", "run.start", "gate.pass", "gate.refuse", "run.end"):
        assert kind in kinds
    exported = io.StringIO()
    audit.export(store, exported)
    store.close()  # flush SQLite's WAL into the file before looking at the bytes
    assert audit.verify(open_store(store.url)).ok
    for canary in (CANARY_API, CANARY_CLI):
        assert canary not in out.stdout + out.stderr + "\n".join(lines)
        assert canary not in exported.getvalue()
        assert _files_containing(home, canary.encode()) == []  # runs/*, artifacts, store, ledger, tickets
        assert _files_containing(Path("/dev/shm"), canary.encode()) == []
    assert not list((home / "runs").glob("*/env/extravars"))


def test_run_outside_the_window_is_refused_before_ansible_starts(world):
    lab, store, policy, play = world
    start = datetime.now(timezone.utc) + timedelta(hours=2)
    change_id = _approved(lab, store, policy, window_start=start, window_end=start + timedelta(hours=1))
    with pytest.raises(UserError, match="window opens at"):
        run_playbook(str(play), change_id=change_id, inventory=lab.inventory, actor="dave", store=store)
    assert store.one("SELECT kind FROM audit ORDER BY seq DESC LIMIT 1")["kind"] == "run.refused"
    assert store.query("SELECT * FROM runs") == []


def test_pending_change_cannot_run(world):
    lab, store, policy, play = world
    change = changes.request(store, policy, action="restart", targets=["web"], reason="portal hangs", requester="dave")
    with pytest.raises(UserError, match="is pending, not approved"):
        run_playbook(str(play), change_id=change.id, inventory=lab.inventory, actor="dave", store=store)


def test_a_second_operators_overlapping_run_is_refused(world):
    lab, store, policy, play = world
    change_id = _approved(lab, store, policy)
    locks.acquire(store, ["h2"], "run-other", "erin")  # erin's run (this live process) holds h2
    with pytest.raises(UserError, match=r"h2 by erin \(run run-other"):
        run_playbook(str(play), change_id=change_id, inventory=lab.inventory, actor="dave", store=store)
    assert [r["host"] for r in locks.held(store)] == ["h2"]  # nothing of dave's left behind


def test_locks_conflict_and_stale_locks_are_released(store):
    locks.acquire(store, ["h1", "h2"], "run-a", "alice")
    with pytest.raises(UserError, match="h1 by alice .* since"):
        locks.acquire(store, ["h1", "h3"], "run-b", "bob")
    assert {r["host"] for r in locks.held(store)} == {"h1", "h2"}
    # the holder dies: its locks are recognised as stale and released for the next run
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.execute("UPDATE host_locks SET pid = :p WHERE run_id = 'run-a'", {"p": dead.pid})
    assert locks.acquire(store, ["h1", "h3"], "run-b", "bob") == ["h1", "h3"]
    held = {r["host"]: r["run_id"] for r in locks.held(store)}
    assert held["h1"] == "run-b" and held["h3"] == "run-b" and held["h2"] == "run-a"
    assert "lock.stale_released" in {r["kind"] for r in store.query("SELECT kind FROM audit")}
    locks.release(store, "run-b")
    assert [r["host"] for r in locks.held(store)] == ["h2"]
