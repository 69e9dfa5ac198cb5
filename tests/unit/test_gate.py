"""fuhosp.ops.change_gate in real ansible-playbook runs of a tiny play against local hosts.

Each run is what an operator would type by hand: ``ansible-playbook -i INV play.yml -e change_ticket=FILE``.
The play's second task leaves a file per host, so "refused" is checked by its effect: nothing changed.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hospops import audit, changes, gate_ledger
from hospops._collection import approval
from hospops.store import open_store

ap = approval()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def world(approval_lab, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    policy = approval_lab.policy()
    yield approval_lab, store, policy
    store.close()


def _approved(world, *, targets=("web",), window=None, approver="bob", now=None, expires=None):
    lab, store, policy = world
    kwargs = {}
    if window:
        kwargs.update(window_start=window[0], window_end=window[1])
    change = changes.request(store, policy, action="restart", targets=list(targets), reason="portal hangs on login",
                             requester="dave", now=now, **kwargs)
    changes.decide(store, policy, change.id, approver=approver, key=lab.key(approver), decision="approve",
                   now=now, expires=expires)
    return changes.export(store, change.id, lab.root / f"{change.id}.json"), change.id


def _decisions() -> list[dict]:
    path = Path(os.environ["HOSPOPS_HOME"]) / "gate" / "decisions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _refused(run, needle: str) -> None:
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "change gate REFUSED" in out and needle in out, out


def test_approved_change_runs_once_and_a_second_run_is_refused(world):
    lab, store, _ = world
    ticket, change_id = _approved(world)
    first = lab.playbook_run("-e", "gate_serial=1", ticket=ticket)  # two batches: the gate runs twice, same run
    assert first.returncode == 0, first.stdout + first.stderr
    assert lab.marked() == ["h1", "h2"]
    for mark in lab.marks.iterdir():
        mark.unlink()
    second = lab.playbook_run(ticket=ticket)
    _refused(second, "already used by another run")
    assert lab.marked() == []
    decisions = _decisions()
    assert [d["decision"] for d in decisions] == ["pass", "pass", "refuse"]
    assert decisions[0]["run"] == decisions[1]["run"] != decisions[2]["run"]
    assert decisions[2]["problems"][0]["code"] == "nonce_used"
    # the orchestrator imports the ledger into the audit chain, once
    assert gate_ledger.import_decisions(store) == 3
    assert gate_ledger.import_decisions(store) == 0
    kinds = [r["kind"] for r in store.query("SELECT kind FROM audit WHERE subject = :s ORDER BY seq", {"s": change_id})]
    assert kinds[-3:] == ["gate.pass", "gate.pass", "gate.refuse"]
    assert audit.verify(store).ok


def test_a_run_by_hand_without_a_ticket_is_refused(world):
    lab, _, _ = world
    run = lab.playbook_run()
    _refused(run, "no change ticket")
    assert "hospops run PLAYBOOK --change ID" in run.stdout
    assert lab.marked() == []  # neither host was touched: the refusal is fatal for the whole play
    assert _decisions()[-1]["decision"] == "refuse"


def test_hosts_beyond_the_approved_scope_are_refused(world):
    lab, _, _ = world
    ticket, _ = _approved(world, targets=("h1",))
    run = lab.playbook_run(ticket=ticket)  # the play targets web = h1, h2
    _refused(run, "host(s) h2 are not in the approved targets")
    assert lab.marked() == []


def test_a_run_outside_the_window_is_refused(world):
    lab, _, _ = world
    start = datetime.now(timezone.utc) + timedelta(hours=3)
    ticket, _ = _approved(world, window=(start, start + timedelta(hours=1)))
    run = lab.playbook_run(ticket=ticket)
    _refused(run, "the change window opens at")
    assert lab.marked() == []


def test_an_expired_approval_is_refused(world):
    lab, _, _ = world
    now = datetime.now(timezone.utc)
    ticket, _ = _approved(world, now=now - timedelta(hours=1), expires=(now - timedelta(minutes=5)).isoformat())
    run = lab.playbook_run(ticket=ticket)
    _refused(run, "expired at")
    assert lab.marked() == []


def test_forged_signature_and_changed_payload_are_refused(world):
    lab, _, _ = world
    ticket, _ = _approved(world, targets=("h1",))
    doc = json.loads(ticket.read_text())
    forged = json.loads(json.dumps(doc))
    sig = bytearray(__import__("base64").b64decode(forged["approvals"][0]["signature"]))
    sig[0] ^= 0xFF
    forged["approvals"][0]["signature"] = __import__("base64").b64encode(bytes(sig)).decode()
    forged_path = lab.root / "forged.json"
    forged_path.write_text(json.dumps(forged))
    _refused(lab.playbook_run("-e", "gate_hosts=h1", ticket=forged_path), "does not verify")

    widened = json.loads(json.dumps(doc))
    widened["request"]["targets"] = ["web"]  # more hosts than bob agreed to
    widened["request_digest"] = ap.request_digest(widened["request"])
    widened_path = lab.root / "widened.json"
    widened_path.write_text(json.dumps(widened))
    _refused(lab.playbook_run(ticket=widened_path), "the request was changed after signing")
    assert lab.marked() == []


def test_check_mode_verifies_without_using_up_the_approval(world):
    lab, _, _ = world
    ticket, _ = _approved(world)
    check = lab.playbook_run("--check", ticket=ticket)
    assert check.returncode == 0, check.stdout + check.stderr
    assert lab.marked() == []  # check mode changed nothing
    real = lab.playbook_run(ticket=ticket)
    assert real.returncode == 0, real.stdout + real.stderr
    assert lab.marked() == ["h1", "h2"]
    assert [d["check_mode"] for d in _decisions()] == [True, False]


def test_break_glass_ticket_without_l1_is_refused_by_the_gate(world):
    lab, store, policy = world
    change = changes.request(store, policy, action="restart", targets=["web"], requester="dave", break_glass=True,
                             incident="INC-3", incident_level="L1", reason="payments fail everywhere, no approver answers")
    ticket = changes.export(store, change.id, lab.root / "bg.json")
    doc = json.loads(ticket.read_text())
    doc["request"]["incident_level"] = "L3"  # someone edits the ticket to break glass for a minor fault
    doc["request_digest"] = ap.request_digest(doc["request"])
    edited = lab.root / "bg-l3.json"
    edited.write_text(json.dumps(doc))
    _refused(lab.playbook_run(ticket=edited), "break-glass needs a linked L1 incident")
    run = lab.playbook_run(ticket=ticket)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BREAK-GLASS" in run.stdout + run.stderr


def test_ansible_doc_reads_well():
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"), "ANSIBLE_NOCOLOR": "1"}
    out = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-doc"), "fuhosp.ops.change_gate"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "The first task of every play that changes production" in out.stdout
    assert "ledger_dir" in out.stdout and "check_mode" in out.stdout


def test_ledger_import_is_incremental_and_runs_on_audit_verify(tmp_path):
    ledger = Path(os.environ["HOSPOPS_HOME"]) / "gate"
    ledger.mkdir()
    line = {"decision": "refuse", "change_id": None, "problems": [{"code": "no_ticket", "what": "w", "fix": "f"}],
            "user": "root"}
    with open(ledger / "decisions.jsonl", "w") as out:
        out.write(json.dumps(line) + "\n" + json.dumps({**line, "decision": "pass", "change_id": "CHG-1"})[:20])
    url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**os.environ, "HOSPOPS_STORE_URL": url}
    out = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-m", "hospops", "audit", "verify"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and "1 records" in out.stdout, out.stdout + out.stderr
    with open(ledger / "decisions.jsonl", "a") as out_file:  # the half-written line is completed
        out_file.write(json.dumps({**line, "decision": "pass", "change_id": "CHG-1"})[20:] + "\n")
    store = open_store(url)
    assert gate_ledger.import_decisions(store, ledger) == 1
    assert [(r["kind"], r["subject"]) for r in store.query("SELECT kind, subject FROM audit ORDER BY seq")] == \
        [("gate.refuse", "no-ticket"), ("gate.pass", "CHG-1")]
    store.close()


def test_approvers_cannot_be_replaced_with_extra_vars(world):
    lab, _, _ = world
    ticket, _ = _approved(world)
    run = lab.playbook_run("-e", '{"hospops_approvers": [], "hospops_change_policy": {}}', ticket=ticket)
    _refused(run, "hospops_approvers, hospops_change_policy given as extra variables")
    assert lab.marked() == []


def test_a_rehearsal_needs_no_approval_and_claims_nothing(world):
    lab, store, policy = world
    change = changes.request(store, policy, action="restart", targets=["web"], reason="rehearse before signing",
                             requester="dave")
    ticket = changes.export(store, change.id, lab.root / "pending.json")
    rehearsal = lab.playbook_run("--check", ticket=ticket)            # the whole run in check mode
    assert rehearsal.returncode == 0, rehearsal.stdout + rehearsal.stderr
    assert lab.marked() == []
    _refused(lab.playbook_run(ticket=ticket), "approval")             # for real it still needs the approval
    assert [(d["decision"], d["rehearsal"]) for d in _decisions()] == [("pass", True), ("refuse", False)]
    changes.decide(store, policy, change.id, approver="bob", key=lab.key("bob"), decision="deny", comment="no")
    denied = changes.export(store, change.id, lab.root / "denied.json")
    _refused(lab.playbook_run("--check", ticket=denied), "denied")   # nothing to rehearse once denied


def _claim(nonce: str) -> dict:
    return json.loads((Path(os.environ["HOSPOPS_HOME"]) / "gate" / "nonces" / f"{nonce}.json").read_text())


def test_a_hospops_run_that_died_is_resumed_once_and_an_ended_one_never(world):
    lab, store, _ = world
    ticket, change_id = _approved(world)
    nonce = changes.get(store, change_id).request["nonce"]
    first = lab.playbook_run("-e", "hospops_run_id=run-A", ticket=ticket)
    assert first.returncode == 0, first.stdout + first.stderr
    # run-A's ansible-playbook has exited without hospops recording its end: as if it was killed
    resumed = lab.playbook_run("-e", "hospops_run_id=run-B", ticket=ticket)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    claim = _claim(nonce)
    assert claim["hospops_run_id"] == "run-B" and claim["resumed"][0]["from_hospops_run_id"] == "run-A"
    assert gate_ledger.mark_finished(nonce, "run-B", "successful")
    _refused(lab.playbook_run("-e", "hospops_run_id=run-C", ticket=ticket), "already used by another run")
    assert not gate_ledger.mark_finished(nonce, "run-C", "failed")    # only the claiming run is marked


def test_a_run_by_hand_is_never_resumed(world):
    lab, _, _ = world
    ticket, _ = _approved(world)
    assert lab.playbook_run(ticket=ticket).returncode == 0
    _refused(lab.playbook_run("-e", "hospops_run_id=run-X", ticket=ticket), "already used by another run")
