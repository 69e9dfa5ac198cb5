"""hospops watch [--interval S] [--once]: probe the services, open/update/resolve incidents."""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta


def register(sub) -> None:
    p = sub.add_parser("watch", help="probe health, a test payment and the database; keep incidents up to date")
    p.add_argument("-i", "--inventory")
    p.add_argument("--interval", type=float, help="seconds between rounds (default: hospops_probe.interval_seconds)")
    p.add_argument("--once", action="store_true", help="one round, then exit (exit 1 if a problem is open)")
    p.add_argument("--json", action="store_true", help="print each round as JSON")
    p.add_argument("--no-notify", action="store_true")
    p.set_defaults(func=_watch)


def _watch(args) -> int:
    from dataclasses import asdict

    from hospops.incidents.runtime import build
    from hospops.probes import ProbePlan, Watcher, format_round

    from hospops.clinic_calendar import coverage_warning

    rt = build(args.inventory, notify=not args.no_notify)
    plan = ProbePlan.from_inventory(rt.inventory)
    warning = coverage_warning(rt.policy.calendar, rt.now())
    if warning:
        print(f"hospops: warning: {warning}", file=sys.stderr)
    ack = timedelta(minutes=rt.notify_config.ack_minutes) if rt.notify_config else None
    watcher = Watcher(rt.store, rt.incidents, plan, ack_after=ack)
    tickets = rt.tickets()
    interval = args.interval if args.interval is not None else float(plan.settings["interval_seconds"])
    while True:
        report = watcher.round()
        tickets.check_clocks()
        if args.json:
            print(json.dumps({"at": report.at.isoformat(), "results": [asdict(r) for r in report.results],
                              "problems": report.problems, "opened": report.opened, "updated": report.updated,
                              "resolved": report.resolved}, ensure_ascii=False), flush=True)
        else:
            print(format_round(report), flush=True)
        if args.once:
            return 1 if report.problems else 0
        try:
            time.sleep(max(interval, 1.0))
        except KeyboardInterrupt:
            print("watch stopped", file=sys.stderr)
            return 0
