"""hospops incident open|list|show|ack|respond|wait|resume|resolve|close|link|check: incidents (7.7)."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import timedelta

from hospops.errors import UserError


def _actor(args) -> str:
    return args.by or getpass.getuser()


def register(sub) -> None:
    p = sub.add_parser("incident", help="open, follow and close incidents with their SLA clocks")
    p.add_argument("-i", "--inventory", help="inventory path (default: HOSPOPS_INVENTORY or inventories/lab)")
    p.add_argument("--no-notify", action="store_true", help="do not send notifications")
    s = p.add_subparsers(dest="incident_command", metavar="ACTION", required=True)

    o = s.add_parser("open", help="open an incident (a person's report); classified by the rules unless --level")
    o.add_argument("--service", required=True, help="service object: portal, ih, waiting, journey (or db)")
    o.add_argument("--report", choices=["payment_failed", "unavailable", "errors", "usability"],
                   help="what the reporter saw; the rules give the level")
    o.add_argument("--level", choices=["L1", "L2", "L3", "L4"], help="set the level yourself (with --symptom)")
    o.add_argument("--symptom", help="symptom class for the fingerprint, e.g. payment_failed")
    o.add_argument("--title", help="one line: what happened")
    o.add_argument("--summary", default="", help="details (no patient data)")
    o.add_argument("--by", help="who reports (default: your user name)")
    o.set_defaults(func=_open)

    ls = s.add_parser("list", help="list incidents")
    ls.add_argument("--status", default="open", help="open (default), all, resolved, closed, ...")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    sh = s.add_parser("show", help="one incident: clocks, timeline, links")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=_show)

    for name, text in (("ack", "acknowledge: someone has it (stops escalation)"),
                       ("respond", "responded: handling started and the hospital told (meets the 1 h clock)"),
                       ("wait", "start waiting on the hospital (e.g. for agreement to a restart)"),
                       ("resume", "stop waiting on the hospital"),
                       ("resolve", "the service is back"),
                       ("close", "analysis done, nothing left to do")):
        a = s.add_parser(name, help=text)
        a.add_argument("id")
        a.add_argument("--note", default="")
        a.add_argument("--by")
        a.set_defaults(func=_step, step=name)

    lk = s.add_parser("link", help="link a change request, run or ticket (ids)")
    lk.add_argument("id")
    g = lk.add_mutually_exclusive_group(required=True)
    g.add_argument("--change")
    g.add_argument("--run")
    g.add_argument("--ticket")
    lk.add_argument("--by")
    lk.set_defaults(func=_link)

    c = s.add_parser("check", help="check the clocks once: deadline notices, unacknowledged escalation")
    c.set_defaults(func=_check)


def _rt(args):
    from hospops.incidents.runtime import build

    return build(args.inventory, notify=not args.no_notify)


def _open(args) -> int:
    rt = _rt(args)
    if args.level:
        if not args.symptom or not args.title:
            raise UserError("--level needs --symptom and --title", "or use --report and let the rules classify")
        row = rt.incidents.open(service=args.service, symptom=args.symptom, level=args.level, title=args.title,
                                actor=_actor(args), summary=args.summary)
    elif args.report:
        row = rt.incidents.report({"service": args.service, "report": args.report}, actor=_actor(args),
                                  summary=args.summary or (args.title or ""))
    else:
        raise UserError("say what happened: --report KIND, or --level with --symptom and --title",
                        "e.g. hospops incident open --service portal --report usability")
    _print_row(row, rt)
    return 0


def _list(args) -> int:
    rt = _rt(args)
    status = None if args.status == "all" else args.status
    rows = rt.incidents.list(status=status)
    if args.json:
        from hospops.incidents import incident_row_summary

        now = rt.now()
        print(json.dumps([{**r, "clocks": incident_row_summary(r, now)} for r in rows], ensure_ascii=False, indent=1))
        return 0
    if not rows:
        print(f"no {args.status} incidents")
        return 0
    from hospops.incidents.clock import clocks

    now = rt.now()
    for r in rows:
        states = " ".join(f"{c.name}:{c.state(now)}" for c in clocks(r))
        flags = (" 3-strikes" if r["repeat_no"] >= rt.policy.repeat_threshold else "")
        print(f"{r['id']}  {r['level']}  {r['status']:<12} {r['fingerprint']:<24} {_local(r['opened_at'], rt)}"
              f"  {states}{flags}  {r['title']}")
    return 0


def _local(value, rt) -> str:
    from hospops.incidents.clock import parse

    return parse(value).astimezone(rt.policy.calendar.tz).strftime("%Y-%m-%d %H:%M") if value else "-"


def _print_row(row, rt) -> None:
    from hospops.incidents import incident_row_summary
    from hospops.incidents.clock import fmt_delta, waited

    now = rt.now()
    print(f"{row['id']}  {row['level']}"
          + (f" (raised from {row['original_level']}: repeat {row['repeat_no']}, 7.7.2 F)" if row["escalated"] else "")
          + f"  {row['status']}  {row['fingerprint']}")
    print(f"  {row['title']}" + (f" — {row['summary']}" if row["summary"] else ""))
    print(f"  opened {_local(row['opened_at'], rt)} by {row['opened_by']} ({row['source']})"
          + ("; night or holiday" if row["off_hours"] else "")
          + (f"; repeat {row['repeat_no']} this contract year" if row["repeat_no"] > 1 else ""))
    for name, c in incident_row_summary(row, now).items():
        label = {"clinic": "before clinic opens" + ("" if c["hard"] else " (target)"), "list": f"{row['work_list']} list"}
        print(f"  {label.get(name, name):<28} due {_local(c['due'], rt)}  {c['state']:<9} {c['remaining']}")
    w = waited(row, now)
    if w:
        print(f"  waiting on the hospital: {fmt_delta(w)} (shown separately; clocks are not paused)")


def _show(args) -> int:
    rt = _rt(args)
    row = rt.incidents.get(args.id)
    if args.json:
        from hospops.incidents import incident_row_summary

        print(json.dumps({**row, "clocks": incident_row_summary(row, rt.now()),
                          "timeline": rt.incidents.timeline(args.id), "links": rt.incidents.links(args.id)},
                         ensure_ascii=False, indent=1))
        return 0
    _print_row(row, rt)
    print("  timeline:")
    for e in rt.incidents.timeline(args.id):
        print(f"    {_local(e['at'], rt)}  {e['kind']:<12} {e['actor']:<10} {e['note']}")
    links = rt.incidents.links(args.id)
    if links:
        print("  links: " + ", ".join(f"{link['kind']} {link['ref']}" for link in links))
    return 0


def _step(args) -> int:
    rt = _rt(args)
    row = getattr(rt.incidents, args.step)(args.id, _actor(args), args.note)
    _print_row(row, rt)
    return 0


def _link(args) -> int:
    rt = _rt(args)
    kind, ref = next((k, v) for k, v in (("change", args.change), ("run", args.run), ("ticket", args.ticket)) if v)
    rt.incidents.link(args.id, kind, ref, actor=_actor(args))
    print(f"{args.id}: linked {kind} {ref}")
    return 0


def _check(args) -> int:
    rt = _rt(args)
    ack = timedelta(minutes=rt.notify_config.ack_minutes) if rt.notify_config else None
    events = rt.incidents.check_clocks(ack_after=ack) + rt.tickets().check_clocks()
    for event, ident in events:
        print(f"{event}: {ident}")
    if not events:
        print("no deadlines near or missed", file=sys.stderr)
    return 0
