"""Upgrades against the running lab, for real (issue 7): an approved, rehearsed rolling upgrade of `ih`
keeps answering through the gateway; the broken build and the half-failing migration roll back by
themselves; an app or the orchestrator killed mid-upgrade ends, after a re-run, on one version; v1 ->
v2 -> v1 keeps the data written in between. Every test leaves ih on 1.0.0 (the lab's baseline)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from labkit import get_json as _get
from labkit import hospops as _hospops

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB_HOME = Path(os.environ.get("HOSPOPS_LAB_HOME") or Path.home() / ".local" / "state" / "hospops")
GATEWAY = "http://127.0.0.1:42280/ih"
NODES = {"ih1": "http://127.0.0.1:42312", "ih2": "http://127.0.0.1:42313"}
APPROVERS = ("zhang-it", "li-outpatient")        # quorum 2, hospital-it among them (policy.yml)


def _pay(ref: str) -> int | None:
    body = json.dumps({"amount_fen": 1, "method": "scan", "order_ref": ref, "probe": True}).encode()
    req = urllib.request.Request(f"{GATEWAY}/api/payments", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["id"] if resp.status == 201 else None
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None


class Traffic:
    """Patients paying and reading through the gateway while the upgrade runs."""

    def __init__(self) -> None:
        self.payments: list[int | None] = []
        self.reads: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set():
            self.payments.append(_pay(f"upgrade-traffic-{time.time_ns()}-{n}"))
            self.reads.append(_get(f"{GATEWAY}/health")[0])
            n += 1
            time.sleep(0.05)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def served(self) -> int:
        return sum(p is not None for p in self.payments) + sum(r == 200 for r in self.reads)

    @property
    def failed(self) -> int:
        return sum(p is None for p in self.payments) + sum(r != 200 for r in self.reads)

    def all_recorded(self) -> bool:
        return all(_get(f"{GATEWAY}/api/payments/{pid}")[1].get("status") == "recorded"
                   for pid in self.payments if pid is not None)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if any(_get(f"{url}/health")[0] != 200 for url in NODES.values()):
        pytest.skip("the lab is not up (ih1/ih2 health does not answer); run `hospops lab up`")
    root = tmp_path_factory.mktemp("upgrade-lab")
    home = root / "home"
    home.mkdir()
    (home / "lab").symlink_to(LAB_HOME / "lab")      # the lab's SSH and approver keys; a store of our own
    inventory = root / "inventory"
    shutil.copytree(REPO / "inventories" / "lab", inventory)
    # upgrades are blacked out during outpatient hours: the tests run whenever CI does
    policy_file = inventory / "group_vars" / "all" / "policy.yml"
    policy = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
    policy["hospops_change_policy"]["blackouts"] = []
    policy_file.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    e = {**os.environ, "HOSPOPS_HOME": str(home), "HOSPOPS_INVENTORY": str(inventory), "HOSPOPS_ACTOR": "oncall"}
    e.pop("HOSPOPS_STORE_URL", None)
    e["__plans"] = str(root)
    yield e
    _ensure_baseline(e)


def _release(service: str, version: str) -> dict:
    index = json.loads((LAB_HOME / "lab" / "releases" / "index.json").read_text(encoding="utf-8"))
    return next(r for r in index["releases"] if r["service"] == service and r["version"] == version)


def _plan(env, old: str, new: str, *, forward: bool = True, backward: str = "down",
          window_minutes: int = 120) -> Path:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    to, frm = _release("ih", new), _release("ih", old)
    plan = {
        "format": 1, "service": "ih", "from_version": old, "to_version": new,
        "artifacts": [{"file": to["file"], "sha256": to["sha256"]}],
        "migrations": {"forward": forward, "schema_from": frm["schema_required"],
                       "schema_to": max(to["schema_required"], frm["schema_required"]) if not forward
                       else to["schema_required"], "backward": backward},
        "health_checks": {"path": "/health", "timeout_seconds": 20, "payment_probe": True},
        "impact": {"summary": "payments keep working; one node at a time leaves the gateway",
                   "downtime": "none (rolling)"},
        "window": {"start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(minutes=window_minutes)).isoformat()},
        "rollback": {"triggers": ["health_check_failed", "migration_failed", "window_closing"],
                     "steps": ["return every switched node to the old release", "undo the migrations"],
                     "restore_point": "auto"},
    }
    path = Path(env["__plans"]) / f"plan-{old}-{new}-{time.time_ns()}.yml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    return path


def _approved_upgrade(env, old: str, new: str, **kw) -> str:
    filed = _hospops(env, "change", "request", "upgrade", str(_plan(env, old, new, **kw)))
    assert filed.returncode == 0, filed.stdout + filed.stderr
    change = next(w for w in (filed.stdout + filed.stderr).split() if w.startswith("CHG-")).rstrip(":")
    rehearsed = _hospops(env, "upgrade", "rehearse", change)
    assert rehearsed.returncode == 0, rehearsed.stdout[-3000:] + rehearsed.stderr[-3000:]
    for name in APPROVERS:
        signed = _hospops(env, "change", "approve", change, "--as", name,
                          "--key", str(LAB_HOME / "lab" / "approvers" / f"{name}.key"))
        assert signed.returncode == 0, signed.stdout + signed.stderr
    return change


def _versions() -> dict[str, str | None]:
    return {node: _get(f"{url}/health")[1].get("version") for node, url in NODES.items()}


def _psql(sql: str) -> str:
    proc = subprocess.run(["podman", "exec", "-u", "postgres", "hospops-db", "psql", "-X", "-At", "-d", "hospital",
                           "-c", sql], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _ih_schema() -> str:
    """The ih tables' columns and the schema version: equal strings mean an unchanged database."""
    return _psql("SELECT (SELECT version FROM ih_schema) || ' ' || string_agg(table_name || '.' || column_name"
                 " || ':' || data_type, ',' ORDER BY table_name, column_name) FROM information_schema.columns"
                 " WHERE table_name LIKE 'ih\\_%'")


