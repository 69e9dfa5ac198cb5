"""hospops backup run [--type full|diff|incr] [--verify]: take a backup now and ship the store off-site."""

from __future__ import annotations

import getpass
import os
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("backup", help="backups: take one now (playbooks/backup.yml), verify, ship the store off-site")
    s = p.add_subparsers(dest="backup_command", metavar="ACTION", required=True)
    r = s.add_parser("run", help="take a backup now")
    r.add_argument("--type", choices=["full", "diff", "incr"], default="incr")
    r.add_argument("--verify", action="store_true", help="verify the whole repository afterwards")
    r.add_argument("--no-store", action="store_true", help="do not ship the orchestrator's store")
    r.add_argument("-i", "--inventory", type=Path, help="inventory (default: $HOSPOPS_INVENTORY or inventories/lab)")
    r.add_argument("--as", dest="actor", default=os.environ.get("HOSPOPS_ACTOR") or getpass.getuser())
    r.set_defaults(func=_run)


def _run(args) -> int:
    from hospops.runner import run_playbook

    result = run_playbook("backup.yml", change_id=None, inventory=args.inventory, actor=args.actor,
                          extravars={"backup_type": args.type, "backup_verify": args.verify,
                                     "backup_store": not args.no_store})
    print(f"run {result.run_id}: {result.status} rc={result.rc}  artifacts: {result.artifacts_dir}")
    return 0 if result.ok else 1
