"""Against the running lab: `hospops drill run` restores the latest backup to a scratch container, recovers to a
time between marker rows it wrote, checks the copy, records the evidence, and removes the scratch host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB_HOME = os.environ.get("HOSPOPS_HOME") or str(Path.home() / ".local" / "state" / "hospops")


def _running(container: str) -> bool:
    p = subprocess.run(["podman", "inspect", "-f", "{{.State.Running}}", container], capture_output=True, text=True)
    return p.returncode == 0 and p.stdout.strip() == "true"


def _hospops(env, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hospops", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_drill_restores_checks_and_records_evidence(tmp_path):
    if not (_running("hospops-db") and _running("hospops-backup")):
        pytest.skip("the lab is not up (hospops-db, hospops-backup): run `hospops lab up`")
    info = subprocess.run(["podman", "exec", "--user", "pgbackrest", "hospops-backup", "pgbackrest", "--stanza=hospital",
                           "--output=json", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0 or not json.loads(info.stdout)[0].get("backup"):
        pytest.skip("the lab has no backups: run playbooks/backup_setup.yml")
    # the lab's keys live in the lab's HOSPOPS_HOME; the evidence goes to a store of the test's own
    env = {**os.environ, "HOSPOPS_HOME": LAB_HOME, "HOSPOPS_STORE_URL": f"sqlite:///{tmp_path / 'drills.db'}",
           "HOSPOPS_INVENTORY": str(REPO / "inventories" / "lab"), "HOSPOPS_ACTOR": "pytest"}
    run = _hospops(env, "drill", "run", timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = json.loads(_hospops(env, "drill", "list", "--json").stdout)
    assert rows[0]["status"] == "passed"
    checks = json.loads(rows[0]["checks"])
    assert checks == {"restored": True, "pg_dump": True, "amcheck": True, "before_present": True, "after_absent": True}
    markers = json.loads(rows[0]["markers"])
    assert markers["restored_before"] == markers["written_before"] == 10 and markers["restored_after"] == 0
    assert rows[0]["backup_label"] and rows[0]["rto_seconds"] > 0
    assert 0 <= rows[0]["rpo_seconds"] < 1.5          # markers every 0.2 s up to the target
    shown = _hospops(env, "drill", "show", rows[0]["id"])
    assert "status     passed" in shown.stdout
    assert _hospops(env, "audit", "verify").returncode == 0
    assert not _running("hospops-scratch"), "the scratch container was left behind"
