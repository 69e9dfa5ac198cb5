"""hospops run PLAYBOOK --change ID: run a playbook under an approved change, with live progress."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path

from hospops.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("run", help="run a playbook under an approved change (through ansible-runner)")
    p.add_argument("playbook", help="playbook name in playbooks/ (restart, restart.yml) or a path")
    p.add_argument("--change", metavar="ID", help="the approved change this run carries out")
    p.add_argument("-i", "--inventory", type=Path, help="inventory (default: $HOSPOPS_INVENTORY or inventories/lab)")
    p.add_argument("--limit", help="host pattern inside the change's targets (default: all its targets)")
    p.add_argument("--check", action="store_true", help="check mode: the gate verifies but does not use up the approval")
    p.add_argument("-e", "--extra-var", action="append", default=[], metavar="K=V",
                   help="extra variable (repeatable); values never reach logs, artifacts or the store")
    p.add_argument("--as", dest="actor", default=os.environ.get("HOSPOPS_ACTOR") or getpass.getuser(),
                   help="who runs it (default: $HOSPOPS_ACTOR or the login name)")
    p.set_defaults(func=_run)


def _extravars(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"-e {pair.split('=')[0]!r} is not K=V", "write -e name=value")
        try:
            out[key] = json.loads(value) if value[:1] in "[{" else value
        except ValueError:
            out[key] = value
    return out


def _run(args) -> int:
    from hospops.runner import run_playbook

    result = run_playbook(args.playbook, change_id=args.change, inventory=args.inventory,
                          extravars=_extravars(args.extra_var), limit=args.limit, check=args.check, actor=args.actor)
    gate = (result.gate or {}).get("decision", "none")
    print(f"run {result.run_id}: {result.status} rc={result.rc} gate={gate}")
    for host, stats in sorted(result.stats.items()):
        print(f"  {host:<14} " + " ".join(f"{k}={v}" for k, v in sorted(stats.items())))
    if result.failed_hosts or result.unreachable_hosts:
        print(f"  failed: {', '.join(result.failed_hosts) or '-'}  unreachable: {', '.join(result.unreachable_hosts) or '-'}",
              file=sys.stderr)
    if (result.gate or {}).get("problems"):
        for p in result.gate["problems"]:
            print(f"  gate: {p['what']}\n    fix: {p['fix']}", file=sys.stderr)
    print(f"  artifacts: {result.artifacts_dir}")
    return 0 if result.ok else 1
