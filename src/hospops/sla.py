"""The monthly SLA report: per-incident timings and breaches; per service availability, MTTA, MTTR,
counts by level, repeats (3 strikes), break-glass runs; consultation tickets; the release and
usability lists. Markdown (default), HTML or CSV.

Availability counts a service as down while an L1 or L2 incident of it is open (opened to
resolved, clipped to the month; overlapping incidents are merged). MTTA is opened -> acknowledged,
MTTR opened -> resolved. Break-glass runs are read from the audit log (kinds ``change.break_glass*``)
so this report does not depend on the change-request tables.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from hospops.errors import UserError
from hospops.incidents.clock import LEVELS, SlaPolicy, clocks, fmt_delta, parse, waited


@dataclass
class ServiceStats:
    service: str
    by_level: dict[str, int] = field(default_factory=lambda: {lv: 0 for lv in LEVELS})
    down: timedelta = timedelta(0)
    mtta: timedelta | None = None
    mttr: timedelta | None = None
    repeats: int = 0
    breaches: int = 0
    availability: float = 100.0


@dataclass
class Report:
    month: str
    start: datetime
    end: datetime
    generated_at: datetime
    incidents: list[dict[str, Any]]
    services: list[ServiceStats]
    break_glass: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    release_list: list[dict[str, Any]]
    usability_list: list[dict[str, Any]]


def month_bounds(month: str, policy: SlaPolicy) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=policy.calendar.tz)
    except ValueError as exc:
        raise UserError(f"--month {month!r} is not YYYY-MM", "e.g. --month 2026-10") from exc
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def _mean(values: list[timedelta]) -> timedelta | None:
    return sum(values, timedelta(0)) / len(values) if values else None


def _merge(spans: list[tuple[datetime, datetime]]) -> timedelta:
    total, cur_s, cur_e = timedelta(0), None, None
    for s, e in sorted(spans):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def build(store, month: str, policy: SlaPolicy | None = None, now: datetime | None = None,
          services: list[str] | None = None) -> Report:
    policy = policy or SlaPolicy()
    now = now or datetime.now(timezone.utc)
    start, end = month_bounds(month, policy)
    s_iso, e_iso = start.astimezone(timezone.utc).isoformat(), end.astimezone(timezone.utc).isoformat()
    # incidents opened in the month, plus L1/L2 still open from before (they count toward downtime)
    rows = store.query("SELECT * FROM incidents WHERE (opened_at >= :s AND opened_at < :e) OR"
                       " (opened_at < :s AND level IN ('L1', 'L2') AND (resolved_at IS NULL OR resolved_at >= :s))"
                       " ORDER BY opened_at, id", {"s": s_iso, "e": e_iso})
    horizon = min(end, now)
    items = []
    for r in rows:
        opened = parse(r["opened_at"])
        states = {c.name: c for c in clocks(r)}
        item = {**r, "in_month": s_iso <= r["opened_at"] < e_iso,
                "mtta": (parse(r["acknowledged_at"]) - opened) if r["acknowledged_at"] else None,
                "mttr": (parse(r["resolved_at"]) - opened) if r["resolved_at"] else None,
                "waited": waited(r, horizon),
                "clock_states": {n: c.state(horizon) for n, c in states.items()},
                "breaches": [n for n, c in states.items() if c.state(horizon) == "breached" and c.hard],
                "missed_targets": [n for n, c in states.items() if c.state(horizon) == "breached" and not c.hard],
                "three_strikes": int(r["repeat_no"]) >= policy.repeat_threshold,
                "links": store.query("SELECT kind, ref FROM incident_links WHERE incident_id = :id ORDER BY kind, ref",
                                     {"id": r["id"]})}
        items.append(item)
    names = list(services or []) + sorted({i["service"] for i in items} - set(services or []))
    month_len = end - start
    stats = []
    for name in names:
        mine = [i for i in items if i["service"] == name]
        st = ServiceStats(name)
        spans = []
        for i in mine:
            if i["in_month"]:
                st.by_level[i["level"]] += 1
                st.repeats += int(i["repeat_no"] > 1)
                st.breaches += len(i["breaches"])
            if i["level"] in ("L1", "L2"):
                s = max(parse(i["opened_at"]), start)
                e = min(parse(i["resolved_at"]) if i["resolved_at"] else horizon, end)
                if e > s:
                    spans.append((s, e))
        st.down = _merge(spans)
        elapsed = max(min(horizon, end) - start, timedelta(seconds=1)) if horizon > start else month_len
        st.availability = round(100.0 * (1 - st.down / elapsed), 3)
        st.mtta = _mean([i["mtta"] for i in mine if i["in_month"] and i["mtta"] is not None])
        st.mttr = _mean([i["mttr"] for i in mine if i["in_month"] and i["mttr"] is not None])
        stats.append(st)
    break_glass = store.query("SELECT seq, at, actor, kind, subject, data FROM audit WHERE kind LIKE 'change.break_glass%'"
                              " AND at >= :s AND at < :e ORDER BY seq", {"s": s_iso, "e": e_iso})
    tickets = store.query("SELECT * FROM tickets WHERE opened_at >= :s AND opened_at < :e ORDER BY opened_at",
                          {"s": s_iso, "e": e_iso})
    for t in tickets:
        for name, due, done in (("react", t["react_due"], t["reacted_at"]), ("propose", t["propose_due"], t["proposed_at"])):
            d, f = parse(due), parse(done)
            t[f"{name}_state"] = ("met" if f <= d else "breached") if f else ("breached" if horizon > d else "running")
    release = store.query("SELECT * FROM incidents WHERE work_list = 'release' AND opened_at < :e AND"
                          " (resolved_at IS NULL OR resolved_at >= :s) ORDER BY list_due", {"s": s_iso, "e": e_iso})
    usability = store.query("SELECT * FROM incidents WHERE work_list = 'usability' AND opened_at < :e AND"
                            " (resolved_at IS NULL OR resolved_at >= :s) ORDER BY opened_at", {"s": s_iso, "e": e_iso})
    return Report(month, start, end, now, [i for i in items if i["in_month"]], stats, break_glass, tickets,
                  release, usability)


# -- rendering -----------------------------------------------------------------------------------
def _t(value: str | None, policy: SlaPolicy) -> str:
    return parse(value).astimezone(policy.calendar.tz).strftime("%m-%d %H:%M") if value else "-"


def _d(value: timedelta | None) -> str:
    return fmt_delta(value) if value is not None else "-"


def tables(report: Report, policy: SlaPolicy) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, header, rows) tables; every format renders these."""
    svc = [[s.service, f"{s.availability:.3f}%", _d(s.down), _d(s.mtta), _d(s.mttr),
            *[str(s.by_level[lv]) for lv in LEVELS], str(s.repeats), str(s.breaches)] for s in report.services]
    inc = []
    for i in report.incidents:
        level = i["level"] + (f" (from {i['original_level']})" if i["escalated"] else "")
        cs = i["clock_states"]
        clinic = "-"
        if "clinic" in cs:
            clinic = f"{_t(i['clinic_due'], policy)} {cs['clinic']}" + ("" if i["clinic_due_hard"] else " (target)")
        inc.append([i["id"], level, i["service"], i["fingerprint"], _t(i["opened_at"], policy),
                    _d(i["mtta"]), _t(i["responded_at"], policy), _t(i["resolved_at"], policy),
                    cs.get("response", "-"), cs.get("repair", cs.get("list", "-")), clinic, _d(i["waited"]),
                    (f"#{i['repeat_no']}" + (" 3-strikes" if i["three_strikes"] else "")),
                    ", ".join(i["breaches"] + [f"{m} (target)" for m in i["missed_targets"]]) or "none",
                    ", ".join(f"{link['kind']}:{link['ref']}" for link in i["links"]) or "-"])
    bg = [[str(b["seq"]), _t(b["at"], policy), b["actor"], b["kind"], b["subject"]] for b in report.break_glass]
    tk = [[t["id"], t["title"], t["asked_by"], _t(t["opened_at"], policy), t["react_state"], t["propose_state"]]
          for t in report.tickets]
    rel = [[r["id"], r["service"], r["title"], _t(r["list_due"], policy), r["status"]] for r in report.release_list]
    usa = [[r["id"], r["service"], r["title"], _t(r["opened_at"], policy), r["status"]] for r in report.usability_list]
    return [
        ("Services", ["service", "availability", "down (L1/L2)", "MTTA", "MTTR", *LEVELS, "repeats", "breaches"], svc),
        ("Incidents", ["id", "level", "service", "fingerprint", "opened", "to ack", "responded", "resolved",
                       "response 1h", "repair 24h / list", "before clinic", "waiting on hospital", "repeat",
                       "breaches", "links"], inc),
        (f"Break-glass runs ({len(bg)})", ["seq", "at", "actor", "kind", "subject"], bg),
        ("Consultations (react 4h, propose 48h)", ["id", "title", "asked by", "opened", "react", "propose"], tk),
        ("Release list (L3, due within 14 days)", ["id", "service", "title", "due", "status"], rel),
        ("Usability list (L4)", ["id", "service", "title", "opened", "status"], usa),
    ]


