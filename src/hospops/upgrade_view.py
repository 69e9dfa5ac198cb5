"""An upgrade change as approvers read it in ``hospops change show``: the plan section by section,
then the latest rehearsal (what would change on each host)."""

from __future__ import annotations

from typing import Any

from hospops import rehearsal

BACKWARD_MEANS = {
    "down": "the new release's down migrations",
    "restore_point": "point-in-time recovery to the restore point: data written meanwhile is lost",
    "none": "none: the old code runs on the new schema",
}


def describe_plan(plan: dict[str, Any]) -> list[str]:
    m, h, i, w, r = (plan.get(k) or {} for k in ("migrations", "health_checks", "impact", "window", "rollback"))
    out = [f"  service:   {plan.get('service')}  {plan.get('from_version')} -> {plan.get('to_version')}"]
    for a in plan.get("artifacts") or []:
        out.append(f"  artifact:  {a.get('file')}  sha256 {a.get('sha256')}")
    forward = f"forward, schema {m.get('schema_from')} -> {m.get('schema_to')}" if m.get("forward") \
        else f"no forward migrations (schema {m.get('schema_from')} -> {m.get('schema_to')})"
    out.append(f"  migrate:   {forward}; backward: {BACKWARD_MEANS.get(m.get('backward'), m.get('backward'))}")
    out.append(f"  checks:    GET {h.get('path')} within {h.get('timeout_seconds')} s"
               + ("; a test payment, read back" if h.get("payment_probe") else ""))
    out.append(f"  impact:    {i.get('summary')}")
    out.append(f"  downtime:  {i.get('downtime')}")
    if i.get("users"):
        out.append(f"  users:     {i['users']}")
    out.append(f"  plan window: {w.get('start')} .. {w.get('end')}")
    out.append(f"  rollback when: {', '.join(r.get('triggers') or [])}")
    for n, step in enumerate(r.get("steps") or [], start=1):
        out.append(f"    {n}. {step}")
    out.append(f"  restore point: {r.get('restore_point')}"
               + (" (upgrade_<change id>, taken before migrating)" if r.get("restore_point") == "auto" else ""))
    if r.get("data"):
        out.append(f"  data:      {r['data']}")
    return out


def describe_rehearsal(attachments: list[dict[str, Any]]) -> list[str]:
    rehearsals = [a for a in attachments if a.get("kind") == "rehearsal"]
    if not rehearsals:
        return ["  rehearsal: none yet (approval is refused until one succeeds)"]
    latest = rehearsals[-1]["body"]
    lines = rehearsal.render(latest)
    extra = f" ({len(rehearsals)} rehearsals, latest shown)" if len(rehearsals) > 1 else ""
    return [f"  {lines[0]}{extra}", *(f"  {line}" for line in lines[1:])]
