"""hospops sla report --month YYYY-MM [--format md|html|csv] [-o FILE]: the monthly SLA report."""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("sla", help="SLA reports: incident timings, breaches, availability, MTTA/MTTR")
    p.add_argument("-i", "--inventory")
    s = p.add_subparsers(dest="sla_command", metavar="ACTION", required=True)
    r = s.add_parser("report", help="the report for one month")
    r.add_argument("--month", required=True, help="YYYY-MM (clinic time zone)")
    r.add_argument("--format", choices=["md", "html", "csv"], default="md")
    r.add_argument("-o", "--output", help="file to write (default: standard output)")
    r.set_defaults(func=_report)


def _report(args) -> int:
    from hospops import sla
    from hospops.incidents.runtime import build

    rt = build(args.inventory, notify=False)
    services = list((rt.inventory.var("hospops_services", None) or {}).keys())
    report = sla.build(rt.store, args.month, rt.policy, now=rt.now(), services=services)
    text = sla.render(report, args.format, rt.policy)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        print(f"wrote the {args.month} report ({len(report.incidents)} incidents) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