NOTES = ("Times in the clinic time zone. Waiting on the hospital is shown separately and does not pause a clock "
         "(the contract has no stop-the-clock clause). An L1 opened at night or on a holiday is due before the "
         "next registration start (or 24 h, if earlier); for L2 that opening is a target (7.7.2 C: 尽量争取). "
         "'3-strikes': third or later occurrence of the same fault in the contract year (7.7.2 F).")


def render(report: Report, fmt: str, policy: SlaPolicy) -> str:
    data = tables(report, policy)
    title = f"SLA report {report.month}"
    if fmt == "csv":
        out = io.StringIO()
        w = csv.writer(out)
        for name, header, rows in data:
            w.writerow([f"# {name}"])
            w.writerow(header)
            w.writerows(rows)
            w.writerow([])
        return out.getvalue()
    if fmt == "html":
        parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
                 "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1.5em}"
                 "td,th{border:1px solid #999;padding:2px 6px;font-size:90%}</style></head><body>",
                 f"<h1>{html.escape(title)}</h1><p>{html.escape(NOTES)}</p>"]
        for name, header, rows in data:
            parts.append(f"<h2>{html.escape(name)}</h2><table><tr>"
                         + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
            for row in rows or [["none"] + [""] * (len(header) - 1)]:
                parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
            parts.append("</table>")
        parts.append("</body></html>\n")
        return "".join(parts)
    if fmt != "md":
        raise UserError(f"format {fmt!r} is not md, html or csv", "use --format md|html|csv")
    lines = [f"# {title}", "", NOTES, ""]
    for name, header, rows in data:
        lines += [f"## {name}", ""]
        if not rows:
            lines += ["none", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)
