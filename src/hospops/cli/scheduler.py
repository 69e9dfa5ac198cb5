"""hospops scheduler list | run [--once] [--job NAME] | install [--dir DIR]: scheduled jobs."""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("scheduler", help="scheduled inspections, maintenance, reports, backups and drills")
    p.add_argument("-i", "--inventory")
    s = p.add_subparsers(dest="scheduler_command", metavar="ACTION", required=True)
    ls = s.add_parser("list", help="jobs, their cron expressions, next due and last status")
    ls.set_defaults(func=_list)
    r = s.add_parser("run", help="run due jobs (loop; --once for one pass) or one job now (--job)")
    r.add_argument("--once", action="store_true", help="one pass over the due jobs, then exit")
    r.add_argument("--job", help="run this job now (still locked against overlap and audited)")
    r.set_defaults(func=_run)
    i = s.add_parser("install", help="write systemd .service/.timer units, one pair per enabled job")
    i.add_argument("--dir", default="/etc/systemd/system", help="directory for the units (default %(default)s)")
    i.set_defaults(func=_install)


def _scheduler(args):
    from hospops import inventory, scheduler
    from hospops.store import open_store

    inv = inventory.load(args.inventory)
    tz, jobs = scheduler.load_jobs(inv.var("hospops_schedule", None))
    return scheduler.Scheduler(open_store(), jobs, tz)


def _list(args) -> int:
    from hospops import scheduler

    for row in scheduler.describe(_scheduler(args)):
        state = "on " if row["enabled"] else "off"
        print(f"{row['job']:<24} {state} {row['kind']:<8} {row['cron']:<20} next {row['next_due'] or '-':<17}"
              f" last {row['last_status'] or '-'}")
    return 0


def _run(args) -> int:
    sched = _scheduler(args)
    if args.job:
        rec = sched.run_job(sched.job(args.job), forced=True)
        print(f"{rec.job}: {rec.status} {rec.detail}")
        return 0 if rec.status == "ok" else 1
    if args.once:
        records = sched.tick()
        for rec in records:
            print(f"{rec.job}: {rec.status}{' (catch-up)' if rec.catch_up else ''} {rec.detail}")
        if not records:
            print("nothing due", file=sys.stderr)
        return 0 if all(r.status != "failed" for r in records) else 1
    print(f"hospops scheduler: {len([j for j in sched.jobs if j.enabled])} jobs, time zone {sched.tz}", file=sys.stderr)
    sched.loop()
    return 0


def _install(args) -> int:
    from hospops import scheduler

    sched = _scheduler(args)
    written = scheduler.install_systemd(sched.jobs, sched.tz, Path(args.dir))
    for path in written:
        print(path)
    print("then: systemctl daemon-reload && systemctl enable --now " +
          " ".join(p.name for p in written if p.suffix == ".timer"), file=sys.stderr)
    return 0
