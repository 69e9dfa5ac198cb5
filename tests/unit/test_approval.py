"""_approval.py: the canonical payload and every verification rule, table-driven (no Ansible)."""

from __future__ import annotations

import copy
import os
import tempfile
import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from hospops._collection import approval

ap = approval()
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
KEYS = {name: ap.new_private_key() for name in ("alice", "bob", "carol", "mallory")}
APPROVERS = [
    {"name": "alice", "organisation": "hospital-it", "actions": ["*"], "public_key": ap.public_key_line(KEYS["alice"])},
    {"name": "bob", "organisation": "department", "actions": ["restart", "upgrade"], "public_key": ap.public_key_line(KEYS["bob"])},
    {"name": "carol", "organisation": "supplier", "actions": ["collect_logs"], "public_key": ap.public_key_line(KEYS["carol"])},
]
POLICY = {
    "timezone": "Asia/Shanghai",
    "actions": {
        "restart": {"classes": ["approval", "break-glass"]},
        "upgrade": {"classes": ["approval"], "quorum": 2, "require_organisations": ["hospital-it"]},
        "collect_logs": {"classes": ["pre-approved"]},
        "maintain": {"classes": ["pre-approved"], "pre_approved_in_maintenance_window": True},
    },
    "maintenance_windows": [{"from": "01:00", "to": "05:00"}],
    "blackouts": [
        {"name": "outpatient", "actions": ["upgrade"], "when": "outpatient_hours"},
        {"name": "morning rush", "actions": ["restart"], "from": "07:30", "to": "08:30"},
        {"name": "freeze", "actions": ["redeploy"], "start": "2026-11-25T00:00:00+00:00", "end": "2026-11-26T00:00:00+00:00"},
    ],
}
GROUPS = {"all": ["h1", "h2", "d1"], "web": ["h1", "h2"], "db": ["d1"]}


def make_request(**over):
    req = {"id": "CHG-1", "action": "restart", "class": "approval", "targets": ["web"], "reason": "portal hangs",
           "incident": None, "incident_level": None, "requester": "dave", "nonce": "ab" * 16,
           "window": {"start": "2026-11-25T09:00:00+00:00", "end": "2026-11-25T13:00:00+00:00"},
           "created_at": "2026-11-25T08:55:00+00:00", "plan": None}
    req.update(over)
    return req


def signed(req, who="alice", key=None, decision="approve", expires="2026-11-25T13:00:00+00:00", comment=""):
    payload = ap.approval_payload(req, approver=who, decision=decision, expires=expires,
                                  signed_at="2026-11-25T09:01:00+00:00", comment=comment)
    return {"payload": payload, "signature": ap.sign(key or KEYS[who], payload)}


def ticket(req, approvals):
    return {"format": ap.FORMAT, "request": req, "request_digest": ap.request_digest(req), "approvals": approvals}


def test_canonical_payload_is_stable():
    assert ap.canonical({"b": 1, "a": [1, "é"], "c": {"z": None, "y": True}}) == \
        '{"a":[1,"é"],"b":1,"c":{"y":true,"z":null}}'.encode("utf-8")
    req = make_request()
    # the digest of a fixed request never changes between versions: approvals stay verifiable
    assert ap.request_digest(req) == "sha256:" + hashlib.sha256(ap.canonical(req)).hexdigest()
    assert ap.request_digest(dict(reversed(list(req.items())))) == ap.request_digest(req)
    p = ap.approval_payload(req, approver="alice", decision="approve", expires="E", signed_at="S")
    assert sorted(p) == sorted(ap.PAYLOAD_FIELDS)
    assert ap.canonical(p).startswith(b'{"action":"restart","approver":"alice","change_id":"CHG-1","comment":""')


def test_signature_round_trip_and_key_forms():
    payload = {"x": 1}
    sig = ap.sign(KEYS["alice"], payload)
    line = ap.public_key_line(KEYS["alice"], "hospops:alice")
    assert line.startswith("ssh-ed25519 ") and line.endswith(" hospops:alice")
    assert ap.signature_valid(line, payload, sig)
    assert not ap.signature_valid(line, {"x": 2}, sig)
    assert not ap.signature_valid(ap.public_key_line(KEYS["bob"]), payload, sig)
    assert not ap.signature_valid(line, payload, "not base64!")
    assert ap.key_fingerprint(line).startswith("SHA256:")


def _altered_signature(req):
    item = signed(req)
    raw = bytearray(__import__("base64").b64decode(item["signature"]))
    raw[5] ^= 0x01
    item["signature"] = __import__("base64").b64encode(bytes(raw)).decode()
    return ticket(req, [item])


def _changed_after_signing(req):
    approvals = [signed(req)]
    changed = copy.deepcopy(req)
    changed["targets"] = ["all"]  # widened after alice signed
    return ticket(changed, approvals)


