"""Against the running lab: stop ih1's app for real, `hospops watch --once` opens exactly one L1
incident (ih payment failure); start it again and the incident resolves after N good rounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
IH1_HEALTH = "http://127.0.0.1:42312/health"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001 - any failure means "not up"
        return False


@pytest.fixture(scope="module", autouse=True)
def lab_up():
    if not _answers(IH1_HEALTH):
        pytest.skip("the lab is not up: 127.0.0.1:42312 (ih1 health) does not answer; run `hospops lab up`")


def _podman(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", "exec", "hospops-ih1", *args], capture_output=True, text=True, timeout=60)


def _hospops(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hospops", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_ih1_stopped_opens_one_l1_and_recovers(tmp_path):
    env = {**os.environ, "HOSPOPS_HOME": str(tmp_path), "HOSPOPS_INVENTORY": str(REPO / "inventories" / "lab")}
    env.pop("HOSPOPS_STORE_URL", None)
    # a clean baseline: nothing open before the fault
    base = _hospops(env, "watch", "--once", "--no-notify")
    assert base.returncode == 0, base.stdout + base.stderr
    stop = _podman("systemctl", "stop", "hospapp-ih")
    assert stop.returncode == 0, stop.stderr
    try:
        deadline = time.monotonic() + 20
        while _answers(IH1_HEALTH) and time.monotonic() < deadline:
            time.sleep(0.5)
        for _ in range(2):                                     # twice: the second round updates, never doubles
            bad = _hospops(env, "watch", "--once", "--no-notify")
            assert bad.returncode == 1, bad.stdout + bad.stderr
        rows = json.loads(_hospops(env, "incident", "--no-notify", "list", "--json").stdout)
        l1 = [r for r in rows if r["level"] == "L1"]
        assert [(r["fingerprint"], r["status"]) for r in l1] == [("ih:payment_failed", "open")], rows
        assert "ih1" in l1[0]["summary"]
    finally:
        start = _podman("systemctl", "start", "hospapp-ih")
        assert start.returncode == 0, start.stderr
    deadline = time.monotonic() + 60
    while not _answers(IH1_HEALTH) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _answers(IH1_HEALTH), "ih1 did not come back"
    for _ in range(5):                                         # resolve_after (lab: 3) good rounds
        good = _hospops(env, "watch", "--once", "--no-notify")
        if good.returncode == 0 and "resolved:" in good.stdout:
            break
    shown = json.loads(_hospops(env, "incident", "--no-notify", "show", l1[0]["id"], "--json").stdout)
    assert shown["status"] == "resolved", shown
    assert [e["kind"] for e in shown["timeline"]][-1] == "resolved"
