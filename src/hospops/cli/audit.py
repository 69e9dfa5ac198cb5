"""hospops audit verify|export|prune: the tamper-evident audit log."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from hospops import audit
from hospops.errors import UserError
from hospops.store import open_store


def register(sub) -> None:
    p = sub.add_parser("audit", help="verify, export or prune the audit log")
    s = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = s.add_parser("verify", help="check the hash chain; name the first bad record")
    v.set_defaults(func=_verify)
    e = s.add_parser("export", help="write records for auditors (JSONL or CSV)")
    e.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    e.add_argument("--since", help="ISO date, e.g. 2026-07-01")
    e.add_argument("--output", "-o", help="file to write (default: standard output)")
    e.set_defaults(func=_export)
    pr = s.add_parser("prune", help="remove records older than a date (never younger than 180 days)")
    pr.add_argument("--before", required=True, help="ISO date; must be at least 180 days ago")
    pr.set_defaults(func=_prune)


def _verify(args) -> int:
    from hospops.gate_ledger import import_decisions

    store = open_store()
    import_decisions(store)  # the change gate's decisions join the chain first
    verdict = audit.verify(store)
    if verdict.ok:
        print(f"audit chain intact: {verdict.records} records")
        return 0
    print(f"audit chain BROKEN at record {verdict.first_bad}: {verdict.reason}", file=sys.stderr)
    return 1


def _export(args) -> int:
    store = open_store()
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            n = audit.export(store, out, args.format, args.since)
        print(f"wrote {n} records to {args.output}", file=sys.stderr)
    else:
        audit.export(store, sys.stdout, args.format, args.since)
    return 0


def _prune(args) -> int:
    try:
        before = datetime.fromisoformat(args.before)
    except ValueError as exc:
        raise UserError(f"--before {args.before!r} is not a date", "use YYYY-MM-DD") from exc
    if before.tzinfo is None:
        before = before.replace(tzinfo=timezone.utc)
    print(f"pruned {audit.prune(open_store(), before)} records")
    return 0
