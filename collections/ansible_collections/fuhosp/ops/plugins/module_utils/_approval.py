# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed change approvals: the ONE home of the canonical payload, the signature check and the policy
(quorum, classes, window, scope, blackouts) used by both the ``fuhosp.ops.change_gate`` action plugin
and the ``hospops`` orchestrator.

Pure Python plus ``cryptography`` (which ansible-core already requires); no Ansible imports, so the
orchestrator imports it directly and the gate imports it as a collection module_util.

A change ticket (JSON, written by ``hospops change export``)::

    {"format": "fuhosp.ops/change-ticket/v1",
     "request": {"id", "action", "class", "targets", "reason", "incident", "incident_level",
                 "window": {"start", "end"}, "requester", "nonce", "created_at", "plan"},
     "request_digest": "sha256:<hex of the canonical request>",
     "approvals": [{"payload": {...}, "signature": "<base64 Ed25519>"}]}

An approval payload is what an approver signs (canonical JSON: sorted keys, compact, UTF-8)::

    {"change_id", "action", "targets", "window", "expires", "nonce", "approver", "decision",
     "comment", "signed_at", "request_digest"}
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, time, timedelta, timezone, tzinfo
from typing import Any, Callable, Iterable, Mapping

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError as _exc:  # ansible-core requires cryptography; without it every ticket is refused
    CRYPTOGRAPHY_IMPORT_ERROR: ImportError | None = _exc
    InvalidSignature = ValueError  # type: ignore[assignment,misc]
    Ed25519PrivateKey = Ed25519PublicKey = None  # type: ignore[assignment,misc]
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

FORMAT = "fuhosp.ops/change-ticket/v1"
CLASSES = ("pre-approved", "approval", "break-glass")
DECISIONS = ("approve", "deny")
ORGANISATIONS = ("hospital-it", "department", "supplier")
PAYLOAD_FIELDS = ("change_id", "action", "targets", "window", "expires", "nonce", "approver",
                  "decision", "comment", "signed_at", "request_digest")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DEFAULT_POLICY: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "default_quorum": 1,
    "max_window_hours": 72,
    "actions": {},
    "break_glass": {"incident_levels": ["L1"], "approval_due_hours": 24},
    "maintenance_windows": [],
    "blackouts": [],
}


# ---------------------------------------------------------------------------------------------
# canonical form, digests, keys and signatures

