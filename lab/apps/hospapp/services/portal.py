"""portal: the unified patient service portal (统一就诊服务门户): appointments.

v2 (schema 2) records the booking ``channel`` (wechat, alipay, app, kiosk, web).
"""

from __future__ import annotations

import random

from ..web import Request, Response, Router
from .base import DEPARTMENTS, Service, iso, query_limit, want_datetime, want_str

CHANNELS = ("wechat", "alipay", "app", "kiosk", "web")


class Portal(Service):
    name = "portal"
    main_table = "portal_appointments"

    def register(self, router: Router) -> None:
        router.add("GET", "/api/appointments", self.list_appointments)
        router.add("POST", "/api/appointments", self.book)

    def book(self, req: Request) -> Response:
        body = req.json()
        department = want_str(body, "department", max_len=32)
        slot = want_datetime(body, "slot")
        v2 = self.app.release.has(2)
        channel = want_str(body, "channel", default="web", choices=CHANNELS) if v2 else None
        self.app.check_fault("booking")
        p = req.patient
        with self.app.transaction() as cur:
            cols = "patient_name, mrn, mobile, department, slot, node"
            values = [p.name, p.mrn, p.mobile, department, slot, self.app.config.node]
            if v2:
                cols += ", channel"
                values.append(channel)
            marks = ", ".join(["%s"] * len(values))
            cur.execute(f"INSERT INTO portal_appointments ({cols}) VALUES ({marks}) RETURNING id",  # noqa: S608
                        values)
            appointment_id = cur.fetchone()[0]
        req.log_detail = f"appointment id={appointment_id} 预约挂号 {department} {slot.isoformat()}"
        answer = {"id": appointment_id, "status": "booked", "department": department,
                  "slot": slot.isoformat()}
        if v2:
            answer["channel"] = channel
        return Response(201, answer)

    def list_appointments(self, req: Request) -> Response:
        limit = query_limit(req.query)
        self.app.check_fault("appointment list")
        cols = "id, patient_name, mrn, department, slot, status, node, created_at"
        if self.app.release.has(2):
            cols += ", channel"
        with self.app.transaction() as cur:
            cur.execute(f"SELECT {cols} FROM portal_appointments ORDER BY id DESC LIMIT %s",  # noqa: S608
                        (limit,))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        for r in rows:
            r["slot"], r["created_at"] = iso(r["slot"]), iso(r["created_at"])
        req.log_detail = f"appointments listed={len(rows)}"
        return Response(200, {"appointments": rows})

    def activity(self, rng: random.Random) -> str:
        return (f"预约挂号 {rng.choice(DEPARTMENTS)} 2026-12-{rng.randrange(1, 29):02d} "
                f"{rng.randrange(8, 17):02d}:{rng.choice((0, 15, 30, 45)):02d} 渠道 {rng.choice(CHANNELS)}")
