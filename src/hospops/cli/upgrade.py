"""hospops upgrade plan|rehearse|run|status: upgrades under an approved upgrade and rollback plan
(contract 5.5). The work is in hospops.upgrades; this module reads arguments and prints."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path

from hospops.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("upgrade", help="plan, rehearse, run and check upgrades (contract 5.5)")
    s = p.add_subparsers(dest="upgrade_command", metavar="ACTION", required=True)

    pl = s.add_parser("plan", help="draft an upgrade plan from the release index and the running version")
    pl.add_argument("service", help="service object: portal, ih, waiting, journey")
    pl.add_argument("--to", dest="to_version", required=True, metavar="VERSION", help="the release to upgrade to")
    pl.add_argument("--from", dest="from_version", metavar="VERSION",
                    help="the running release (default: read from the nodes)")
    pl.add_argument("-o", "--output", type=Path, help="write the plan here (default: standard output)")
    pl.set_defaults(func=_plan)

    for name, helptext, func in (
            ("rehearse", "check-and-diff run of an upgrade change; attaches what would change for the approvers",
             _rehearse),
            ("run", "run an approved upgrade (also resumes one that was interrupted)", _run)):
        c = s.add_parser(name, help=helptext)
        c.add_argument("id", metavar="CHG-ID")
        c.add_argument("--as", dest="actor", default=os.environ.get("HOSPOPS_ACTOR") or getpass.getuser(),
                       help="who runs it (default: $HOSPOPS_ACTOR or the login name)")
        c.set_defaults(func=func)

    st = s.add_parser("status", help="each node's version and health; consistent or MIXED")
    st.add_argument("service", help="service object: portal, ih, waiting, journey")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_status)

    for parser in s.choices.values():
        parser.add_argument("-i", "--inventory", type=Path,
                            help="inventory (default: $HOSPOPS_INVENTORY or inventories/lab)")


def _inventory(args):
    from hospops.inventory import load

    return load(args.inventory)


def _store():
    from hospops.store import open_store

    return open_store()


def _plan(args) -> int:
    from hospops import policy, upgrade_plan, upgrade_scaffold

    inv = _inventory(args)
    plan, notes = upgrade_scaffold.scaffold(inv, policy.load(inv), args.service, args.to_version, args.from_version)
    text = upgrade_scaffold.HEADER + upgrade_plan.dump(plan)
    if args.output:
        if args.output.exists():
            raise UserError(f"{args.output} exists; a drafted plan would overwrite someone's edits",
                            "give another -o FILE, or remove the old one first")
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text, end="")
    for note in notes:
        print(f"  note: {note}", file=sys.stderr)
    print("  next: edit impact, window and rollback; then "
          f"`hospops change request upgrade {args.output or 'PLAN.yml'}`", file=sys.stderr)
    return 0


def _rehearse(args) -> int:
    from hospops import rehearsal, upgrades

    summary = upgrades.rehearse(_store(), _inventory(args), args.id, args.actor)
    print("\n".join(rehearsal.render(summary)))
    stats = summary.get("stats") or {}
    if stats:
        print(f"  the role would: {stats.get('service')} {stats.get('from_version')} -> {stats.get('to_version')},"
              f" outcome {stats.get('outcome')}")
    print(f"  attached to {args.id}; approvers see it in `hospops change show {args.id}`", file=sys.stderr)
    return 0 if summary["ok"] else 1


# the role's last task restates the outcome for a run by hand; hospops prints its own headline
ROLE_SUMMARY_TASK = "Fail, saying what was done"


def _run(args) -> int:
    from hospops import upgrades

    out = upgrades.run(_store(), _inventory(args), args.id, args.actor)
    print(out.headline())
    print("\n".join(out.node_lines()))
    for host, task, msg in out.failures:
        if task.startswith(ROLE_SUMMARY_TASK):  # the headline already says it
            continue
        print(f"  {host}: {task}: {msg}", file=sys.stderr)
    print(f"  run {out.run_id}; next: `hospops upgrade status {out.service}`", file=sys.stderr)
    return 0 if out.on_target else 1


def _status(args) -> int:
    from hospops import upgrades

    readings = upgrades.read_nodes(_inventory(args), args.service)
    text, ok = upgrades.verdict(readings)
    if args.json:
        print(json.dumps({"service": args.service, "verdict": text, "ok": ok,
                          "nodes": [r.__dict__ for r in readings]}, ensure_ascii=False, indent=2))
        return 0 if ok else 1
    for r in readings:
        print(f"  {r.host:<10} {r.version or '?':<20} {'ok' if r.ok else r.error or 'down'}")
    print(f"{args.service}: {text}")
    return 0 if ok else 1
