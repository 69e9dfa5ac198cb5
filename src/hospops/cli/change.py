"""hospops change request|show|list|approve|deny|export: changes the hospital must agree to first."""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from hospops.errors import UserError


def _actor() -> str:
    return os.environ.get("HOSPOPS_ACTOR") or getpass.getuser()


def register(sub) -> None:
    p = sub.add_parser("change", help="request, approve, deny and export changes (contract 7.7.2 A, 5.5)")
    s = p.add_subparsers(dest="change_command", metavar="ACTION", required=True)

    r = s.add_parser("request", help="file a change request")
    r.add_argument("action", help="restart, redeploy, upgrade, rollback, restore, maintain, collect_logs, ...")
    r.add_argument("plan", nargs="?", type=Path,
                   help="upgrade only: the upgrade plan with its rollback plan (YAML or JSON; "
                        "draft one with `hospops upgrade plan`)")
    r.add_argument("--target", "-t", action="append", default=[],
                   help="host or group (repeatable); an upgrade's targets come from its plan")
    r.add_argument("--reason", help="what is wrong and what the change does (an upgrade: default from its plan)")
    r.add_argument("--window-start", help="ISO time (default: now); without an offset, the policy timezone")
    r.add_argument("--window-end", help="ISO time (default: start + 4 h)")
    r.add_argument("--incident", help="linked incident id")
    r.add_argument("--level", choices=["L1", "L2", "L3", "L4"], help="the incident's level")
    r.add_argument("--break-glass", action="store_true", help="L1 emergency without a reachable approver")
    r.add_argument("--as", dest="actor", default=_actor(), help="requester (default: $HOSPOPS_ACTOR or login name)")
    r.set_defaults(func=_request)

    sh = s.add_parser("show", help="the request, its digest and the decisions on it")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=_show)

    ls = s.add_parser("list", help="list changes")
    ls.add_argument("--state", choices=["pending", "approved", "denied", "break-glass", "pre-approved"])
    ls.add_argument("--owed", action="store_true", help="break-glass changes still waiting for their approval")
    ls.set_defaults(func=_list)

    for name, helptext in (("approve", "sign an approval with the approver's private key"),
                           ("deny", "sign a denial (with a reason)")):
        d = s.add_parser(name, help=helptext)
        d.add_argument("id")
        d.add_argument("--as", dest="approver", required=True, help="approver name as declared in the inventory")
        d.add_argument("--key", type=Path, help="private key (default: $HOSPOPS_HOME/keys/NAME.key)")
        if name == "approve":
            d.add_argument("--expires", help="ISO time the approval expires (default: end of the window)")
            d.add_argument("--comment", default="")
        else:
            d.add_argument("--reason", required=True)
        d.set_defaults(func=_decide, decision=name)

    e = s.add_parser("export", help="write the signed ticket the gate verifies")
    e.add_argument("id")
    e.add_argument("-o", "--output", type=Path, required=True)
    e.set_defaults(func=_export)

    for parser in (r, sh, ls, e) + tuple(s.choices[n] for n in ("approve", "deny")):
        parser.add_argument("-i", "--inventory", type=Path, help="inventory (default: $HOSPOPS_INVENTORY or inventories/lab)")


def _policy(args):
    from hospops import inventory, policy

    return policy.load(inventory.load(args.inventory))


def _store():
    from hospops.store import open_store

    return open_store()


def _request(args) -> int:
    from hospops import changes

    pol = _policy(args)
    if args.action == "upgrade":
        change = _request_upgrade(args, pol)
    else:
        if args.plan:
            raise UserError(f"only an upgrade takes a plan file, not {args.action}", f"drop {args.plan}")
        change = changes.request(
            _store(), pol, action=args.action, targets=args.target, reason=args.reason or "", requester=args.actor,
            window_start=args.window_start, window_end=args.window_end, incident=args.incident,
            incident_level=args.level, break_glass=args.break_glass)
    print(change.id)
    print(f"  {change.klass}, state {change.state}; window {change.request['window']['start']} .. "
          f"{change.request['window']['end']}; digest {change.digest}", file=sys.stderr)
    if change.action == "upgrade" and change.state == "pending":
        print(f"  next: `hospops upgrade rehearse {change.id}` (what would change), then approvers run "
              f"`hospops change approve {change.id} --as NAME`", file=sys.stderr)
    elif change.state == "pending":
        print(f"  next: an approver runs `hospops change approve {change.id} --as NAME`", file=sys.stderr)
    return 0