CASES = [
    # (name, ticket builder, verify kwargs, expected problem codes)
    ("approved", lambda r: ticket(r, [signed(r)]), {}, []),
    ("no approvals", lambda r: ticket(r, []), {}, ["quorum"]),
    ("altered signature", _altered_signature, {}, ["bad_signature", "quorum"]),
    ("forged with another key", lambda r: ticket(r, [signed(r, "alice", key=KEYS["mallory"])]), {}, ["bad_signature", "quorum"]),
    ("request changed after signing", _changed_after_signing, {}, ["request_changed", "quorum"]),
    ("self-approval", lambda r: ticket(r, [signed(r, "alice")]) if r.update(requester="alice") is None else None,
     {}, ["self_approval", "quorum"]),
    ("expired", lambda r: ticket(r, [signed(r, expires="2026-11-25T09:30:00+00:00")]), {}, ["expired", "quorum"]),
    ("unknown approver", lambda r: ticket(r, [signed(r, "mallory")]), {}, ["unknown_approver", "quorum"]),
    ("approver not allowed", lambda r: ticket(r, [signed(r, "carol")]), {}, ["not_allowed", "quorum"]),
    ("denied", lambda r: ticket(r, [signed(r), signed(r, "bob", decision="deny", comment="clinic busy")]), {}, ["denied"]),
    ("wrong action", lambda r: ticket(r, [signed(r)]), {"action": "redeploy"}, ["action"]),
    ("hosts beyond scope", lambda r: ticket(r, [signed(r)]), {"hosts": ["h1", "d1"]}, ["scope"]),
    ("before the window", lambda r: ticket(r, [signed(r)]), {"now": NOW - timedelta(hours=2)}, ["window"]),
    ("after the window", lambda r: ticket(r, [signed(r)]), {"now": NOW + timedelta(hours=4)}, ["window", "expired", "quorum"]),
    ("daily blackout", lambda r: ticket(r, [signed(r)]), {"now": datetime(2026, 11, 25, 0, 0, tzinfo=timezone.utc)},
     ["window", "blackout"]),  # 08:00 in Shanghai
    ("not a ticket", lambda r: {"request": r}, {}, ["format"]),
]


@pytest.mark.parametrize("name,build,kwargs,codes", CASES, ids=[c[0] for c in CASES])
def test_verify_ticket(name, build, kwargs, codes):
    req = make_request()
    t = build(req)
    args = {"action": "restart", "hosts": ["h1", "h2"], "groups": GROUPS, "approvers": APPROVERS, "policy": POLICY,
            "now": NOW, **kwargs}
    verdict = ap.verify_ticket(t, **args)
    assert sorted(p["code"] for p in verdict["problems"]) == sorted(codes), verdict["problems"]
    assert verdict["ok"] is (not codes)
    for p in verdict["problems"]:
        assert p["what"] and p["fix"]


def test_upgrade_quorum_needs_hospital_it_and_one_more():
    req = make_request(action="upgrade", targets=["h1"])
    base = {"action": "upgrade", "hosts": ["h1"], "groups": GROUPS, "approvers": APPROVERS, "policy": POLICY,
            "now": NOW, "is_outpatient_hours": lambda dt: False}
    only_bob = ap.verify_ticket(ticket(req, [signed(req, "bob")]), **base)
    assert {p["code"] for p in only_bob["problems"]} == {"quorum", "organisation"}
    both = ap.verify_ticket(ticket(req, [signed(req, "bob"), signed(req, "alice")]), **base)
    assert both["ok"], both["problems"]
    twice = ap.verify_ticket(ticket(req, [signed(req, "alice"), signed(req, "alice")]), **base)
    assert [p["code"] for p in twice["problems"]] == ["quorum"]  # one vote per approver


def test_outpatient_blackout_uses_the_calendar_and_fails_closed_without_it():
    req = make_request(action="upgrade", targets=["h1"])
    t = ticket(req, [signed(req, "bob"), signed(req, "alice")])
    base = {"action": "upgrade", "hosts": ["h1"], "groups": GROUPS, "approvers": APPROVERS, "policy": POLICY, "now": NOW}

    class StandInCalendar:  # the interface of hospops.clinic_calendar.ClinicCalendar
        def is_outpatient_hours(self, dt):
            return 8 <= dt.astimezone(timezone(timedelta(hours=8))).hour < 17

    assert ap.verify_ticket(t, **base, is_outpatient_hours=lambda dt: False)["ok"]
    open_hours = ap.verify_ticket(t, **base, is_outpatient_hours=StandInCalendar().is_outpatient_hours)  # 18:00 +08
    assert open_hours["ok"]
    during = ap.verify_ticket(t, **{**base, "now": datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)},
                              is_outpatient_hours=StandInCalendar().is_outpatient_hours)
    assert "blackout" in {p["code"] for p in during["problems"]}
    no_calendar = ap.verify_ticket(t, **base, is_outpatient_hours=None)
    assert [p["code"] for p in no_calendar["problems"]] == ["blackout"]


