"""hospops inspect run [--light] | list | show ID | maintain [--check]: inspections and maintenance."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("inspect", help="inspections (read-only) and maintenance of hosts, database and apps")
    p.add_argument("-i", "--inventory")
    s = p.add_subparsers(dest="inspect_command", metavar="ACTION", required=True)
    r = s.add_parser("run", help="inspect now and store the results (full by default)")
    r.add_argument("--light", action="store_true", help="daily light inspection (no updates, no index details)")
    r.add_argument("--limit", help="hosts or groups (Ansible pattern)")
    r.add_argument("--actor", default="oncall")
    r.add_argument("--json", action="store_true", help="print the findings as JSON")
    r.set_defaults(func=_run)
    ls = s.add_parser("list", help="stored inspections")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    sh = s.add_parser("show", help="findings of one inspection (default: the latest)")
    sh.add_argument("id", nargs="?")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=_show)
    m = s.add_parser("maintain", help="file a pre-approved maintenance change and run playbooks/maintain.yml")
    m.add_argument("--limit")
    m.add_argument("--check", action="store_true", help="report what would be done, change nothing")
    m.add_argument("--actor", default="scheduler")
    m.set_defaults(func=_maintain)


def _print_findings(rows: list[dict]) -> None:
    from hospops.inspections import SEVERITY_ORDER

    rows = sorted(rows, key=lambda f: (SEVERITY_ORDER.index(f["severity"]), f["host"], f["code"]))
    if not rows:
        print("no findings")
    for f in rows:
        print(f"{f['severity']:<9} {f['host']:<10} {f['code']:<26} {f['message']}  [{f['clause']}]")


def _run(args) -> int:
    from hospops import inspections

    out = inspections.run(light=args.light, inventory=args.inventory, limit=args.limit, actor=args.actor)
    if args.json:
        json.dump({"id": out.id, "status": out.status, "run_id": out.run_id, "hosts": out.hosts,
                   "unreachable": out.unreachable, "findings": out.findings}, sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        print(f"inspection {out.id} ({out.kind}): {len(out.hosts)} hosts, {len(out.findings)} findings, {out.status}",
              file=sys.stderr)
        _print_findings(out.findings)
    return 0 if out.status == "ok" else 1


def _list(args) -> int:
    from hospops import inspections
    from hospops.store import open_store

    rows = inspections.runs(open_store())
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    for r in rows:
        print(f"{r['id']:<34} {r['kind']:<6} {r['status']:<8} {r['hosts']:>3} hosts {r['findings']:>4} findings  {r['started_at']}")
    return 0


def _show(args) -> int:
    from hospops import inspections
    from hospops.errors import UserError
    from hospops.store import open_store

    store = open_store()
    iid = args.id or (inspections.latest(store) or {}).get("id")
    if not iid:
        raise UserError("no inspection stored yet", "run `hospops inspect run` first")
    rows = inspections.findings(store, iid)
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        _print_findings(rows)
    return 0


def _maintain(args) -> int:
    from hospops import inspections

    out = inspections.maintain(inventory=args.inventory, limit=args.limit, check=args.check, actor=args.actor)
    for r in out["results"]:
        acts = r["result"].get("actions") or []
        print(f"{r['host']:<10} {r['kind']:<3} changed={r['changed']!s:<5} freed={r['freed_bytes']} bytes, "
              f"{len(acts)} database actions")
    print(f"change {out['change_id']}, run {out['run_id']}: {out['status']}", file=sys.stderr)
    return 0 if out["ok"] else 1
