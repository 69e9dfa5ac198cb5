"""hospops drill run|list|show: restore drills and their evidence (GB/T 22239 level 3 restore-test records)."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("drill", help="restore drills: restore the latest backup to a scratch host and keep evidence")
    s = p.add_subparsers(dest="drill_command", metavar="ACTION", required=True)
    r = s.add_parser("run", help="run a restore drill now (playbooks/restore_drill.yml) and record its evidence")
    r.add_argument("-i", "--inventory", type=Path, help="inventory (default: $HOSPOPS_INVENTORY or inventories/lab)")
    r.add_argument("--keep-scratch", action="store_true", help="leave the scratch host running for inspection")
    r.add_argument("--as", dest="actor", default=os.environ.get("HOSPOPS_ACTOR") or getpass.getuser(),
                   help="who runs it (default: $HOSPOPS_ACTOR or the login name)")
    r.set_defaults(func=_run)
    ls = s.add_parser("list", help="the latest drills")
    ls.add_argument("-n", "--limit", type=int, default=20)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_list)
    sh = s.add_parser("show", help="the evidence of one drill")
    sh.add_argument("drill_id")
    sh.add_argument("--json", action="store_true", help="print JSON")
    sh.set_defaults(func=_show)


def _run(args) -> int:
    from hospops import drills
    from hospops.store import open_store

    store = open_store()
    row = drills.run_drill(store, actor=args.actor, inventory=args.inventory, keep_scratch=args.keep_scratch)
    sys.stdout.write(drills.render_show(row))
    return 0 if row["status"] == "passed" else 1


def _list(args) -> int:
    from hospops import drills
    from hospops.store import open_store

    rows = drills.list_drills(open_store(), args.limit)
    sys.stdout.write(json.dumps(rows, indent=2) + "\n" if args.json else drills.render_list(rows))
    return 0


def _show(args) -> int:
    from hospops import drills
    from hospops.store import open_store

    row = drills.get(open_store(), args.drill_id)
    sys.stdout.write(json.dumps(row, indent=2) + "\n" if args.json else drills.render_show(row))
    return 0
