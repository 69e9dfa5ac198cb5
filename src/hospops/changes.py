"""Change requests and signed decisions: request, approve, deny, list, export a ticket for the gate.

A request is stored as the canonical JSON the approvers sign (through its digest). Decisions are
Ed25519 signatures made with the approver's private key over ``_approval.approval_payload``; every
state change happens inside ``store.transaction()`` so a racing approve and deny leave exactly one
outcome, and every step is written to the audit chain.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from hospops import audit
from hospops._collection import approval
from hospops.errors import UserError
from hospops.policy import Policy

KNOWN_ACTIONS = ("restart", "redeploy", "upgrade", "rollback", "restore", "maintain", "collect_logs",
                 "backup", "restore_drill", "inspect")
RUNNABLE_STATES = ("approved", "break-glass", "pre-approved")
DEFAULT_WINDOW = timedelta(hours=4)

#: Plan checks per action. A validator gets the request's ``plan`` (dict or None) and returns
#: problems as sentences; any problem refuses the request before anything is stored.
PLAN_VALIDATORS: dict[str, Callable[[dict[str, Any] | None], list[str]]] = {}

#: Actions an approver may only approve after a successful rehearsal is attached (contract 5.5:
#: approvers see what the upgrade will change before they sign).
REHEARSED_ACTIONS = ("upgrade",)


def register_plan_validator(action: str, validator: Callable[[dict[str, Any] | None], list[str]]) -> None:
    PLAN_VALIDATORS[action] = validator


def _upgrade_plan_problems(plan: dict[str, Any] | None) -> list[str]:
    from hospops import upgrade_plan  # imported on use: the plan format does not need this module

    return upgrade_plan.request_problems(plan)


register_plan_validator("upgrade", _upgrade_plan_problems)


@dataclass
class Change:
    id: str
    state: str
    request: dict[str, Any]
    digest: str
    approvals: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = ""
    decided_at: str | None = None
    approval_due: str | None = None

    @property
    def action(self) -> str:
        return self.request["action"]

    @property
    def klass(self) -> str:
        return self.request["class"]

    def ticket(self) -> dict[str, Any]:
        """The document the gate verifies (``hospops change export``)."""
        ap = approval()
        return {
            "format": ap.FORMAT,
            "request": self.request,
            "request_digest": self.digest,
            "approvals": [{"payload": a["payload"], "signature": a["signature"]} for a in self.approvals],
            "state": self.state,
            "exported_at": ap.iso(datetime.now(timezone.utc)),
        }


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _time(value: str | datetime | None, tz, default: datetime) -> datetime:
    if value in (None, ""):
        return default
    if isinstance(value, datetime):
        dt = value
    elif value == "now":
        return default
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise UserError(f"{value!r} is not a date and time", "use ISO form, e.g. 2026-11-26T01:00+08:00") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def request(store, policy: Policy, *, action: str, targets: list[str], reason: str, requester: str,
            window_start: str | datetime | None = None, window_end: str | datetime | None = None,
            incident: str | None = None, incident_level: str | None = None, break_glass: bool = False,
            plan: dict[str, Any] | None = None, now: datetime | None = None) -> Change:
    """File a change request; break-glass and pre-approved ones are runnable at once."""
    ap = approval()
    now = now or _now()
    if not reason or not reason.strip():
        raise UserError("a change request needs a reason", "say what is wrong and what the change does (--reason)")
    if not targets:
        raise UserError("a change request needs targets", "name hosts or groups (--target ih1 --target svc_portal)")
    known = set(policy.groups) | {h for hosts in policy.groups.values() for h in hosts}
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise UserError(f"target(s) {', '.join(unknown)} are neither hosts nor groups of the inventory",
                        "check the names with ansible-inventory --graph")
    plan_problems = PLAN_VALIDATORS.get(action, lambda _p: [])(plan)
    if plan_problems:
        raise UserError("change not filed: " + "; ".join(plan_problems),
                        "correct the plan; approvers sign it with the request")
    klass = ap.default_class(policy.rules, action, break_glass)
    allowed = ap.action_policy(policy.rules, action)["classes"]
    if klass not in allowed:
        raise UserError(f"{action} may not be requested as {klass} (policy allows: {', '.join(allowed)})",
                        "request a normal approval, or change hospops_change_policy")
    tz = ap.zone(policy.rules.get("timezone"))
    start = _time(window_start, tz, now)
    end = _time(window_end, tz, start + DEFAULT_WINDOW)
    if end <= start:
        raise UserError("the window ends before it starts", "give --window-end after --window-start")
    if end - start > timedelta(hours=float(policy.rules["max_window_hours"])):
        raise UserError(f"the window is longer than {policy.rules['max_window_hours']} hours", "ask for a shorter window")
    if end <= now:
        raise UserError("the window is already over", "give a window in the future")
    _plan_window_matches(plan, start, end)
    due = None
    if klass == "break-glass":
        levels = policy.rules["break_glass"].get("incident_levels") or ["L1"]
        if not incident or incident_level not in levels:
            raise UserError(f"break-glass needs a linked {'/'.join(levels)} incident (--incident ID --level L1)",
                            "without one, request a normal approval")
        if len(reason.strip()) < 10:
            raise UserError("break-glass needs a stated reason", "say why no approver can be reached (--reason)")
        due = ap.iso(now + timedelta(hours=float(policy.rules["break_glass"].get("approval_due_hours", 24))))
    change_id = f"CHG-{now:%Y%m%d}-{secrets.token_hex(3)}"
    req = {
        "id": change_id, "action": action, "class": klass, "targets": sorted(set(targets)), "reason": reason.strip(),
        "incident": incident, "incident_level": incident_level,
        "window": {"start": ap.iso(start), "end": ap.iso(end)}, "requester": requester,
        "nonce": secrets.token_hex(16), "created_at": ap.iso(now), "plan": plan,
    }
    state = {"approval": "pending", "break-glass": "break-glass", "pre-approved": "pre-approved"}[klass]
    digest = ap.request_digest(req)
    with store.transaction():
        store.execute(
            "INSERT INTO changes (id, action, class, state, targets, requester, incident, window_start, window_end,"
            " request, digest, nonce, created_at, approval_due) VALUES (:id, :action, :class, :state, :targets,"
            " :requester, :incident, :ws, :we, :request, :digest, :nonce, :created, :due)",
            {"id": change_id, "action": action, "class": klass, "state": state, "targets": json.dumps(req["targets"]),
             "requester": requester, "incident": incident, "ws": req["window"]["start"], "we": req["window"]["end"],
             "request": ap.canonical(req).decode("utf-8"), "digest": digest, "nonce": req["nonce"],
             "created": req["created_at"], "due": due})
        audit.record(store, "change.request", change_id,
                     {"action": action, "class": klass, "targets": req["targets"], "window": req["window"],
                      "incident": incident, "incident_level": incident_level, "reason": req["reason"],
                      "digest": digest, "approval_due": due}, actor=requester)
    summary = f"{action} on {', '.join(req['targets'])}: {req['reason']}"
    if klass == "break-glass":
        notify_everyone(store, "change.break_glass", change_id,
                        {"level": incident_level, "incident": incident, "title": f"BREAK-GLASS {action}",
                         "summary": f"{summary} (approval after the fact owed by {due})"},
                        actor=requester, inventory=policy.inventory)
    elif klass == "approval":
        notify_everyone(store, "approval.requested", change_id,
                        {"title": f"approval requested: {action}", "summary": summary,
                         "next": f"hospops change approve {change_id} --as NAME"},
                        actor=requester, inventory=policy.inventory)
    return get(store, change_id)


def _plan_window_matches(plan: dict[str, Any] | None, start: datetime, end: datetime) -> None:
    """A plan that names a window must name the request's: approvers sign one window, not two."""
    window = (plan or {}).get("window")
    if not isinstance(window, dict):
        return
    ap = approval()
    for key, wanted in (("start", start), ("end", end)):
        try:
            same = ap.parse_time(window.get(key)) == wanted
        except (TypeError, ValueError):
            same = False
        if not same:
            raise UserError(f"the plan's window.{key} ({window.get(key)}) is not the request's ({ap.iso(wanted)})",
                            "give the request the plan's window, or change the plan's window")


