"""hospops ticket open|react|propose|close|list: consultations from the hospital (7.4.2 (1))."""

from __future__ import annotations

import getpass
import json


def register(sub) -> None:
    p = sub.add_parser("ticket", help="consultations: react within 4 h, propose a solution within 48 h")
    p.add_argument("-i", "--inventory")
    p.add_argument("--no-notify", action="store_true")
    s = p.add_subparsers(dest="ticket_command", metavar="ACTION", required=True)
    o = s.add_parser("open", help="record a question from the hospital")
    o.add_argument("--title", required=True)
    o.add_argument("--body", default="")
    o.add_argument("--by", required=True, help="who asked (e.g. 信息科 王工)")
    o.add_argument("--channel", default="", help="phone, email, wecom, ...")
    o.add_argument("--incident", help="related incident id")
    o.set_defaults(func=_open)
    r = s.add_parser("react", help="first reaction given (meets the 4 h clock)")
    r.add_argument("id")
    r.add_argument("--note", default="")
    r.add_argument("--by")
    r.set_defaults(func=_react)
    pr = s.add_parser("propose", help="a solution proposed (meets the 48 h clock)")
    pr.add_argument("id")
    pr.add_argument("--proposal", required=True)
    pr.add_argument("--by")
    pr.set_defaults(func=_propose)
    c = s.add_parser("close", help="the hospital is satisfied")
    c.add_argument("id")
    c.add_argument("--note", default="")
    c.add_argument("--by")
    c.set_defaults(func=_close)
    ls = s.add_parser("list", help="list tickets with their clocks")
    ls.add_argument("--status")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)


def _tickets(args):
    from hospops.incidents.runtime import build

    return build(args.inventory, notify=not args.no_notify).tickets()


def _print(t, row) -> None:
    from hospops.incidents.clock import parse

    clocks = t.summary(row)
    print(f"{row['id']}  {row['status']:<9} {row['title']}  (asked by {row['asked_by']})")
    for name, c in clocks.items():
        due = parse(c["due"]).astimezone(t.policy.calendar.tz).strftime("%Y-%m-%d %H:%M")
        print(f"  {name:<8} due {due}  {c['state']:<9} {c['remaining']}")


def _open(args) -> int:
    t = _tickets(args)
    _print(t, t.open(args.title, args.by, args.body, args.channel, actor=getpass.getuser(), incident_id=args.incident))
    return 0


def _react(args) -> int:
    t = _tickets(args)
    _print(t, t.react(args.id, args.by or getpass.getuser(), args.note))
    return 0


def _propose(args) -> int:
    t = _tickets(args)
    _print(t, t.propose(args.id, args.by or getpass.getuser(), args.proposal))
    return 0


def _close(args) -> int:
    t = _tickets(args)
    _print(t, t.close(args.id, args.by or getpass.getuser(), args.note))
    return 0


def _list(args) -> int:
    t = _tickets(args)
    rows = t.list(status=args.status)
    if args.json:
        print(json.dumps([{**r, "clocks": t.summary(r)} for r in rows], ensure_ascii=False, indent=1))
        return 0
    if not rows:
        print("no tickets")
    for r in rows:
        _print(t, r)
    return 0