def canonical(obj: Any) -> bytes:
    """Sorted-key compact JSON in UTF-8: the exact bytes that are hashed and signed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def request_digest(request: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(dict(request))).hexdigest()


def approval_payload(request: Mapping[str, Any], *, approver: str, decision: str, expires: str,
                     signed_at: str, comment: str = "") -> dict[str, Any]:
    """The payload an approver signs for ``request`` (decision ``approve`` or ``deny``)."""
    if decision not in DECISIONS:
        raise ValueError("decision must be one of %s" % ", ".join(DECISIONS))
    return {
        "change_id": request["id"],
        "action": request["action"],
        "targets": list(request["targets"]),
        "window": dict(request["window"]),
        "expires": expires,
        "nonce": request["nonce"],
        "approver": approver,
        "decision": decision,
        "comment": comment,
        "signed_at": signed_at,
        "request_digest": request_digest(request),
    }


class CalendarMissing(Exception):
    """A blackout needs the clinic calendar, which the caller could not provide."""


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def public_key_line(key: Ed25519PrivateKey | Ed25519PublicKey, comment: str = "") -> str:
    """The OpenSSH one-line form ``ssh-ed25519 AAAA... comment``, as pasted into the inventory."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    line = pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return "%s %s" % (line, comment) if comment else line


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from its OpenSSH line or PEM form."""
    text = (text or "").strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
    else:
        parts = text.split()
        if len(parts) < 2:
            raise ValueError("expected 'ssh-ed25519 AAAA...'")
        key = serialization.load_ssh_public_key(("%s %s" % (parts[0], parts[1])).encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def key_fingerprint(text: str) -> str:
    """SHA256 fingerprint of a public key (as ``ssh-keygen -l`` prints it)."""
    raw = load_public_key(text).public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(raw.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def sign(key: Ed25519PrivateKey, payload: Mapping[str, Any]) -> str:
    return base64.b64encode(key.sign(canonical(dict(payload)))).decode("ascii")


def signature_valid(public_key: str, payload: Mapping[str, Any], signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        load_public_key(public_key).verify(raw, canonical(dict(payload)))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# time

def parse_time(value: Any) -> datetime:
    """An aware datetime from ISO text (naive text is taken as UTC)."""
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def iso(dt: datetime) -> str:
    """ISO text in UTC, second precision: the form stored and signed."""
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def zone(name: str | None) -> tzinfo:
    name = name or "UTC"
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", name)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(delta if m.group(1) == "+" else -delta)
    from zoneinfo import ZoneInfo  # stdlib; imported late so a bad name surfaces as a policy problem

    return ZoneInfo(name)


def _hhmm(value: str) -> time:
    hours, minutes = str(value).split(":")
    return time(int(hours), int(minutes))


def in_daily_period(period: Mapping[str, Any], dt: datetime, tz: tzinfo) -> bool:
    """``{weekdays: [mon, ...], from: "HH:MM", to: "HH:MM"}``; ``to`` before ``from`` spans midnight."""
    local = dt.astimezone(tz)
    start, end = _hhmm(period["from"]), _hhmm(period["to"])
    days = [str(d).lower()[:3] for d in period.get("weekdays") or WEEKDAYS]
    now_t = local.time()
    if start <= end:
        return WEEKDAYS[local.weekday()] in days and start <= now_t < end
    # spans midnight: the part after midnight belongs to the day before
    if now_t >= start:
        return WEEKDAYS[local.weekday()] in days
    if now_t < end:
        return WEEKDAYS[(local.weekday() - 1) % 7] in days
    return False


# ---------------------------------------------------------------------------------------------
# policy

def normalise_policy(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    policy = json.loads(json.dumps(DEFAULT_POLICY))
    for key, value in (raw or {}).items():
        if key == "break_glass" and isinstance(value, Mapping):
            policy["break_glass"].update(value)
        else:
            policy[key] = value
    return policy


def action_policy(policy: Mapping[str, Any], action: str) -> dict[str, Any]:
    """What the policy says about one action: allowed ticket classes, quorum, required organisations."""
    spec = dict((policy.get("actions") or {}).get(action) or {})
    classes = spec.get("classes") or ["approval"]
    if isinstance(classes, str):
        classes = [classes]
    return {
        "classes": [str(c) for c in classes],
        "quorum": int(spec.get("quorum", policy.get("default_quorum", 1)) or 1),
        "require_organisations": [str(o) for o in spec.get("require_organisations") or []],
        "pre_approved_in_maintenance_window": bool(spec.get("pre_approved_in_maintenance_window", False)),
    }


def default_class(policy: Mapping[str, Any], action: str, break_glass: bool = False) -> str:
    if break_glass:
        return "break-glass"
    return "pre-approved" if "pre-approved" in action_policy(policy, action)["classes"] else "approval"


def blackouts_now(policy: Mapping[str, Any], action: str, now: datetime,
                  is_outpatient_hours: Callable[[datetime], bool] | None) -> list[str]:
    """Names of the blackouts covering ``action`` at ``now``.

    A blackout is ``{name, actions: [..] (default all), and one of: start/end (absolute),
    from/to/weekdays (daily, in the policy timezone), when: outpatient_hours (clinic calendar)}``.
    Raises CalendarMissing when a blackout needs the clinic calendar and none was given.
    """
    tz = zone(policy.get("timezone"))
    hits = []
    for b in policy.get("blackouts") or []:
        actions = b.get("actions") or ["*"]
        if "*" not in actions and action not in actions:
            continue
        name = str(b.get("name") or "unnamed blackout")
        if b.get("when") == "outpatient_hours":
            if is_outpatient_hours is None:
                raise CalendarMissing(name)
            hit = bool(is_outpatient_hours(now))
        elif "start" in b:
            hit = parse_time(b["start"]) <= now < parse_time(b["end"])
        elif "from" in b:
            hit = in_daily_period(b, now, tz)
        else:
            raise ValueError("blackout %r has neither when, start/end nor from/to" % name)
        if hit:
            hits.append(name)
    return hits


def in_maintenance_window(policy: Mapping[str, Any], now: datetime) -> bool:
    tz = zone(policy.get("timezone"))
    return any(in_daily_period(w, now, tz) for w in policy.get("maintenance_windows") or [])


# ---------------------------------------------------------------------------------------------
# verification

class Problem(dict):
    """One reason to refuse: ``code``, ``what`` is wrong and how to ``fix`` it."""

    def __init__(self, code: str, what: str, fix: str) -> None:
        super().__init__(code=code, what=what, fix=fix)

    def __str__(self) -> str:
        return "%s (fix: %s)" % (self["what"], self["fix"])


def approvers_by_name(approvers: Iterable[Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {str(a.get("name")): dict(a) for a in approvers or [] if a.get("name")}


def check_approvals(request: Mapping[str, Any], approvals: Iterable[Mapping[str, Any]],
                    approvers: Iterable[Mapping[str, Any]] | None, now: datetime
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Problem]]:
    """Split signed decisions into (valid approvals, valid denials, problems).

    A decision is valid when its approver is declared, its signature verifies against the declared
    key, it was signed for exactly this request (digest), it is not the requester's own, the
    approver may decide this action, and (for approvals) it has not expired.
    """
    known = approvers_by_name(approvers)
    digest = request_digest(request)
    valid, denials, problems = [], [], []
    for item in approvals:
        payload = item.get("payload") or {}
        name = str(payload.get("approver", "?"))
        who = known.get(name)
        if who is None:
            problems.append(Problem("unknown_approver", "approval by %r: no such approver in hospops_approvers" % name,
                                    "declare the approver (name, organisation, actions, public_key) in the inventory"))
            continue
        if not signature_valid(str(who.get("public_key", "")), payload, str(item.get("signature", ""))):
            problems.append(Problem("bad_signature", "the signature of %s does not verify against the key in the inventory "
                                    "(forged, altered, or signed with another key)" % name,
                                    "have %s sign again with `hospops change approve %s --as %s`"
                                    % (name, request.get("id"), name)))
            continue
        if payload.get("request_digest") != digest:
            problems.append(Problem("request_changed", "%s signed a different version of change %s (the request was changed after signing)"
                                    % (name, request.get("id")), "ask the approvers to review and sign the request as it is now"))
            continue
        mismatched = [f for f, v in (("change_id", request.get("id")), ("action", request.get("action")),
                                     ("targets", list(request.get("targets") or [])),
                                     ("window", dict(request.get("window") or {})), ("nonce", request.get("nonce")))
                      if payload.get(f) != v]
        if mismatched:
            problems.append(Problem("payload_mismatch", "the approval by %s does not match the request in %s" % (name, ", ".join(mismatched)),
                                    "ask %s to sign this request" % name))
            continue
        if name == request.get("requester"):
            problems.append(Problem("self_approval", "%s requested change %s and cannot approve it" % (name, request.get("id")),
                                    "another approver must decide"))
            continue
        allowed = [str(a) for a in who.get("actions") or []]
        if "*" not in allowed and request.get("action") not in allowed:
            problems.append(Problem("not_allowed", "%s may not approve %s (allowed: %s)"
                                    % (name, request.get("action"), ", ".join(allowed) or "nothing"),
                                    "ask an approver whose actions include %s" % request.get("action")))
            continue
        decision = payload.get("decision")
        entry = {"approver": name, "organisation": str(who.get("organisation", "")),
                 "fingerprint": _safe_fingerprint(who.get("public_key", "")), "signed_at": payload.get("signed_at"),
                 "comment": payload.get("comment", "")}
        if decision == "deny":
            denials.append(entry)
            continue
        if decision != "approve":
            problems.append(Problem("bad_decision", "unknown decision %r by %s" % (decision, name), "sign again"))
            continue
        try:
            expired = parse_time(payload.get("expires")) <= now
        except (TypeError, ValueError):
            expired = True
        if expired:
            problems.append(Problem("expired", "the approval by %s expired at %s" % (name, payload.get("expires")),
                                    "ask for a fresh approval (hospops change approve %s)" % request.get("id")))
            continue
        if any(v["approver"] == name for v in valid):
            continue  # one vote per approver
        valid.append(entry)
    return valid, denials, problems


def quorum_problems(request: Mapping[str, Any], valid: list[dict[str, Any]], policy: Mapping[str, Any]) -> list[Problem]:
    spec = action_policy(policy, str(request.get("action")))
    problems = []
    if len(valid) < spec["quorum"]:
        problems.append(Problem("quorum", "%d valid approval(s) for %s, the policy needs %d"
                                % (len(valid), request.get("action"), spec["quorum"]),
                                "collect more approvals with `hospops change approve %s --as NAME`" % request.get("id")))
    orgs = {v["organisation"] for v in valid}
    for org in spec["require_organisations"]:
        if org not in orgs:
            problems.append(Problem("organisation", "%s needs an approval from %s; none is valid" % (request.get("action"), org),
                                    "ask a %s approver to approve change %s" % (org, request.get("id"))))
    return problems


def expand_targets(targets: Iterable[str], groups: Mapping[str, Iterable[str]] | None) -> set[str]:
    """Approved targets (host or group names) as host names, groups expanded."""
    groups = groups or {}
    hosts: set[str] = set()
    for t in targets:
        if t in groups:
            hosts.update(str(h) for h in groups[t])
        else:
            hosts.add(str(t))
    return hosts


def verify_ticket(ticket: Mapping[str, Any], *, action: str, hosts: Iterable[str],
                  groups: Mapping[str, Iterable[str]] | None, approvers: Iterable[Mapping[str, Any]] | None,
                  policy: Mapping[str, Any] | None, now: datetime,
                  is_outpatient_hours: Callable[[datetime], bool] | None = None,
                  rehearsal: bool = False) -> dict[str, Any]:
    """Every check the gate makes except the one-run-per-approval nonce (the caller's ledger).

    ``rehearsal``: a run in check mode before the approvers sign (``hospops upgrade rehearse``): the
    request must be well formed, for this action and these hosts, and not denied; approvals, the time
    inside the window and blackouts are not required, since nothing changes.
    Returns ``{"ok", "problems", "change_id", "class", "approvals", "denials", "nonce", "window", ...}``.
    """
    policy = normalise_policy(policy)
    problems: list[Problem] = []
    verdict: dict[str, Any] = {"ok": False, "problems": problems, "approvals": [], "denials": []}
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        problems.append(Problem("cryptography", "cannot verify signatures: %s" % CRYPTOGRAPHY_IMPORT_ERROR,
                                "install the Python package cryptography for the controller's Python"))
        return verdict
    if not isinstance(ticket, Mapping) or ticket.get("format") != FORMAT or not isinstance(ticket.get("request"), Mapping):
        problems.append(Problem("format", "the change ticket is not a %s document" % FORMAT,
                                "export it with `hospops change export ID -o FILE`"))
        return verdict
    request = ticket["request"]
    verdict.update(change_id=request.get("id"), ticket_class=request.get("class"), nonce=request.get("nonce"),
                   requester=request.get("requester"), ticket_action=request.get("action"),
                   incident=request.get("incident"), window=request.get("window"), rehearsal=rehearsal)
    missing = [f for f in ("id", "action", "class", "targets", "window", "requester", "nonce", "reason")
               if not request.get(f)]
    if missing:
        problems.append(Problem("format", "the change request lacks %s" % ", ".join(missing),
                                "create the request with `hospops change request`"))
        return verdict
    if ticket.get("request_digest") not in (None, request_digest(request)):
        problems.append(Problem("request_changed", "the request in the ticket was changed after it was exported",
                                "export the ticket again with `hospops change export %s`" % request["id"]))

    # action
    if request["action"] != action:
        problems.append(Problem("action", "the play does %s but change %s approves %s" % (action, request["id"], request["action"]),
                                "request a change for %s, or run the playbook this change was approved for" % action))

    # class
    spec = action_policy(policy, request["action"])
    klass = request["class"]
    if klass not in CLASSES:
        problems.append(Problem("class", "unknown change class %r" % klass, "use one of %s" % ", ".join(CLASSES)))
    elif klass not in spec["classes"]:
        problems.append(Problem("class", "%s is not allowed as %s by hospops_change_policy (allowed: %s)"
                                % (request["action"], klass, ", ".join(spec["classes"])),
                                "request it as %s, or change the policy" % spec["classes"][0]))

    # approvals
    valid, denials, approval_problems = check_approvals(request, ticket.get("approvals") or [], approvers, now)
    verdict.update(approvals=valid, denials=denials)
    for d in denials:
        problems.append(Problem("denied", "%s denied change %s: %s" % (d["approver"], request["id"], d["comment"] or "no reason given"),
                                "address the reason and file a new request"))
    if rehearsal:
        problems.extend(p for p in approval_problems if p["code"] in ("bad_signature", "request_changed"))
    elif klass == "approval":
        problems.extend(approval_problems)
        problems.extend(quorum_problems(request, valid, policy))
    elif klass == "break-glass":
        levels = [str(x) for x in policy["break_glass"].get("incident_levels") or ["L1"]]
        if not request.get("incident") or request.get("incident_level") not in levels:
            problems.append(Problem("break_glass", "break-glass needs a linked %s incident (ticket has incident=%s, level=%s)"
                                    % ("/".join(levels), request.get("incident"), request.get("incident_level")),
                                    "open or link the incident, or request a normal approval"))
        if len(str(request.get("reason") or "").strip()) < 10:
            problems.append(Problem("break_glass", "break-glass needs a stated reason", "say why no approver can be reached"))
        problems.extend(p for p in approval_problems if p["code"] in ("bad_signature", "request_changed"))
    elif klass == "pre-approved":
        if spec["pre_approved_in_maintenance_window"] and not in_maintenance_window(policy, now):
            problems.append(Problem("maintenance_window", "%s is pre-approved only inside a maintenance window" % request["action"],
                                    "run it inside hospops_change_policy.maintenance_windows, or request an approval"))

    # scope
    approved = expand_targets(request["targets"], groups)
    outside = sorted(set(str(h) for h in hosts) - approved)
    verdict["hosts"] = sorted(str(h) for h in hosts)
    if not verdict["hosts"]:
        problems.append(Problem("scope", "the play has no hosts", "check the play's hosts and --limit"))
    if outside:
        problems.append(Problem("scope", "host(s) %s are not in the approved targets (%s)" % (", ".join(outside), ", ".join(request["targets"])),
                                "use --limit to the approved hosts, or request a change that covers them"))

    # window
    try:
        start, end = parse_time(request["window"]["start"]), parse_time(request["window"]["end"])
    except (KeyError, TypeError, ValueError):
        problems.append(Problem("window", "the change window is not readable", "request the change again"))
    else:
        if end <= start:
            problems.append(Problem("window", "the change window ends before it starts", "request a valid window"))
        elif end - start > timedelta(hours=float(policy["max_window_hours"])):
            problems.append(Problem("window", "the change window is longer than %s hours" % policy["max_window_hours"],
                                    "request a shorter window"))
        if rehearsal:
            pass
        elif now < start:
            problems.append(Problem("window", "the change window opens at %s; it is now %s" % (iso(start), iso(now)),
                                    "wait for the window, or request one that includes now"))
        elif now >= end:
            problems.append(Problem("window", "the change window closed at %s; it is now %s" % (iso(end), iso(now)),
                                    "request a new change with a new window"))

    # blackouts (break-glass is the emergency path and is not held by them)
    if klass != "break-glass" and not rehearsal:
        try:
            hits = blackouts_now(policy, request["action"], now, is_outpatient_hours)
        except CalendarMissing as exc:
            problems.append(Problem("blackout", "blackout %s needs the clinic calendar, which is not available" % exc,
                                    "define hospops_clinic_calendar and make hospops importable on the control node"))
        except (ValueError, KeyError) as exc:
            problems.append(Problem("blackout", "a blackout in hospops_change_policy is not readable: %s" % exc,
                                    "correct hospops_change_policy.blackouts"))
        else:
            for name in hits:
                problems.append(Problem("blackout", "%s is not allowed now: blackout %r" % (request["action"], name),
                                        "run after the blackout ends, or use break-glass for an L1 incident"))

    verdict["ok"] = not problems
    return verdict


def _safe_fingerprint(text: str) -> str:
    try:
        return key_fingerprint(text)
    except (ValueError, TypeError):
        return ""