def notify_everyone(store, event: str, subject: str, context: dict[str, Any], actor: str, inventory=None) -> None:
    """Tell everyone the notification routes name (hospops.notify); a failure to notify is audited, never fatal."""
    if inventory is None:
        audit.record(store, "notify.skipped", subject, {"event": event, "why": "no inventory"}, actor=actor)
        return
    try:
        from hospops import notify
    except ImportError:
        audit.record(store, "notify.unavailable", subject, {"event": event}, actor=actor)
        return
    try:
        notify.send(store, event, {"subject": subject, "id": subject, **context}, inventory=inventory, actor=actor)
    except Exception as exc:  # noqa: BLE001 - a notification failure must not hide the change
        audit.record(store, "notify.failed", subject, {"event": event, "error": f"{type(exc).__name__}: {exc}"[:300]},
                     actor=actor)


def get(store, change_id: str) -> Change:
    row = store.one("SELECT * FROM changes WHERE id = :id", {"id": change_id})
    if row is None:
        raise UserError(f"no change {change_id}", "list them with `hospops change list`")
    approvals = store.query("SELECT * FROM approvals WHERE change_id = :id ORDER BY signed_at, approver", {"id": change_id})
    return Change(id=row["id"], state=row["state"], request=json.loads(row["request"]), digest=row["digest"],
                  approvals=[{**a, "payload": json.loads(a["payload"])} for a in approvals],
                  created_at=row["created_at"], decided_at=row["decided_at"], approval_due=row["approval_due"])


