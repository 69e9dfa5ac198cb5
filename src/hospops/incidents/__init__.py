"""Incidents (contract 7.7): opened by a probe or a person, classified L1-L4, with SLA clocks.

Other features call::

    from hospops.incidents import Incidents
    inc = Incidents(store, policy=SlaPolicy.from_inventory(inv), now=clock, notifier=notify_fn)
    row = inc.open(service="ih", symptom="payment_failed", level="L1", title="...", actor="alice")
    inc.link(row["id"], "change", "CR-20261125-001")   # or "run", "ticket"
    inc.ack(...), inc.respond(...), inc.wait(...), inc.resume(...), inc.resolve(...), inc.close(...)

All times come from the injected ``now`` callable (aware datetimes); everything that happens goes
to the audit log. The SLA reading of the contract is documented in hospops.incidents.clock.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from hospops import audit
from hospops.errors import UserError
from hospops.incidents.clock import (LEVELS, Now, SlaPolicy, clocks, fmt_delta, incident_deadlines, iso, parse,
                                     utcnow, waited)
from hospops.incidents.rules import Match, RuleSet, fingerprint, load_rules

Notifier = Callable[[str, dict[str, Any]], Any]

OPEN_STATES = ("open", "acknowledged", "responded", "waiting")
LINK_KINDS = ("change", "run", "ticket", "incident")


class Incidents:
    def __init__(self, store, policy: SlaPolicy | None = None, rules: RuleSet | None = None,
                 now: Now = utcnow, notifier: Notifier | None = None,
                 services: Mapping[str, Any] | None = None) -> None:
        self.store = store
        self.policy = policy or SlaPolicy()
        self._rules = rules
        self.now = now
        self.notifier = notifier
        self.services = services or {}

    @property
    def rules(self) -> RuleSet:
        if self._rules is None:
            self._rules = load_rules()
        return self._rules

    # -- reading ------------------------------------------------------------------------------
    def get(self, incident_id: str) -> dict[str, Any]:
        row = self.store.one("SELECT * FROM incidents WHERE id = :id", {"id": incident_id})
        if row is None:
            raise UserError(f"incident {incident_id} does not exist", "list incidents with `hospops incident list`")
        return row

    def list(self, status: str | None = None, since: datetime | None = None,
             until: datetime | None = None, service: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM incidents WHERE opened_at >= :since AND opened_at < :until"
        params: dict[str, Any] = {"since": iso(since) or "", "until": iso(until) or "9999"}
        if status == "open":
            sql += " AND status IN ('open', 'acknowledged', 'responded', 'waiting')"
        elif status:
            sql += " AND status = :status"
            params["status"] = status
        if service:
            sql += " AND service = :service"
            params["service"] = service
        return self.store.query(sql + " ORDER BY opened_at, id", params)

    def open_by_fingerprint(self, fp: str) -> dict[str, Any] | None:
        return self.store.one(
            "SELECT * FROM incidents WHERE fingerprint = :fp AND status IN ('open', 'acknowledged', 'responded',"
            " 'waiting') ORDER BY opened_at DESC LIMIT 1", {"fp": fp})

    def timeline(self, incident_id: str) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM incident_events WHERE incident_id = :id ORDER BY seq",
                                {"id": incident_id})

    def links(self, incident_id: str) -> list[dict[str, Any]]:
        return self.store.query("SELECT * FROM incident_links WHERE incident_id = :id ORDER BY at, kind, ref",
                                {"id": incident_id})

    def repeats(self, fp: str, at: datetime) -> int:
        """Incidents with this fingerprint opened in the contract year of ``at``, up to ``at``."""
        start, _ = self.policy.contract_year(at)
        row = self.store.one("SELECT COUNT(*) AS n FROM incidents WHERE fingerprint = :fp AND opened_at >= :s"
                             " AND opened_at <= :at", {"fp": fp, "s": iso(start), "at": iso(at)})
        return int(row["n"]) if row else 0

    # -- opening ------------------------------------------------------------------------------
    def open(self, *, service: str, symptom: str, level: str, title: str, actor: str,
             source: str = "person", summary: str = "", rule: str | None = None,
             detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Open an incident, or update the open one with the same fingerprint (de-duplication)."""
        row, _ = self._open(service=service, symptom=symptom, level=level.upper(), title=title, actor=actor,
                            source=source, summary=summary, rule=rule, detail=detail)
        return row

    def report(self, view: Mapping[str, Any], actor: str, summary: str = "") -> dict[str, Any]:
        """A person's report (``{"service": ..., "report": "usability"}``) classified by the rules."""
        view = {"source": "person", **view}
        matches = self.rules.classify(view)
        if not matches:
            raise UserError(f"no incident rule matches the report {dict(view)}",
                            "use --report payment_failed|unavailable|errors|usability, or give --level and --symptom")
        return self.observe(matches[0], view, actor=actor, summary=summary)[0]

    def observe(self, match: Match, view: Mapping[str, Any], actor: str = "probe",
                summary: str = "") -> tuple[dict[str, Any], bool]:
        return self._open(service=match.service, symptom=match.rule.symptom, level=match.level,
                          title=match.rule.text("title"), actor=actor, source=str(view.get("source", "probe")),
                          summary=summary, rule=match.rule.name, detail=view)

    def _open(self, *, service: str, symptom: str, level: str, title: str, actor: str, source: str,
              summary: str, rule: str | None, detail: Mapping[str, Any] | None) -> tuple[dict[str, Any], bool]:
        if level not in LEVELS:
            raise UserError(f"level {level!r} is not one of {', '.join(LEVELS)}", "7.7.1: L1 payments, L2 unusable, "
                            "L3 errors while working, L4 usability")
        now = self.now()
        fp = fingerprint(service, symptom)
        detail_json = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str)
        with self.store.transaction():
            existing = self.open_by_fingerprint(fp)
            if existing:
                self.store.execute("UPDATE incidents SET last_seen_at = :at, seen_count = seen_count + 1,"
                                   " detail = :d WHERE id = :id", {"at": iso(now), "d": detail_json, "id": existing["id"]})
                return self.get(existing["id"]), False
            repeat_no = self.repeats(fp, now) + 1
            escalated = repeat_no >= self.policy.repeat_threshold and level == "L2"
            effective = "L1" if escalated else level
            calendar_error = ""
            try:
                dl = incident_deadlines(effective, now, self.policy)
            except UserError as exc:
                # never lose an incident over the calendar: fall back to the 24 h clock and say so
                calendar_error = exc.what
                dl = incident_deadlines(effective, now, self.policy, use_calendar=False)
            incident_id = self._new_id("INC", "incidents", now)
            self.store.execute(
                "INSERT INTO incidents (id, fingerprint, service, symptom, level, original_level, rule, title, summary,"
                " source, opened_by, status, opened_at, off_hours, response_due, repair_due, clinic_due,"
                " clinic_due_hard, work_list, list_due, repeat_no, escalated, last_seen_at, detail) VALUES"
                " (:id, :fp, :service, :symptom, :level, :original, :rule, :title, :summary, :source, :actor, 'open',"
                " :at, :off, :response_due, :repair_due, :clinic_due, :hard, :work_list, :list_due, :repeat_no,"
                " :escalated, :at, :detail)",
                {"id": incident_id, "fp": fp, "service": service, "symptom": symptom, "level": effective,
                 "original": level, "rule": rule, "title": title, "summary": summary, "source": source,
                 "actor": actor, "at": iso(now), "off": int(dl.off_hours), "response_due": iso(dl.response_due),
                 "repair_due": iso(dl.repair_due), "clinic_due": iso(dl.clinic_due), "hard": int(dl.clinic_due_hard),
                 "work_list": dl.work_list, "list_due": iso(dl.list_due), "repeat_no": repeat_no,
                 "escalated": int(escalated), "detail": detail_json})
            self._event(incident_id, now, "opened", actor, f"{level} {title}")
            if calendar_error:
                self._event(incident_id, now, "calendar", "hospops", f"no clinic deadline: {calendar_error}")
            if escalated:
                self._event(incident_id, now, "escalated", "hospops",
                            f"repeat {repeat_no} of {fp} in this contract year: L2 raised to L1 (7.7.2 F)")
        row = self.get(incident_id)
        audit.record(self.store, "incident.open", incident_id,
                     {"fingerprint": fp, "level": effective, "original_level": level, "source": source,
                      "rule": rule, "repeat_no": repeat_no, "escalated": escalated, "off_hours": dl.off_hours,
                      **({"calendar_error": calendar_error} if calendar_error else {})},
                     actor=actor, at=now)
        self._notify("incident.opened", row)
        if repeat_no >= self.policy.repeat_threshold:
            audit.record(self.store, "incident.repeat", incident_id,
                         {"fingerprint": fp, "repeat_no": repeat_no, "raised_to_l1": escalated}, actor="hospops", at=now)
            self._notify("incident.escalated", row)
        return row, True

    # -- the timeline -------------------------------------------------------------------------
    def ack(self, incident_id: str, actor: str, note: str = "") -> dict[str, Any]:
        return self._step(incident_id, "acknowledged", actor, note, allowed=("open",),
                          sets={"acknowledged_at": True, "acknowledged_by": actor})

    def respond(self, incident_id: str, actor: str, note: str = "") -> dict[str, Any]:
        row = self.get(incident_id)
        sets: dict[str, Any] = {"responded_at": True}
        if not row["acknowledged_at"]:
            sets.update({"acknowledged_at": True, "acknowledged_by": actor})
        return self._step(incident_id, "responded", actor, note, allowed=("open", "acknowledged", "waiting"), sets=sets)

    def wait(self, incident_id: str, actor: str, note: str = "") -> dict[str, Any]:
        """Start waiting on the hospital (e.g. for agreement to a restart, 7.7.2 A)."""
        row = self.get(incident_id)
        sets: dict[str, Any] = {"waiting_since": True}
        if not row["acknowledged_at"]:
            sets.update({"acknowledged_at": True, "acknowledged_by": actor})
        return self._step(incident_id, "waiting", actor, note, allowed=("open", "acknowledged", "responded"),
                          sets=sets)

    def resume(self, incident_id: str, actor: str, note: str = "") -> dict[str, Any]:
        return self._step(incident_id, "resumed", actor, note, allowed=("waiting",), sets={"end_wait": True})

    def resolve(self, incident_id: str, actor: str, note: str = "") -> dict[str, Any]:
        row = self._step(incident_id, "resolved", actor, note, allowed=OPEN_STATES,
                         sets={"resolved_at": True, "end_wait": True})
        self._notify("incident.recovered", row)
        return row

    def close(self, incident_id: str, actor: str, note: str = "") -> dict[str, Any]:
        return self._step(incident_id, "closed", actor, note, allowed=("resolved",), sets={"closed_at": True})

    def link(self, incident_id: str, kind: str, ref: str, actor: str = "hospops") -> None:
        """Link a change request, run, ticket or another incident (ids only)."""
        if kind not in LINK_KINDS:
            raise UserError(f"link kind {kind!r} is not one of {', '.join(LINK_KINDS)}", "e.g. --change CR-...")
        self.get(incident_id)
        now = self.now()
        with self.store.transaction():
            if self.store.one("SELECT 1 AS x FROM incident_links WHERE incident_id = :i AND kind = :k AND ref = :r",
                              {"i": incident_id, "k": kind, "r": ref}):
                return
            self.store.execute("INSERT INTO incident_links (incident_id, kind, ref, at) VALUES (:i, :k, :r, :at)",
                               {"i": incident_id, "k": kind, "r": ref, "at": iso(now)})
            self._event(incident_id, now, "linked", actor, f"{kind} {ref}")
        audit.record(self.store, "incident.link", incident_id, {"kind": kind, "ref": ref}, actor=actor, at=now)

    _STATUS_OF = {"acknowledged": "acknowledged", "responded": "responded", "waiting": "waiting",
                  "resolved": "resolved", "closed": "closed"}

    def _step(self, incident_id: str, kind: str, actor: str, note: str, allowed: Iterable[str],
              sets: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        with self.store.transaction():
            row = self.get(incident_id)
            status = row["status"]
            if status not in allowed:
                raise UserError(f"incident {incident_id} is {status}: it cannot be marked {kind}",
                                f"`hospops incident show {incident_id}` shows its timeline")
            new_status = self._STATUS_OF.get(kind, status)
            if status == "waiting" and kind == "responded":
                new_status = "waiting"  # responding does not end the wait on the hospital
            params: dict[str, Any] = {"id": incident_id, "status": new_status}
            cols = ["status = :status"]
            for col in ("acknowledged_at", "responded_at", "resolved_at", "closed_at"):
                if sets.get(col) and not row.get(col):
                    cols.append(f"{col} = :{col}")
                    params[col] = iso(now)
            if "acknowledged_by" in sets and not row.get("acknowledged_by"):
                cols.append("acknowledged_by = :ack_by")
                params["ack_by"] = sets["acknowledged_by"]
            if sets.get("waiting_since"):
                cols.append("waiting_since = :ws")
                params["ws"] = iso(now)
            if sets.get("end_wait") and row.get("waiting_since"):
                spent = int((now - parse(row["waiting_since"])).total_seconds())
                cols += ["waiting_since = NULL", "waited_seconds = waited_seconds + :spent"]
                params["spent"] = max(spent, 0)
                if kind == "resumed":
                    params["status"] = self._status_after_wait(row)
            self.store.execute(f"UPDATE incidents SET {', '.join(cols)} WHERE id = :id", params)
            self._event(incident_id, now, kind, actor, note)
        audit.record(self.store, f"incident.{kind}", incident_id, {"note": note[:200]} if note else {},
                     actor=actor, at=now)
        return self.get(incident_id)

    def _status_after_wait(self, row: Mapping[str, Any]) -> str:
        if row.get("responded_at"):
            return "responded"
        return "acknowledged" if row.get("acknowledged_at") else "open"

    def _event(self, incident_id: str, at: datetime, kind: str, actor: str, note: str = "") -> None:
        last = self.store.one("SELECT MAX(seq) AS s FROM incident_events WHERE incident_id = :id", {"id": incident_id})
        seq = int(last["s"] or 0) + 1 if last else 1
        self.store.execute("INSERT INTO incident_events (incident_id, seq, at, kind, actor, note)"
                           " VALUES (:id, :seq, :at, :kind, :actor, :note)",
                           {"id": incident_id, "seq": seq, "at": iso(at), "kind": kind, "actor": actor, "note": note})

    def _new_id(self, prefix: str, table: str, now: datetime) -> str:
        day = self.policy.calendar.local(now).strftime("%Y%m%d")
        stem = f"{prefix}-{day}-"
        row = self.store.one(f"SELECT id FROM {table} WHERE id LIKE :p ORDER BY id DESC LIMIT 1", {"p": stem + "%"})
        n = int(row["id"].rsplit("-", 1)[1]) + 1 if row else 1
        return f"{stem}{n:03d}"

    # -- clocks -------------------------------------------------------------------------------
    def check_clocks(self, ack_after: timedelta | None = None, max_steps: int = 3) -> list[tuple[str, str]]:
        """Notify deadlines near or breached (once each) and escalate unacknowledged L1/L2 incidents.

        ``ack_after``: an L1/L2 not acknowledged this long after opening (and again after each such
        interval) is escalated to the next contact (notify step 1, 2, ...). Returns (event, incident id)."""
        now = self.now()
        out: list[tuple[str, str]] = []
        for row in self.list(status="open"):
            for clock in clocks(row):
                state = clock.state(now)
                if state == "breached" and self._mark(row["id"], f"breach:{clock.name}", now):
                    audit.record(self.store, "incident.breach", row["id"],
                                 {"clock": clock.name, "due": iso(clock.due), "hard": clock.hard,
                                  "waited": fmt_delta(waited(row, now))}, actor="hospops", at=now)
                    self._notify("deadline.breached", row, clock=clock.name)
                    out.append(("deadline.breached", row["id"]))
                elif state == "running" and clock.remaining(now) <= self.policy.near \
                        and self._mark(row["id"], f"near:{clock.name}", now):
                    self._notify("deadline.near", row, clock=clock.name)
                    out.append(("deadline.near", row["id"]))
            if ack_after and row["level"] in ("L1", "L2") and not row["acknowledged_at"]:
                step = int((now - parse(row["opened_at"])) / ack_after)
                step = min(step, max_steps)
                if step > int(row["notify_step"]):
                    self.store.execute("UPDATE incidents SET notify_step = :s WHERE id = :id", {"s": step, "id": row["id"]})
                    audit.record(self.store, "incident.unacknowledged", row["id"], {"step": step}, at=now)
                    self._notify("incident.unacknowledged", self.get(row["id"]), step=step)
                    out.append(("incident.unacknowledged", row["id"]))
        return out

    def _mark(self, subject: str, mark: str, now: datetime) -> bool:
        with self.store.transaction():
            if self.store.one("SELECT 1 AS x FROM notify_marks WHERE subject = :s AND mark = :m",
                              {"s": subject, "m": mark}):
                return False
            self.store.execute("INSERT INTO notify_marks (subject, mark, at) VALUES (:s, :m, :at)",
                               {"s": subject, "m": mark, "at": iso(now)})
        return True

    # -- notifications ------------------------------------------------------------------------
    def context(self, row: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        """What a notification template needs about one incident."""
        rule = None
        if row.get("rule"):
            rule = next((r for r in self.rules.rules if r.name == row["rule"]), None)
        rule = rule or self.rules.by_symptom(row["symptom"])
        svc = self.services.get(row["service"], {}) if isinstance(self.services, Mapping) else {}
        title = svc.get("title") if isinstance(svc, Mapping) else None
        now = self.now()
        tz = self.policy.calendar.tz

        def local(value: str | None) -> str:
            return parse(value).astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""

        return {
            "incident": dict(row),
            "id": row["id"], "level": row["level"], "original_level": row["original_level"],
            "service": row["service"], "symptom": row["symptom"], "fingerprint": row["fingerprint"],
            "service_title": title if isinstance(title, Mapping) else {"zh": row["service"], "en": row["service"]},
            "title": row["title"], "summary": row.get("summary") or "",
            "headline": dict(rule.title) if rule and rule.title.get("zh") == row["title"] else {"zh": row["title"]},
            "impact": dict(rule.impact) if rule else {}, "advice": dict(rule.advice) if rule else {},
            "opened_at": local(row["opened_at"]), "response_due": local(row["response_due"]),
            "repair_due": local(row.get("repair_due")), "clinic_due": local(row.get("clinic_due")),
            "clinic_due_hard": bool(row.get("clinic_due_hard")), "off_hours": bool(row.get("off_hours")),
            "resolved_at": local(row.get("resolved_at")), "work_list": row.get("work_list"),
            "list_due": local(row.get("list_due")), "repeat_no": row["repeat_no"],
            "repeat_threshold": self.policy.repeat_threshold, "escalated": bool(row["escalated"]),
            "waited": fmt_delta(waited(row, now)), "now": now.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            **extra,
        }

    def _notify(self, event: str, row: Mapping[str, Any], **extra: Any) -> None:
        if self.notifier is None:
            return
        self.notifier(event, self.context(row, **extra))


def incident_row_summary(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The clocks of one incident as plain values (for `show`, JSON output and reports)."""
    return {c.name: {"due": iso(c.due), "state": c.state(now), "hard": c.hard,
                     "remaining": fmt_delta(c.remaining(now))} for c in clocks(row)}


def open_incident(store, *, service: str, symptom: str, level: str, title: str, actor: str,
                  policy: SlaPolicy | None = None, notifier: Notifier | None = None, **kw: Any) -> dict[str, Any]:
    """Convenience for other features: open (or de-duplicate into) an incident."""
    return Incidents(store, policy=policy, notifier=notifier).open(service=service, symptom=symptom, level=level,
                                                                    title=title, actor=actor, **kw)


def link(store, incident_id: str, kind: str, ref: str, actor: str = "hospops") -> None:
    """Convenience for other features: link a change request / run / ticket id to an incident."""
    Incidents(store).link(incident_id, kind, ref, actor=actor)
