"""journey: patient-journey visualisation (患者就诊全流程可视化): events per visit, in order.

v2 (schema 2) records the event's ``source`` system (his, lis, pacs, pharmacy, portal, ih).
"""

from __future__ import annotations

import random
import re

from ..web import HttpError, Request, Response, Router
from .base import Service, iso, want_str

STAGES = ("registration", "triage", "consultation", "payment", "exam", "pharmacy", "done")
STAGE_NAMES = {"registration": "挂号", "triage": "分诊", "consultation": "就诊", "payment": "缴费",
               "exam": "检查", "pharmacy": "取药", "done": "离院"}
SOURCES = ("his", "lis", "pacs", "pharmacy", "portal", "ih")
VISIT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Journey(Service):
    name = "journey"
    main_table = "journey_events"

    def register(self, router: Router) -> None:
        router.add("GET", r"/api/journey/(?P<visit_id>[^/]+)", self.show)
        router.add("POST", "/api/journey/events", self.add_event)

    def add_event(self, req: Request) -> Response:
        body = req.json()
        visit_id = want_str(body, "visit_id")
        if not VISIT_RE.match(visit_id):
            raise HttpError(400, "'visit_id' may hold only letters, digits, '-' and '_'")
        stage = want_str(body, "stage", choices=STAGES)
        note = body.get("note", "")
        if not isinstance(note, str) or len(note) > 200:
            raise HttpError(400, "'note' must be a string of at most 200 characters")
        v2 = self.app.release.has(2)
        source = want_str(body, "source", default="his", choices=SOURCES) if v2 else None
        self.app.check_fault("journey event")
        cols = "visit_id, stage, note, patient_mrn, node"
        values = [visit_id, stage, note, req.patient.mrn, self.app.config.node]
        if v2:
            cols += ", source"
            values.append(source)
        with self.app.transaction() as cur:
            marks = ", ".join(["%s"] * len(values))
            cur.execute(f"INSERT INTO journey_events ({cols}) VALUES ({marks}) RETURNING id", values)  # noqa: S608
            event_id = cur.fetchone()[0]
        req.log_detail = f"journey event id={event_id} visit={visit_id} {STAGE_NAMES[stage]}"
        answer = {"id": event_id, "visit_id": visit_id, "stage": stage}
        if v2:
            answer["source"] = source
        return Response(201, answer)

    def show(self, req: Request) -> Response:
        visit_id = req.params["visit_id"]
        if not VISIT_RE.match(visit_id):
            raise HttpError(400, "visit id may hold only letters, digits, '-' and '_'")
        self.app.check_fault("journey view")
        cols = "id, stage, note, node, created_at"
        if self.app.release.has(2):
            cols += ", source"
        with self.app.transaction() as cur:
            cur.execute(f"SELECT {cols} FROM journey_events WHERE visit_id = %s ORDER BY created_at, id",  # noqa: S608
                        (visit_id,))
            names = [d[0] for d in cur.description]
            events = [dict(zip(names, r)) for r in cur.fetchall()]
        if not events:
            raise HttpError(404, f"no events for visit {visit_id}")
        for e in events:
            e["created_at"] = iso(e["created_at"])
            e["stage_name"] = STAGE_NAMES.get(e["stage"], e["stage"])
        req.log_detail = f"journey view visit={visit_id} events={len(events)}"
        return Response(200, {"visit_id": visit_id, "events": events, "current_stage": events[-1]["stage"]})

    def activity(self, rng: random.Random) -> str:
        i = rng.randrange(len(STAGES) - 1)
        return (f"就诊节点 V{rng.randrange(10**8):08d} {STAGE_NAMES[STAGES[i]]} → "
                f"{STAGE_NAMES[STAGES[i + 1]]}")