def _ensure_baseline(env) -> None:
    """Bring ih back to 1.0.0 with an upgrade plan (2.0.0 -> 1.0.0 keeps the compatible v2 schema)."""
    if set(_versions().values()) == {"1.0.0"}:
        return
    change = _approved_upgrade(env, "2.0.0", "1.0.0", forward=False, backward="none")
    run = _hospops(env, "upgrade", "run", change)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert set(_versions().values()) == {"1.0.0"}


def test_rolling_upgrade_and_back_serves_every_request_and_keeps_the_data(env):
    _ensure_baseline(env)
    change = _approved_upgrade(env, "1.0.0", "2.0.0")
    shown = _hospops(env, "change", "show", change)
    assert "2.0.0" in shown.stdout and "rehears" in shown.stdout.lower(), shown.stdout
    with Traffic() as traffic:
        started = time.monotonic()
        run = _hospops(env, "upgrade", "run", change)
        took = time.monotonic() - started
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert set(_versions().values()) == {"2.0.0"}, out[-2000:]
    assert traffic.failed == 0, f"{traffic.failed} of {traffic.failed + traffic.served} requests failed"
    assert traffic.payments and traffic.all_recorded()
    print(f"\nrolling upgrade ih 1.0.0 -> 2.0.0: {took:.1f} s; {traffic.served} requests served through the"
          f" gateway ({len(traffic.payments)} payments), {traffic.failed} failed")
    # data written on v2, then back to v1: still there, the v2 column kept
    on_v2 = [_pay(f"written-on-v2-{n}") for n in range(5)]
    assert all(on_v2)
    _ensure_baseline(env)
    for pid in on_v2:
        assert _get(f"{GATEWAY}/api/payments/{pid}")[1].get("status") == "recorded", pid
    assert _psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'ih_payments'"
                 " AND column_name = 'channel_ref'") == "1"


def test_broken_build_rolls_back_and_every_payment_is_recorded(env):
    _ensure_baseline(env)
    schema_before = _ih_schema()
    change = _approved_upgrade(env, "1.0.0", "2.0.1-broken")
    with Traffic() as traffic:
        run = _hospops(env, "upgrade", "run", change)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-4000:]
    assert "rolled back" in out.lower() and "1.0.0" in out, out[-3000:]
    assert set(_versions().values()) == {"1.0.0"}
    assert _ih_schema() == schema_before
    assert traffic.failed == 0 and traffic.payments and traffic.all_recorded()
    seconds = next((w for line in out.splitlines() if "rollback took" in line for w in line.split()
                    if w.replace(".", "", 1).isdigit()), "?")
    print(f"\nbroken build: rolled back in {seconds} s; {traffic.served} requests served, {traffic.failed} failed")


def test_half_failing_migration_leaves_the_database_as_it_was(env):
    _ensure_baseline(env)
    schema_before = _ih_schema()
    change = _approved_upgrade(env, "1.0.0", "2.1.0-badmigration")
    run = _hospops(env, "upgrade", "run", change)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-4000:]
    assert "migration" in out.lower(), out[-3000:]
    assert _ih_schema() == schema_before
    assert set(_versions().values()) == {"1.0.0"}


