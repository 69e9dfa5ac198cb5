"""Change requests and decisions through the orchestrator, on both store backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest

from hospops import audit, changes
from hospops.errors import UserError
from hospops.store import open_store


@pytest.fixture()
def policy(approval_lab):
    return approval_lab.policy()


def _request(store, policy, **over):
    args = {"action": "restart", "targets": ["web"], "reason": "portal hangs on login", "requester": "dave"}
    args.update(over)
    return changes.request(store, policy, **args)


def test_request_then_approve(store, policy, approval_lab):
    change = _request(store, policy)
    assert change.state == "pending" and change.klass == "approval"
    done = changes.decide(store, policy, change.id, approver="bob", key=approval_lab.key("bob"), decision="approve")
    assert done.state == "approved" and [a["approver"] for a in done.approvals] == ["bob"]
    kinds = [r["kind"] for r in store.query("SELECT kind FROM audit ORDER BY seq")]
    assert kinds[0] == "change.request" and "change.approve" in kinds
    assert audit.verify(store).ok


def test_self_approval_is_refused(store, policy, approval_lab):
    change = _request(store, policy, requester="alice")
    with pytest.raises(UserError, match="alice requested change .* cannot approve it"):
        changes.decide(store, policy, change.id, approver="alice", key=approval_lab.key("alice"), decision="approve")
    assert changes.get(store, change.id).state == "pending"


def test_someone_elses_key_is_refused(store, policy, approval_lab):
    change = _request(store, policy)
    with pytest.raises(UserError, match="not bob's key"):
        changes.decide(store, policy, change.id, approver="bob", key=approval_lab.key("alice"), decision="approve")


def test_approver_limited_to_their_actions(store, policy, approval_lab):
    change = _request(store, policy)
    with pytest.raises(UserError, match="carol may not approve restart"):
        changes.decide(store, policy, change.id, approver="carol", key=approval_lab.key("carol"), decision="approve")


def test_denial_needs_a_reason_and_ends_the_change(store, policy, approval_lab):
    change = _request(store, policy)
    with pytest.raises(UserError, match="needs a reason"):
        changes.decide(store, policy, change.id, approver="bob", key=approval_lab.key("bob"), decision="deny")
    denied = changes.decide(store, policy, change.id, approver="bob", key=approval_lab.key("bob"), decision="deny",
                            comment="clinic is at its busiest")
    assert denied.state == "denied"
    with pytest.raises(UserError, match="already denied"):
        changes.decide(store, policy, change.id, approver="alice", key=approval_lab.key("alice"), decision="approve")


def _upgrade_plan(start: datetime) -> dict:
    return {"format": 1, "service": "web", "from_version": "1.0.0", "to_version": "2.0.0",
            "artifacts": [{"file": "web/web-2.0.0.tar.gz", "sha256": "ab" * 32}],
            "migrations": {"forward": False, "schema_from": 1, "schema_to": 1, "backward": "none"},
            "health_checks": {"path": "/health", "timeout_seconds": 30},
            "impact": {"summary": "new login page", "downtime": "none (rolling)"},
            "window": {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()},
            "rollback": {"triggers": ["health_check_failed"], "steps": ["switch back to 1.0.0"],
                         "restore_point": "auto"}}


def test_upgrade_needs_a_plan_a_rehearsal_and_two_organisations(store, policy, approval_lab):
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    window = {"window_start": start, "window_end": start + timedelta(hours=2)}
    with pytest.raises(UserError, match="needs an upgrade plan"):
        _request(store, policy, action="upgrade", targets=["h1"], **window)
    no_rollback = {k: v for k, v in _upgrade_plan(start).items() if k != "rollback"}
    with pytest.raises(UserError, match="rollback: the plan has no rollback plan"):
        _request(store, policy, action="upgrade", targets=["h1"], plan=no_rollback, **window)
    assert changes.list_changes(store) == []
    change = _request(store, policy, action="upgrade", targets=["h1"], plan=_upgrade_plan(start), **window)
    with pytest.raises(UserError, match="has not been rehearsed"):
        changes.decide(store, policy, change.id, approver="bob", key=approval_lab.key("bob"), decision="approve")
    changes.attach(store, change.id, "rehearsal", {"kind": "rehearsal", "ok": True, "run_id": "run-1"}, actor="dave")
    one = changes.decide(store, policy, change.id, approver="bob", key=approval_lab.key("bob"), decision="approve")
    assert one.state == "pending"
    two = changes.decide(store, policy, change.id, approver="alice", key=approval_lab.key("alice"), decision="approve")
    assert two.state == "approved" and two.digest == change.digest
    assert two.ticket()["request"]["plan"]["rollback"]["steps"] == ["switch back to 1.0.0"]


def test_break_glass_without_an_l1_incident_is_refused(store, policy):
    for incident, level in ((None, None), ("INC-1", "L2"), (None, "L1")):
        with pytest.raises(UserError, match="break-glass needs a linked L1 incident"):
            _request(store, policy, break_glass=True, incident=incident, incident_level=level,
                     reason="payments fail at all windows, nobody answers")
    assert changes.list_changes(store) == []


def test_break_glass_is_runnable_and_owes_an_approval(store, policy, approval_lab):
    change = _request(store, policy, break_glass=True, incident="INC-9", incident_level="L1",
                      reason="payments fail at all windows, nobody answers")
    assert change.state == "break-glass" and change.approval_due
    assert [r["id"] for r in changes.list_changes(store, owed=True)] == [change.id]
    kinds = {r["kind"] for r in store.query("SELECT kind FROM audit")}
    assert kinds & {"notify.unrouted", "notify.failed", "notify.unavailable", "notify.sent", "notify.delivered"} or \
        any(k.startswith("notify") for k in kinds)
    changes.decide(store, policy, change.id, approver="bob", key=approval_lab.key("bob"), decision="approve")
    assert changes.get(store, change.id).state == "approved"
    assert changes.list_changes(store, owed=True) == []


def test_window_rules(store, policy):
    now = datetime.now(timezone.utc)
    with pytest.raises(UserError, match="ends before it starts"):
        _request(store, policy, window_start=now + timedelta(hours=2), window_end=now + timedelta(hours=1))
    with pytest.raises(UserError, match="longer than 72 hours"):
        _request(store, policy, window_end=now + timedelta(days=5))
    with pytest.raises(UserError, match="neither hosts nor groups"):
        _request(store, policy, targets=["nosuchhost"])
    naive = _request(store, policy, window_start="2099-01-01T09:00", window_end="2099-01-01T10:00")
    assert naive.request["window"]["start"] == "2099-01-01T01:00:00+00:00"  # read in the policy's Asia/Shanghai


def test_a_waiting_request_survives_an_orchestrator_restart(store_url, policy):
    first = open_store(store_url)
    change = _request(first, policy)
    first.close()
    env = {**os.environ, "HOSPOPS_STORE_URL": store_url}
    out = subprocess.run([sys.executable, "-m", "hospops", "change", "show", change.id, "--json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["state"] == "pending" and shown["request_digest"] == change.digest


def test_concurrent_approve_and_deny_leave_exactly_one_outcome(store_url, policy, approval_lab):
    """bob approves while alice denies, each through its own connection, released together."""
    keys = {"alice": approval_lab.key("alice"), "bob": approval_lab.key("bob")}
    for _ in range(3):
        setup = open_store(store_url)
        change = _request(setup, policy)
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def decide(who, decision, change_id=change.id, barrier=barrier, outcomes=outcomes):
            s = open_store(store_url)
            barrier.wait()
            try:
                changes.decide(s, policy, change_id, approver=who, key=keys[who], decision=decision,
                               comment="not now" if decision == "deny" else "")
                outcomes[decision] = "won"
            except UserError as exc:
                outcomes[decision] = f"lost: {exc.what}"
            finally:
                s.close()

        threads = [threading.Thread(target=decide, args=("bob", "approve")),
                   threading.Thread(target=decide, args=("alice", "deny"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = changes.get(setup, change.id)
        winners = [d for d, o in outcomes.items() if o == "won"]
        assert len(winners) == 1, outcomes
        assert final.state == {"approve": "approved", "deny": "denied"}[winners[0]]
        assert [a["decision"] for a in final.approvals] == winners
        assert audit.verify(setup).ok
        setup.close()


def test_the_cli_flow(approval_lab, tmp_path):
    """request (break-glass) -> list --owed -> approve after the fact -> export, as an operator types it."""
    env = {**os.environ, "HOSPOPS_STORE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "HOSPOPS_ACTOR": "dave"}
    inv = ["-i", str(approval_lab.inventory)]

    def hospops(*argv):
        return subprocess.run([sys.executable, "-m", "hospops", *argv], capture_output=True, text=True, env=env, timeout=60)

    refused = hospops("change", "request", "restart", "-t", "h1", "--break-glass", "--incident", "INC-4", "--level", "L2",
                      "--reason", "queue screens are stale tonight", *inv)
    assert refused.returncode == 2 and "break-glass needs a linked L1 incident" in refused.stderr
    made = hospops("change", "request", "restart", "-t", "h1", "--break-glass", "--incident", "INC-5", "--level", "L1",
                   "--reason", "payments fail at all windows, nobody answers", *inv)
    assert made.returncode == 0, made.stderr
    change_id = made.stdout.strip()
    owed = hospops("change", "list", "--owed")
    assert change_id in owed.stdout and "approval due" in owed.stdout
    approved = hospops("change", "approve", change_id, "--as", "bob", "--key", str(approval_lab.keys / "bob.key"), *inv)
    assert approved.returncode == 0 and "state approved" in approved.stdout, approved.stderr
    assert "no changes owing an approval" in hospops("change", "list", "--owed").stdout
    ticket = tmp_path / "t.json"
    assert hospops("change", "export", change_id, "-o", str(ticket)).returncode == 0
    doc = json.loads(ticket.read_text())
    assert doc["request"]["class"] == "break-glass" and doc["approvals"][0]["payload"]["approver"] == "bob"
    assert (ticket.stat().st_mode & 0o777) == 0o600
    shown = hospops("change", "show", change_id)
    assert "approve  bob (department)" in shown.stdout and "digest:" in shown.stdout