def _request_upgrade(args, pol):
    from hospops import upgrades

    if not args.plan:
        raise UserError("an upgrade needs its upgrade plan with the rollback plan (contract 5.5)",
                        "hospops change request upgrade PLAN.yml; draft one with "
                        "`hospops upgrade plan SERVICE --to VERSION -o PLAN.yml`")
    if args.target:
        raise UserError("an upgrade's targets come from its plan (the service's hosts and the gateways)",
                        "drop --target")
    if args.break_glass:
        raise UserError("an upgrade cannot be break-glass: its plans are approved in advance (contract 5.5)",
                        "for an emergency, request a restart, redeploy or rollback")
    return upgrades.request(_store(), pol, pol.inventory, args.plan, requester=args.actor, reason=args.reason,
                            window_start=args.window_start, window_end=args.window_end,
                            incident=args.incident, incident_level=args.level)


def _show(args) -> int:
    from hospops import changes

    store = _store()
    change = changes.get(store, args.id)
    attached = changes.attachments(store, change.id)
    if args.json:
        print(json.dumps({**change.ticket(), "approval_due": change.approval_due, "plan": change.request.get("plan"),
                          "attachments": attached}, indent=2, ensure_ascii=False))
        return 0
    req = change.request
    print(f"{change.id}  {req['action']} ({change.klass})  state: {change.state}")
    print(f"  targets:   {', '.join(req['targets'])}")
    print(f"  window:    {req['window']['start']} .. {req['window']['end']}")
    print(f"  requester: {req['requester']}   reason: {req['reason']}")
    if req.get("incident"):
        print(f"  incident:  {req['incident']} ({req.get('incident_level')})")
    if change.approval_due:
        print(f"  approval after the fact due by {change.approval_due}")
    if req["action"] == "upgrade" and isinstance(req.get("plan"), dict):
        from hospops import upgrade_view

        print("\n".join(upgrade_view.describe_plan(req["plan"]) + upgrade_view.describe_rehearsal(attached)))
    elif req.get("plan"):
        print(f"  plan:      {json.dumps(req['plan'], ensure_ascii=False)[:200]}")
    print(f"  digest:    {change.digest}  (what approvers sign)")
    for a in change.approvals:
        extra = f": {a['payload'].get('comment')}" if a["payload"].get("comment") else ""
        print(f"  {a['decision']:<8} {a['approver']} ({a['organisation']}) at {a['signed_at']},"
              f" expires {a['payload']['expires']}{extra}")
    return 0


def _list(args) -> int:
    from hospops import changes

    rows = changes.list_changes(_store(), state=args.state, owed=args.owed)
    if not rows:
        print("no changes" + (" owing an approval" if args.owed else ""))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for r in rows:
        due = ""
        if r["approval_due"] and r["state"] == "break-glass":
            due = f"  approval {'OVERDUE since' if r['approval_due'] < now else 'due'} {r['approval_due']}"
        print(f"{r['id']}  {r['action']:<12} {r['state']:<12} {','.join(json.loads(r['targets'])):<20}"
              f" by {r['requester']}  window {r['window_start']}..{r['window_end']}{due}")
    return 0


def _decide(args) -> int:
    from hospops import changes, keys

    pol = _policy(args)
    key = keys.load_private_key(keys.find_private_key(args.approver, args.key))
    change = changes.decide(_store(), pol, args.id, approver=args.approver, key=key, decision=args.decision,
                            comment=getattr(args, "reason", None) or getattr(args, "comment", "") or "",
                            expires=getattr(args, "expires", None))
    req = change.request
    print(f"{change.id}: {args.decision} by {args.approver} recorded; state {change.state}")
    print(f"  signed: {req['action']} on {', '.join(req['targets'])}, window {req['window']['start']} .. "
          f"{req['window']['end']}, request digest {change.digest}", file=sys.stderr)
    return 0


def _export(args) -> int:
    from hospops import changes

    path = changes.export(_store(), args.id, args.output)
    print(f"wrote {path}", file=sys.stderr)
    return 0
