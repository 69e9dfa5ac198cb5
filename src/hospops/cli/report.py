"""hospops report quarterly [--quarter 2026Q4] | daily [--lang zh|en] [-o DIR] [--no-pdf]: assessment reports."""

from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("report", help="quarterly assessment and daily status reports (HTML and PDF)")
    p.add_argument("-i", "--inventory")
    s = p.add_subparsers(dest="report_command", metavar="KIND", required=True)
    for kind, text in (("quarterly", "quarterly inspection and assessment report with predictions (5.1, 7.4.2 (4))"),
                       ("daily", "daily status report")):
        r = s.add_parser(kind, help=text)
        if kind == "quarterly":
            r.add_argument("--quarter", help="YYYYQn, e.g. 2026Q4 (default: the current quarter, the last one in its first 15 days)")
        r.add_argument("--lang", choices=["zh", "en"], default="zh")
        r.add_argument("-o", "--output-dir", help="directory for the files (default: HOSPOPS_HOME/reports)")
        r.add_argument("--no-pdf", action="store_true", help="HTML only")
        r.set_defaults(func=_report, kind=kind)


def _report(args) -> int:
    from hospops import inventory
    from hospops.reports import generate

    inv = inventory.load(args.inventory)
    paths = generate(args.kind, quarter=getattr(args, "quarter", None), lang=args.lang, out_dir=args.output_dir,
                     inventory=inv, pdf=not args.no_pdf, actor="oncall")
    for path in paths:
        print(path)
    print(f"wrote the {args.kind} report", file=sys.stderr)
    return 0