def list_changes(store, state: str | None = None, owed: bool = False) -> list[dict[str, Any]]:
    sql = "SELECT id, action, class, state, targets, requester, incident, window_start, window_end, created_at," \
          " approval_due FROM changes"
    params: dict[str, Any] = {}
    if owed:
        sql += " WHERE class = 'break-glass' AND state = 'break-glass'"
    elif state:
        sql += " WHERE state = :state"
        params["state"] = state
    return store.query(sql + " ORDER BY created_at DESC, id", params)


def decide(store, policy: Policy, change_id: str, *, approver: str, key, decision: str, comment: str = "",
           expires: str | datetime | None = None, now: datetime | None = None) -> Change:
    """Sign and record ``approve`` or ``deny``; the first decision that settles the change wins."""
    ap = approval()
    now = now or _now()
    who = policy.approver(approver)
    if ap.public_key_line(key).split()[1] != who["public_key"].split()[1]:
        raise UserError(f"this private key is not {approver}'s key declared in the inventory",
                        f"use {approver}'s own key (--key PATH), or update the inventory with `hospops keys new`")
    if decision == "deny" and not comment.strip():
        raise UserError("a denial needs a reason", "say why (--reason)")
    change = get(store, change_id)
    if decision == "approve":
        _require_rehearsal(store, change)
    exp = _time(expires, timezone.utc, ap.parse_time(change.request["window"]["end"]))
    payload = ap.approval_payload(change.request, approver=approver, decision=decision, expires=ap.iso(exp),
                                  signed_at=ap.iso(now), comment=comment.strip())
    signed = {"payload": payload, "signature": ap.sign(key, payload)}
    _valid, _denials, problems = ap.check_approvals(change.request, [signed], policy.approvers, now)
    if problems:
        raise UserError(f"{decision} refused: {problems[0]['what']}", problems[0]["fix"])
    with store.transaction():
        row = store.one("SELECT state FROM changes WHERE id = :id", {"id": change_id})
        state = row["state"]
        if state not in ("pending", "break-glass"):
            raise UserError(f"change {change_id} is already {state}; nothing to {decision}",
                            "file a new request if something changed")
        if store.one("SELECT 1 AS x FROM approvals WHERE change_id = :id AND approver = :a", {"id": change_id, "a": approver}):
            raise UserError(f"{approver} has already decided on {change_id}", "each approver decides once")
        store.execute(
            "INSERT INTO approvals (id, change_id, approver, organisation, decision, payload, signature, signed_at)"
            " VALUES (:id, :change, :approver, :org, :decision, :payload, :sig, :at)",
            {"id": str(uuid.uuid4()), "change": change_id, "approver": approver, "org": who["organisation"],
             "decision": decision, "payload": ap.canonical(payload).decode("utf-8"), "sig": signed["signature"],
             "at": payload["signed_at"]})
        rows = store.query("SELECT payload, signature FROM approvals WHERE change_id = :id", {"id": change_id})
        all_valid, all_denials, _ = ap.check_approvals(
            change.request, [{"payload": json.loads(r["payload"]), "signature": r["signature"]} for r in rows],
            policy.approvers, now)
        new_state = state
        if all_denials:
            new_state = "denied"
        elif not ap.quorum_problems(change.request, all_valid, policy.rules):
            new_state = "approved"
        if new_state != state:
            store.execute("UPDATE changes SET state = :s, decided_at = :at WHERE id = :id",
                          {"s": new_state, "at": ap.iso(now), "id": change_id})
        audit.record(store, f"change.{decision}", change_id,
                     {"approver": approver, "organisation": who["organisation"],
                      "fingerprint": ap.key_fingerprint(who["public_key"]), "expires": payload["expires"],
                      "comment": payload["comment"], "state": new_state, "previous_state": state,
                      "after_the_fact": state == "break-glass", "digest": payload["request_digest"]},
                     actor=approver)
    return get(store, change_id)


