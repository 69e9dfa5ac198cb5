"""waiting: the digital waiting hall (数字候诊大厅): a queue per department, called in order.

v2 (schema 2) records which screen (``screen_id``) called a ticket.
"""

from __future__ import annotations

import random

from ..web import Request, Response, Router
from .base import DEPARTMENTS, Service, iso, want_str

ACTIONS = ("call_next", "enqueue")
TICKET_LETTERS = "ABCDEFGHJK"  # one per department, in DEPARTMENTS order


class WaitingHall(Service):
    name = "waiting"
    main_table = "waiting_queue"

    def register(self, router: Router) -> None:
        router.add("GET", "/api/queue", self.show)
        router.add("POST", "/api/queue", self.act)

    def _columns(self) -> str:
        cols = "id, ticket, patient_name, department, status, created_at, called_at"
        return cols + ", screen_id" if self.app.release.has(2) else cols

    def _rows(self, cur) -> list[dict]:
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        for r in rows:
            r["created_at"], r["called_at"] = iso(r["created_at"]), iso(r["called_at"])
        return rows

    def show(self, req: Request) -> Response:
        department = req.query.get("department")
        self.app.check_fault("queue screen")
        where, args = ("AND department = %s", [department]) if department else ("", [])
        with self.app.transaction() as cur:
            cur.execute(f"SELECT {self._columns()} FROM waiting_queue WHERE status = 'waiting' {where}"  # noqa: S608
                        " ORDER BY id LIMIT 20", args)
            queue = self._rows(cur)
            cur.execute(f"SELECT count(*) FROM waiting_queue WHERE status = 'waiting' {where}", args)  # noqa: S608
            waiting = cur.fetchone()[0]
            cur.execute(f"SELECT {self._columns()} FROM waiting_queue WHERE status = 'called' {where}"  # noqa: S608
                        " ORDER BY called_at DESC, id DESC LIMIT 5", args)
            recent = self._rows(cur)
        req.log_detail = f"queue screen department={department or '*'} waiting={waiting}"
        return Response(200, {"department": department, "waiting": waiting, "queue": queue,
                              "recent_calls": recent})

    def act(self, req: Request) -> Response:
        body = req.json() if req.raw_body else {}
        action = want_str(body, "action", default="call_next", choices=ACTIONS)
        self.app.check_fault("queue " + action)
        if action == "enqueue":
            return self._enqueue(req, want_str(body, "department", max_len=32, default=DEPARTMENTS[0]))
        department = want_str(body, "department", max_len=32) if "department" in body else None
        screen = want_str(body, "screen_id", max_len=32, default=self.app.config.node)
        return self._call_next(req, department, screen)

    def _enqueue(self, req: Request, department: str) -> Response:
        with self.app.transaction() as cur:
            cur.execute("INSERT INTO waiting_queue (ticket, patient_name, department, node)"
                        " VALUES ('', %s, %s, %s) RETURNING id",
                        (req.patient.name, department, self.app.config.node))
            ticket_id = cur.fetchone()[0]
            letter = TICKET_LETTERS[DEPARTMENTS.index(department)] if department in DEPARTMENTS else "Z"
            ticket = f"{letter}{ticket_id % 1000:03d}"
            cur.execute("UPDATE waiting_queue SET ticket = %s WHERE id = %s", (ticket, ticket_id))
        req.log_detail = f"queue enqueue ticket={ticket} {department}"
        return Response(201, {"id": ticket_id, "ticket": ticket, "department": department,
                              "status": "waiting"})

    def _call_next(self, req: Request, department: str | None, screen: str) -> Response:
        where, args = ("AND department = %s", [department]) if department else ("", [])
        with self.app.transaction() as cur:
            cur.execute(f"SELECT id FROM waiting_queue WHERE status = 'waiting' {where}"  # noqa: S608
                        " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", args)
            row = cur.fetchone()
            if row is None:
                req.log_detail = f"queue call_next department={department or '*'} empty"
                return Response(200, {"called": None, "department": department})
            sets = "status = 'called', called_at = now()"
            values: list = []
            if self.app.release.has(2):
                sets += ", screen_id = %s"
                values.append(screen)
            cur.execute(f"UPDATE waiting_queue SET {sets} WHERE id = %s RETURNING {self._columns()}",  # noqa: S608
                        [*values, row[0]])
            called = self._rows(cur)[0]
        req.log_detail = f"queue call_next 叫号 {called['ticket']} {called['department']}"
        return Response(200, {"called": called, "department": department})

    def activity(self, rng: random.Random) -> str:
        return (f"候诊叫号 {rng.choice(TICKET_LETTERS)}{rng.randrange(1000):03d} 请到 {rng.choice(DEPARTMENTS)} "
                f"{rng.randrange(1, 12)} 号诊室")
