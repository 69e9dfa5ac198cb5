"""Consultation tickets (7.4.2 (1)): questions from the hospital; reaction within 4 h, a proposed
solution within 48 h, 7x24. Same injected clock, store and audit as incidents."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

from hospops import audit
from hospops.errors import UserError
from hospops.incidents.clock import ClockState, Now, SlaPolicy, fmt_delta, iso, parse, utcnow

Notifier = Callable[[str, dict[str, Any]], Any]


class Tickets:
    def __init__(self, store, policy: SlaPolicy | None = None, now: Now = utcnow,
                 notifier: Notifier | None = None) -> None:
        self.store = store
        self.policy = policy or SlaPolicy()
        self.now = now
        self.notifier = notifier

    def open(self, title: str, asked_by: str, body: str = "", channel: str = "", actor: str = "hospops",
             incident_id: str | None = None) -> dict[str, Any]:
        if not title.strip():
            raise UserError("a consultation needs a title", "hospops ticket open --title '...' --by NAME")
        now = self.now()
        with self.store.transaction():
            day = self.policy.calendar.local(now).strftime("%Y%m%d")
            last = self.store.one("SELECT id FROM tickets WHERE id LIKE :p ORDER BY id DESC LIMIT 1",
                                  {"p": f"TKT-{day}-%"})
            tid = f"TKT-{day}-{(int(last['id'].rsplit('-', 1)[1]) + 1) if last else 1:03d}"
            self.store.execute(
                "INSERT INTO tickets (id, title, body, asked_by, channel, status, opened_at, react_due, propose_due,"
                " incident_id) VALUES (:id, :title, :body, :by, :channel, 'open', :at, :rd, :pd, :inc)",
                {"id": tid, "title": title, "body": body, "by": asked_by, "channel": channel, "at": iso(now),
                 "rd": iso(now + self.policy.ticket_react), "pd": iso(now + self.policy.ticket_propose),
                 "inc": incident_id})
        audit.record(self.store, "ticket.open", tid, {"asked_by": asked_by, "channel": channel}, actor=actor, at=now)
        row = self.get(tid)
        self._notify("ticket.opened", row)
        return row

    def get(self, ticket_id: str) -> dict[str, Any]:
        row = self.store.one("SELECT * FROM tickets WHERE id = :id", {"id": ticket_id})
        if row is None:
            raise UserError(f"ticket {ticket_id} does not exist", "list tickets with `hospops ticket list`")
        return row

    def list(self, since: datetime | None = None, until: datetime | None = None,
             status: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM tickets WHERE opened_at >= :s AND opened_at < :u"
        params: dict[str, Any] = {"s": iso(since) or "", "u": iso(until) or "9999"}
        if status:
            sql += " AND status = :status"
            params["status"] = status
        return self.store.query(sql + " ORDER BY opened_at, id", params)

    def react(self, ticket_id: str, actor: str, note: str = "") -> dict[str, Any]:
        return self._set(ticket_id, actor, "react", {"reacted_at": None, "reacted_by": actor}, ("open",), "reacted",
                         note)

    def propose(self, ticket_id: str, actor: str, proposal: str) -> dict[str, Any]:
        if not proposal.strip():
            raise UserError("a proposed solution needs text", "hospops ticket propose ID --proposal '...'")
        row = self.get(ticket_id)
        sets: dict[str, Any] = {"proposed_at": None, "proposed_by": actor, "proposal": proposal}
        if not row["reacted_at"]:
            sets.update({"reacted_at": None, "reacted_by": actor})
        return self._set(ticket_id, actor, "propose", sets, ("open", "reacted"), "proposed", "")

    def close(self, ticket_id: str, actor: str, note: str = "") -> dict[str, Any]:
        return self._set(ticket_id, actor, "close", {"closed_at": None}, ("open", "reacted", "proposed"), "closed",
                         note)

    def _set(self, ticket_id: str, actor: str, what: str, sets: Mapping[str, Any], allowed: tuple[str, ...],
             status: str, note: str) -> dict[str, Any]:
        now = self.now()
        with self.store.transaction():
            row = self.get(ticket_id)
            if row["status"] not in allowed:
                raise UserError(f"ticket {ticket_id} is {row['status']}: cannot {what}", "see `hospops ticket list`")
            params = {"id": ticket_id, "status": status}
            cols = ["status = :status"]
            for col, value in sets.items():
                cols.append(f"{col} = :{col}")
                params[col] = iso(now) if value is None else value
            self.store.execute(f"UPDATE tickets SET {', '.join(cols)} WHERE id = :id", params)
        audit.record(self.store, f"ticket.{what}", ticket_id, {"note": note[:200]} if note else {}, actor=actor, at=now)
        return self.get(ticket_id)

    def clocks(self, row: Mapping[str, Any]) -> list[ClockState]:
        return [ClockState("react", parse(row["react_due"]), parse(row["reacted_at"]), True),
                ClockState("propose", parse(row["propose_due"]), parse(row["proposed_at"]), True)]

    def check_clocks(self) -> list[tuple[str, str]]:
        """Notify once per ticket and clock when a deadline has passed unmet."""
        now = self.now()
        out = []
        for row in self.store.query("SELECT * FROM tickets WHERE status IN ('open', 'reacted')"):
            for clock in self.clocks(row):
                if clock.state(now) == "breached" and self._mark(row["id"], f"breach:{clock.name}", now):
                    audit.record(self.store, "ticket.breach", row["id"], {"clock": clock.name, "due": iso(clock.due)},
                                 at=now)
                    self._notify("ticket.overdue", row, clock=clock.name)
                    out.append(("ticket.overdue", row["id"]))
        return out

    def _mark(self, subject: str, mark: str, now: datetime) -> bool:
        with self.store.transaction():
            if self.store.one("SELECT 1 AS x FROM notify_marks WHERE subject = :s AND mark = :m",
                              {"s": subject, "m": mark}):
                return False
            self.store.execute("INSERT INTO notify_marks (subject, mark, at) VALUES (:s, :m, :at)",
                               {"s": subject, "m": mark, "at": iso(now)})
        return True

    def summary(self, row: Mapping[str, Any]) -> dict[str, Any]:
        now = self.now()
        return {c.name: {"due": iso(c.due), "state": c.state(now), "remaining": fmt_delta(c.remaining(now))}
                for c in self.clocks(row)}

    def _notify(self, event: str, row: Mapping[str, Any], **extra: Any) -> None:
        if self.notifier is None:
            return
        tz = self.policy.calendar.tz

        def local(v: str | None) -> str:
            return parse(v).astimezone(tz).strftime("%Y-%m-%d %H:%M") if v else ""

        self.notifier(event, {"id": row["id"], "subject": row["id"], "title": row["title"], "body": row["body"],
                              "asked_by": row["asked_by"], "opened_at": local(row["opened_at"]),
                              "react_due": local(row["react_due"]), "propose_due": local(row["propose_due"]),
                              **extra})