def test_a_window_about_to_close_stops_at_a_safe_point(env):
    _ensure_baseline(env)
    schema_before = _ih_schema()
    change = _approved_upgrade(env, "1.0.0", "2.0.0", window_minutes=3)   # less than a node's 5-minute margin
    run = _hospops(env, "upgrade", "run", change)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-4000:]
    assert "window" in out.lower() and "safe point" in out.lower(), out[-3000:]
    assert set(_versions().values()) == {"1.0.0"}
    assert _ih_schema() == schema_before                  # stopped before migrating


def _backup_labels() -> list[str]:
    proc = subprocess.run(["podman", "exec", "-u", "pgbackrest", "hospops-backup", "pgbackrest", "--stanza=hospital",
                           "--output=json", "info"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [b["label"] for b in json.loads(proc.stdout)[0]["backup"]]


def test_by_hand_with_no_fresh_backup_one_is_taken_before_anything_changes(env, tmp_path):
    """An operator runs the playbook by hand with the exported ticket; no backup counts as fresh
    (max age 0 h), so pre-flight takes one before the migrations."""
    _ensure_baseline(env)
    change = _approved_upgrade(env, "1.0.0", "2.0.0")
    shown = json.loads(_hospops(env, "change", "show", change, "--json").stdout)
    ticket = tmp_path / "ticket.json"
    assert _hospops(env, "change", "export", change, "-o", str(ticket)).returncode == 0
    plan = tmp_path / "vars.json"
    plan.write_text(json.dumps({"upgrade_plan": shown["plan"], "upgrade_hosts": "svc_ih"}), encoding="utf-8")
    before = _backup_labels()
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", env["HOSPOPS_INVENTORY"],
                          "playbooks/upgrade.yml", "-e", f"@{plan}", "-e", f"change_ticket={ticket}",
                          "-e", "app_upgrade_backup_max_age_hours=0"],
                         env={**env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
                         capture_output=True, text=True, cwd=REPO, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    taken = [label for label in _backup_labels() if label not in before]
    assert len(taken) == 1 and taken[0].endswith("I"), taken          # one incremental, taken by pre-flight
    assert "Take a backup of type incr" in run.stdout
    assert set(_versions().values()) == {"2.0.0"}
    _ensure_baseline(env)


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _status(env) -> subprocess.CompletedProcess:
    return _hospops(env, "upgrade", "status", "ih")


def _upgrade_until_ih1_switched(env, change: str, **popen) -> subprocess.Popen:
    """Start `hospops upgrade run` and return once ih1 serves 2.0.0 (the upgrade is mid-way)."""
    proc = subprocess.Popen([sys.executable, "-m", "hospops", "upgrade", "run", change], env=env, cwd=REPO, **popen)
    if not _wait_for(lambda: _versions()["ih1"] == "2.0.0", 240):
        proc.kill()
        raise AssertionError("ih1 never switched to 2.0.0")
    return proc


def test_app_killed_mid_upgrade_ends_on_one_version(env):
    _ensure_baseline(env)
    change = _approved_upgrade(env, "1.0.0", "2.0.0")
    proc = _upgrade_until_ih1_switched(env, change, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        subprocess.run(["podman", "exec", "hospops-ih1", "systemctl", "kill", "--signal=KILL", "hospapp-ih"],
                       capture_output=True, timeout=30)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    versions = _versions()
    status = _status(env)
    if len(set(versions.values())) != 1 or None in versions.values():
        again = _hospops(env, "upgrade", "run", change)               # the re-run converges
        out += again.stdout + again.stderr
        versions = _versions()
        status = _status(env)
    assert len(set(versions.values())) == 1 and None not in versions.values(), (versions, out[-3000:])
    assert status.returncode == 0 and "consistent" in status.stdout.lower(), status.stdout + status.stderr
    assert next(iter(versions.values())) in status.stdout
    _ensure_baseline(env)


def test_orchestrator_killed_mid_run_rerun_converges_and_says_which(env):
    _ensure_baseline(env)
    change = _approved_upgrade(env, "1.0.0", "2.0.0")
    proc = _upgrade_until_ih1_switched(env, change, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)                                # the orchestrator and its ansible-playbook
    proc.wait(timeout=30)
    time.sleep(1)
    mixed = _status(env)
    again = _hospops(env, "upgrade", "run", change)                   # same approval: the dead run is resumed
    out = again.stdout + again.stderr
    assert again.returncode == 0, (mixed.stdout, out[-4000:])
    versions = _versions()
    assert set(versions.values()) == {"2.0.0"}, versions
    assert "2.0.0" in again.stdout
    status = _status(env)
    assert status.returncode == 0 and "consistent" in status.stdout.lower(), status.stdout
    twice = _hospops(env, "upgrade", "run", change)                   # a finished run is never resumed
    assert twice.returncode != 0
    _ensure_baseline(env)
