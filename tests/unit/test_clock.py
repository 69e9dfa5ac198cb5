"""SLA clocks with an injected clock (contract 7.1, 7.2, 7.7.2 C, 7.7.2 F)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hospops.clinic_calendar import ClinicCalendar
from hospops.errors import UserError
from hospops.incidents import Incidents
from hospops.incidents.clock import SlaPolicy, incident_deadlines
from hospops.store import open_store

SH = ZoneInfo("Asia/Shanghai")


def at(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.t = start

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw) -> None:
        self.t += timedelta(**kw)


# `store` (SQLite and PostgreSQL) comes from tests/conftest.py


def test_l1_on_national_day_eve_is_due_before_the_first_clinic_after_the_holiday():
    # chinese_calendar 1.11: National Day 2026 is Oct 1-7; Thursday Oct 8 is the first clinic day.
    opened = at(2026, 9, 30, 23, 0)
    strict = incident_deadlines("L1", opened, SlaPolicy())                      # default: the earlier
    textual = incident_deadlines("L1", opened, SlaPolicy.from_config({"offhours_l1": "opening"}))
    assert strict.off_hours and strict.clinic_due == at(2026, 10, 8, 8, 0)
    assert strict.clinic_due_hard
    assert strict.repair_due == opened + timedelta(hours=24)                   # 24 h comes first
    assert strict.repair_due < strict.clinic_due
    assert textual.repair_due == at(2026, 10, 8, 8, 0)                         # 7.7.2 C alone
    assert strict.response_due == opened + timedelta(hours=1)


def test_l1_on_an_ordinary_night_is_due_at_registration_start():
    d = incident_deadlines("L1", at(2026, 11, 24, 23, 0), SlaPolicy())
    assert d.repair_due == at(2026, 11, 25, 8, 0)


def test_l1_on_a_makeup_workday_weekend_counts_as_a_clinic_day():
    # Saturday 2026-10-10 is a make-up workday: 10:00 is in hours, not "night or holiday"
    d = incident_deadlines("L1", at(2026, 10, 10, 10, 0), SlaPolicy())
    assert not d.off_hours and d.clinic_due is None
    assert d.repair_due == at(2026, 10, 11, 10, 0)
    # ... and a fault on the Friday evening before it must be fixed by Saturday 08:00
    assert incident_deadlines("L1", at(2026, 10, 9, 20, 0), SlaPolicy()).repair_due == at(2026, 10, 10, 8, 0)


def test_l2_clinic_deadline_is_a_target_unless_configured_hard():
    soft = incident_deadlines("L2", at(2026, 11, 24, 23, 0), SlaPolicy())
    assert soft.clinic_due == at(2026, 11, 25, 8, 0) and not soft.clinic_due_hard
    assert soft.repair_due == at(2026, 11, 25, 23, 0)
    hard = incident_deadlines("L2", at(2026, 11, 24, 23, 0), SlaPolicy.from_config({"l2_clinic": "hard"}))
    assert hard.repair_due == at(2026, 11, 25, 8, 0)


def test_daytime_l1_has_24h_and_l3_l4_go_on_lists():
    d = incident_deadlines("L1", at(2026, 11, 25, 10, 0), SlaPolicy())
    assert not d.off_hours and d.repair_due == at(2026, 11, 26, 10, 0)
    l3 = incident_deadlines("L3", at(2026, 11, 25, 10, 0), SlaPolicy())
    assert l3.work_list == "release" and l3.list_due == at(2026, 12, 9, 10, 0) and l3.repair_due is None
    assert incident_deadlines("L4", at(2026, 11, 25, 10, 0), SlaPolicy()).work_list == "usability"


def test_response_and_repair_breaches_are_detected(store):
    clock = Clock(at(2026, 11, 25, 10, 0))
    sent = []
    inc = Incidents(store, now=clock, notifier=lambda e, c: sent.append((e, c.get("clock"))))
    row = inc.open(service="portal", symptom="unavailable", level="L2", title="portal down", actor="t")
    clock.advance(minutes=50)
    assert ("deadline.near", row["id"]) in inc.check_clocks()
    assert inc.check_clocks() == []                                   # once only
    clock.advance(minutes=11)
    assert ("deadline.breached", row["id"]) in inc.check_clocks()
    inc.respond(row["id"], "alice")
    clock.advance(hours=24)
    events = inc.check_clocks()
    assert events.count(("deadline.breached", row["id"])) == 1       # the repair clock
    assert ("deadline.breached", "repair") in sent and ("deadline.breached", "response") in sent
    from hospops.incidents import incident_row_summary
    summary = incident_row_summary(inc.get(row["id"]), clock())
    assert summary["response"]["state"] == "breached" and summary["repair"]["state"] == "breached"
    kinds = [r["kind"] for r in store.query("SELECT kind FROM audit ORDER BY seq")]
    assert kinds.count("incident.breach") == 2


def test_waiting_on_the_hospital_is_shown_but_does_not_pause(store):
    clock = Clock(at(2026, 11, 25, 10, 0))
    inc = Incidents(store, now=clock)
    row = inc.open(service="ih", symptom="payment_failed", level="L1", title="pay", actor="t")
    clock.advance(minutes=10)
    inc.wait(row["id"], "alice", "asked the hospital to approve a restart")
    clock.advance(minutes=40)
    inc.resume(row["id"], "alice", "approved")
    clock.advance(minutes=5)
    done = inc.resolve(row["id"], "alice")
    assert done["waited_seconds"] == 40 * 60
    assert done["repair_due"] == row["repair_due"]                      # not moved by the wait
    assert [e["kind"] for e in inc.timeline(row["id"])] == ["opened", "waiting", "resumed", "resolved"]
    with pytest.raises(UserError, match="cannot be marked acknowledged"):
        inc.ack(row["id"], "bob")


def test_third_repeat_escalates_and_survives_a_new_store(store_url):
    url = store_url
    clock = Clock(at(2026, 3, 1, 10, 0))
    policy = SlaPolicy.from_config({"contract_year_start": "2026-02-01"})
    levels = []
    for n in range(3):
        store = open_store(url)                                     # a new connection each time
        inc = Incidents(store, policy=policy, now=clock)
        row = inc.open(service="portal", symptom="unavailable", level="L2", title="portal down", actor="probe")
        levels.append((row["repeat_no"], row["level"], row["escalated"]))
        inc.resolve(row["id"], "alice")
        store.close()
        clock.advance(days=30)
    assert levels == [(1, "L2", 0), (2, "L2", 0), (3, "L1", 1)]
    store = open_store(url)
    kinds = [r["kind"] for r in store.query("SELECT kind FROM audit ORDER BY seq")]
    assert kinds.count("incident.repeat") == 1
    # a new contract year starts the count again
    clock.t = at(2027, 2, 2, 10, 0)
    policy2 = SlaPolicy.from_config({"contract_year_start": "02-01"},
                                    calendar=ClinicCalendar.from_config({"known_years": [2027]}))
    row = Incidents(store, policy=policy2, now=clock).open(service="portal", symptom="unavailable", level="L2",
                                                             title="again", actor="probe")
    assert (row["repeat_no"], row["level"]) == (1, "L2")
    store.close()


def test_bad_policy_is_named():
    with pytest.raises(UserError, match="offhours_l1"):
        SlaPolicy.from_config({"offhours_l1": "whenever"})
    with pytest.raises(UserError, match="contract_year_start"):
        SlaPolicy.from_config({"contract_year_start": "13-45"})


def test_respond_while_waiting_keeps_waiting_and_resolution_stops_the_response_clock(store):
    clock = Clock(at(2026, 11, 25, 10, 0))
    inc = Incidents(store, now=clock)
    a = inc.open(service="portal", symptom="unavailable", level="L2", title="down", actor="probe", source="probe")
    inc.wait(a["id"], "alice")
    clock.advance(minutes=20)
    assert inc.respond(a["id"], "alice")["status"] == "waiting"
    assert inc.resume(a["id"], "alice")["status"] == "responded"
    b = inc.open(service="journey", symptom="unavailable", level="L2", title="blip", actor="probe", source="probe")
    clock.advance(minutes=10)
    inc.resolve(b["id"], "probe")
    clock.advance(hours=3)
    from hospops.incidents import incident_row_summary
    assert incident_row_summary(inc.get(b["id"]), clock())["response"]["state"] == "met"


def test_an_incident_in_a_year_without_holiday_data_is_still_opened(store):
    from hospops.clinic_calendar import coverage_warning

    clock = Clock(at(2099, 3, 3, 23, 0))
    inc = Incidents(store, now=clock)
    row = inc.open(service="ih", symptom="payment_failed", level="L1", title="pay", actor="probe")
    assert row["clinic_due"] is None and row["repair_due"] == "2099-03-04T15:00:00+00:00"
    assert [e["kind"] for e in inc.timeline(row["id"])] == ["opened", "calendar"]
    assert "2099" in inc.timeline(row["id"])[1]["note"]
    assert "known_years" in coverage_warning(SlaPolicy().calendar, at(2026, 12, 15))
    assert coverage_warning(SlaPolicy().calendar, at(2026, 6, 1)) is None
