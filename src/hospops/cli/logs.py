"""hospops logs collect: a fault's logs for the developers, redacted on the hosts (contract 7.7.2 E)."""

from __future__ import annotations

import getpass
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hospops.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("logs", help="collect a fault's logs, patient data redacted on the hosts")
    s = p.add_subparsers(dest="logs_command", metavar="ACTION", required=True)
    c = s.add_parser("collect", help="journals and app logs of a window, redacted, hashed, into one bundle")
    c.add_argument("--incident", help="take the service and window from this incident (opened - 30 min .. resolved + 10 min)")
    c.add_argument("--service", help="service object (when no incident is given)")
    c.add_argument("--since", help="ISO start of the window (default: 1 h ago)")
    c.add_argument("--until", help="ISO end of the window (default: now)")
    c.add_argument("-i", "--inventory", type=Path, help="inventory (default: $HOSPOPS_INVENTORY or inventories/lab)")
    c.add_argument("--as", dest="actor", default=os.environ.get("HOSPOPS_ACTOR") or getpass.getuser())
    c.set_defaults(func=_collect)


def _when(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UserError(f"{value!r} is not an ISO time", "write e.g. 2026-11-25T17:00:00+08:00") from exc
    return t if t.tzinfo else t.astimezone()


def _collect(args) -> int:
    from hospops import changes, policy, runbooks
    from hospops.inventory import load
    from hospops.store import open_store

    store, inv = open_store(), load(args.inventory)
    now = datetime.now(timezone.utc)
    if args.incident:
        service, since, until = runbooks.incident_window(store, args.incident, timedelta(minutes=30), timedelta(minutes=10))
        bundle_id = args.incident
    elif args.service:
        service, since, until = args.service, _when(args.since, now - timedelta(hours=1)), _when(args.until, now)
        bundle_id = f"{service}-{since:%Y%m%dT%H%M}-{until:%Y%m%dT%H%M}"
    else:
        raise UserError("say whose logs to collect", "give --incident ID, or --service NAME [--since --until]")
    hosts = runbooks.service_hosts(inv, service)
    change = changes.request(store, policy.load(inv), action="collect_logs", targets=hosts,
                             reason=f"logs of {service} for the developers ({bundle_id})", requester=args.actor,
                             incident=args.incident)
    result, bundle = runbooks.collect_logs(store, inv, bundle_id=bundle_id, since=since, until=until, hosts=hosts,
                                           change_id=change.id, actor=args.actor)
    if bundle is None:
        print(f"log collection failed (run {result.run_id}); nothing left the hosts unredacted", flush=True)
        return 1
    print(f"bundle {bundle}: {', '.join(sorted(p.name for p in bundle.glob('*.tar.gz')))}")
    print(f"  manifest {bundle / 'SHA256SUMS'}; redaction report inside each archive (counts only)")
    return 0