def _require_rehearsal(store, change: Change) -> None:
    """Approving an upgrade needs a successful rehearsal on record. A break-glass change has already
    run, so its approval after the fact is not held back; a denial never is."""
    if change.action not in REHEARSED_ACTIONS or change.klass == "break-glass":
        return
    latest = attachments(store, change.id, kind="rehearsal")
    if not latest:
        raise UserError(f"{change.action} {change.id} has not been rehearsed",
                        f"run `hospops upgrade rehearse {change.id}` so approvers see what will change")
    if not latest[-1]["body"].get("ok"):
        raise UserError(f"{change.action} {change.id} has not been rehearsed successfully: its latest rehearsal "
                        f"({latest[-1]['body'].get('run_id')}) failed",
                        f"see `hospops change show {change.id}`, fix what failed, then run "
                        f"`hospops upgrade rehearse {change.id}` again")


def attach(store, change_id: str, kind: str, body: dict[str, Any], actor: str) -> dict[str, Any]:
    """Keep a document about a change (e.g. a rehearsal's summary) beside it. Attachments are not
    part of the signed request: its digest stays the same, and approvers sign after reading them."""
    ap = approval()
    get(store, change_id)  # an unknown change is an error here, not an orphan row
    text = ap.canonical(body).decode("utf-8")
    row = {"id": str(uuid.uuid4()), "change_id": change_id, "kind": kind,
           # microseconds: two attachments in one second still sort in the order they were made
           "created_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
           "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "body": text}
    with store.transaction():
        store.execute("INSERT INTO change_attachments (id, change_id, kind, created_at, sha256, body)"
                      " VALUES (:id, :change_id, :kind, :created_at, :sha256, :body)", row)
        audit.record(store, "change.attach", change_id,
                     {"attachment": row["id"], "kind": kind, "sha256": row["sha256"]}, actor=actor)
    return {**row, "body": body}


def attachments(store, change_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    """A change's attachments, oldest first (the latest is the last)."""
    sql = "SELECT * FROM change_attachments WHERE change_id = :id"
    params: dict[str, Any] = {"id": change_id}
    if kind:
        sql += " AND kind = :kind"
        params["kind"] = kind
    rows = store.query(sql + " ORDER BY created_at, id", params)
    return [{**r, "body": json.loads(r["body"])} for r in rows]


def export(store, change_id: str, path: Path) -> Path:
    """Write the change ticket (request + signed decisions) for the gate; 0600, no secrets inside."""
    change = get(store, change_id)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(change.ticket(), ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def preflight(change: Change, policy: Policy, hosts: list[str], now: datetime | None = None,
              rehearsal: bool = False) -> dict[str, Any]:
    """The gate's own verification, run by the orchestrator before it starts anything.

    ``rehearsal``: a check-mode run before the approvals (the request itself must be sound, not denied)."""
    ap = approval()
    if rehearsal and change.state == "denied":
        raise UserError(f"change {change.id} was denied; there is nothing to rehearse", "file a new request")
    if not rehearsal and change.state not in RUNNABLE_STATES:
        raise UserError(f"change {change.id} is {change.state}, not approved",
                        f"collect approvals (`hospops change show {change.id}`) before running it")
    return ap.verify_ticket(change.ticket(), action=change.action, hosts=hosts, groups=policy.groups,
                            approvers=policy.approvers, policy=policy.rules, now=now or _now(),
                            is_outpatient_hours=policy.is_outpatient_hours, rehearsal=rehearsal)
