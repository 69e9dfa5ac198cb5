"""hospops restart|redeploy|rollback SERVICE --change ID: the fault runbooks (contract 7.7.2)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path


def _common(p) -> None:
    p.add_argument("service", help="service object: portal, ih, waiting, journey")
    p.add_argument("--change", required=True, metavar="ID", help="the approved change (hospops change request ...)")
    p.add_argument("-i", "--inventory", type=Path, help="inventory (default: $HOSPOPS_INVENTORY or inventories/lab)")
    p.add_argument("--as", dest="actor", default=os.environ.get("HOSPOPS_ACTOR") or getpass.getuser(),
                   help="who runs it (default: $HOSPOPS_ACTOR or the login name)")


def register(sub) -> None:
    p = sub.add_parser("restart", help="restart a service object node by node, verifying each (approved change)")
    _common(p)
    p.add_argument("--force", action="store_true", help="restart healthy nodes too (default: only unhealthy ones)")
    p.add_argument("--serial", type=int, default=1, help="nodes restarted at a time (default 1)")
    p.set_defaults(func=_restart)
    p = sub.add_parser("redeploy", help="deploy a release node by node; a failing node rolls back by itself")
    _common(p)
    p.add_argument("version", help="release version, e.g. 1.0.0 (the running one to redeploy it)")
    p.set_defaults(func=_redeploy)
    p = sub.add_parser("rollback", help="return a service object to its previous release")
    _common(p)
    p.add_argument("--to", dest="version", help="version to return to (default: the one before the last switch)")
    p.set_defaults(func=_rollback)


def _go(args, action: str, extravars: dict) -> int:
    from hospops import runbooks
    from hospops.inventory import load
    from hospops.store import open_store

    outcome = runbooks.run(open_store(), load(args.inventory), action, args.service, args.change, args.actor, extravars)
    run = outcome.run
    print(f"{action} {args.service} on {', '.join(outcome.hosts)}: {'OK' if run.ok else 'FAILED'} (run {run.run_id})")
    for host, info in sorted(outcome.per_host.items()):
        if info.get("restarted"):
            print(f"  {host:<10} restarted, healthy after {info.get('seconds_to_healthy')} s"
                  + (f", test payment {info['payment_id']} recorded" if info.get("payment_id") else ""))
        else:
            print(f"  {host:<10} healthy, left alone")
    for host, task, msg in runbooks.failures(run):
        print(f"  {host}: {task}: {msg}", file=sys.stderr)
    if run.failed_hosts or run.unreachable_hosts:
        print(f"  failed: {', '.join(run.failed_hosts) or '-'}; unreachable: {', '.join(run.unreachable_hosts) or '-'}",
              file=sys.stderr)
        print(f"  see the task output above and {run.artifacts_dir}", file=sys.stderr)
    elif run.ok:
        print(f"  next: send the fault's logs to the developers: hospops logs collect --service {args.service} --since ...")
    return 0 if run.ok else 1


def _restart(args) -> int:
    return _go(args, "restart", {"restart_mode": "always" if args.force else "unhealthy", "restart_serial": args.serial})


def _redeploy(args) -> int:
    return _go(args, "redeploy", {"redeploy_version": args.version})


def _rollback(args) -> int:
    return _go(args, "rollback", {"rollback_version": args.version} if args.version else {})