@pytest.mark.parametrize("incident,level,reason,ok", [
    ("INC-7", "L1", "payments fail at every window, no approver answers", True),
    (None, "L1", "payments fail at every window, no approver answers", False),
    ("INC-7", "L2", "portal slow, nobody answers the phone at night", False),
    ("INC-7", "L1", "", False),
])
def test_break_glass_needs_an_l1_incident_and_a_reason(incident, level, reason, ok):
    req = make_request(**{"class": "break-glass", "incident": incident, "incident_level": level, "reason": reason or "x"})
    verdict = ap.verify_ticket(ticket(req, []), action="restart", hosts=["h1"], groups=GROUPS, approvers=APPROVERS,
                               policy=POLICY, now=NOW + timedelta(hours=1))  # inside the morning-rush blackout: not held
    assert verdict["ok"] is ok, verdict["problems"]
    if not ok:
        assert {p["code"] for p in verdict["problems"]} == {"break_glass"}


def test_pre_approved_passes_without_signatures_only_where_the_policy_says():
    req = make_request(action="collect_logs", **{"class": "pre-approved"})
    base = {"hosts": ["h1"], "groups": GROUPS, "approvers": APPROVERS, "policy": POLICY, "now": NOW}
    assert ap.verify_ticket(ticket(req, []), action="collect_logs", **base)["ok"]
    restart = make_request(**{"class": "pre-approved"})
    assert [p["code"] for p in ap.verify_ticket(ticket(restart, []), action="restart", **base)["problems"]] == ["class"]
    maintain = make_request(action="maintain", **{"class": "pre-approved"})
    assert [p["code"] for p in ap.verify_ticket(ticket(maintain, []), action="maintain", **base)["problems"]] == \
        ["maintenance_window"]
    night = {**base, "now": datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)}  # 03:00 +08
    req_night = make_request(action="maintain", window={"start": "2026-11-24T18:00:00+00:00", "end": "2026-11-24T20:00:00+00:00"},
                             **{"class": "pre-approved"})
    assert ap.verify_ticket(ticket(req_night, []), action="maintain", **night)["ok"]


@pytest.mark.parametrize("period,local,inside", [
    ({"from": "01:00", "to": "05:00"}, "2026-11-25T03:00", True),
    ({"from": "01:00", "to": "05:00"}, "2026-11-25T05:00", False),
    ({"from": "22:00", "to": "06:00", "weekdays": ["tue"]}, "2026-11-25T02:00", True),   # Wed 02:00 belongs to Tue night
    ({"from": "22:00", "to": "06:00", "weekdays": ["wed"]}, "2026-11-25T02:00", False),
    ({"from": "22:00", "to": "06:00", "weekdays": ["wed"]}, "2026-11-25T23:00", True),
    ({"from": "08:00", "to": "12:00", "weekdays": ["sat", "sun"]}, "2026-11-25T09:00", False),
])
def test_daily_periods(period, local, inside):
    tz = ap.zone("+08:00")
    dt = datetime.fromisoformat(local).replace(tzinfo=tz)
    assert ap.in_daily_period(period, dt, tz) is inside


def test_outpatient_blackout_with_the_real_clinic_calendar():
    from hospops.clinic_calendar import ClinicCalendar

    calendar = ClinicCalendar.from_config(None)
    req = make_request(action="upgrade", targets=["h1"],
                       window={"start": "2026-11-25T00:00:00+00:00", "end": "2026-11-25T23:00:00+00:00"})
    t = ticket(req, [signed(req, "bob", expires="2026-11-25T23:00:00+00:00"),
                     signed(req, "alice", expires="2026-11-25T23:00:00+00:00")])
    base = {"action": "upgrade", "hosts": ["h1"], "groups": GROUPS, "approvers": APPROVERS, "policy": POLICY,
            "is_outpatient_hours": calendar.is_outpatient_hours}
    wednesday_morning = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai, a clinic day
    assert calendar.is_outpatient_hours(wednesday_morning)
    assert [p["code"] for p in ap.verify_ticket(t, now=wednesday_morning, **base)["problems"]] == ["blackout"]
    late_evening = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)  # 22:00 in Shanghai
    assert ap.verify_ticket(t, now=late_evening, **base)["ok"]


def test_gate_ledger_claims_a_nonce_for_one_run():
    from ansible_collections.fuhosp.ops.plugins.action.change_gate import consume_nonce, run_identity

    ledger = tempfile.mkdtemp()
    me = run_identity()
    other = {**me, "pid": me["pid"] + 1}
    nonce = "cd" * 16
    assert consume_nonce(ledger, nonce, "CHG-1", me, check_mode=True) is None  # check mode: verify only
    assert not os.path.exists(os.path.join(ledger, "nonces", nonce + ".json"))
    assert consume_nonce(ledger, nonce, "CHG-1", me, check_mode=False) is None  # claimed
    assert consume_nonce(ledger, nonce, "CHG-1", me, check_mode=False) is None  # same run: next serial batch
    assert "already used by another run" in consume_nonce(ledger, nonce, "CHG-1", other, check_mode=False)
    assert "already used by another run" in consume_nonce(ledger, nonce, "CHG-1", other, check_mode=True)
    assert oct(os.stat(os.path.join(ledger, "nonces", nonce + ".json")).st_mode & 0o777) == "0o600"
