"""The monthly SLA report: timings, breaches, availability, MTTA/MTTR, repeats, break-glass."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hospops import audit, sla
from hospops.incidents import Incidents
from hospops.incidents.clock import SlaPolicy
from hospops.store import open_store

SH = ZoneInfo("Asia/Shanghai")


# `store` (SQLite and PostgreSQL) comes from tests/conftest.py


def test_report(store):
    now = [datetime(2026, 10, 9, 20, 0, tzinfo=SH)]
    inc = Incidents(store, now=lambda: now[0])
    a = inc.open(service="ih", symptom="payment_failed", level="L1", title="pay", actor="probe")
    now[0] += timedelta(minutes=30)
    inc.ack(a["id"], "alice")
    now[0] += timedelta(minutes=90)                     # responded late: response breached
    inc.respond(a["id"], "alice")
    inc.wait(a["id"], "alice", "waiting for agreement")
    now[0] += timedelta(hours=1)
    inc.resume(a["id"], "alice")
    now[0] += timedelta(hours=1)
    inc.resolve(a["id"], "alice")                      # 4 h after opening, before Saturday 08:00 (make-up day)
    inc.link(a["id"], "change", "CR-20261009-001")
    for _ in range(3):
        now[0] += timedelta(days=3)
        b = inc.open(service="portal", symptom="unavailable", level="L2", title="portal down", actor="probe")
        inc.respond(b["id"], "bob")
        now[0] += timedelta(hours=2)
        inc.resolve(b["id"], "bob")
    inc.open(service="waiting", symptom="errors", level="L3", title="stale screen", actor="probe")
    audit.record(store, "change.break_glass", "CR-20261010-002", {"reason": "L1 at night"},
                 at=datetime(2026, 10, 10, 2, 0, tzinfo=SH))
    report = sla.build(store, "2026-10", SlaPolicy(), now=datetime(2026, 11, 1, 9, 0, tzinfo=SH),
                       services=["portal", "ih", "waiting", "journey"])
    by = {s.service: s for s in report.services}
    assert by["ih"].by_level["L1"] == 1 and by["ih"].mtta == timedelta(minutes=30)
    assert by["ih"].mttr == timedelta(hours=4) and by["ih"].breaches == 1
    assert by["portal"].by_level == {"L1": 1, "L2": 2, "L3": 0, "L4": 0} and by["portal"].repeats == 2
    assert by["portal"].down == timedelta(hours=6)
    assert by["portal"].availability == pytest.approx(100 * (1 - 6 / (31 * 24)), abs=0.001)
    first = [i for i in report.incidents if i["id"] == a["id"]][0]
    assert first["breaches"] == ["response"] and first["waited"] == timedelta(hours=1)
    assert [i["three_strikes"] for i in report.incidents if i["service"] == "portal"] == [False, False, True]
    assert len(report.break_glass) == 1 and len(report.release_list) == 1

    md = sla.render(report, "md", SlaPolicy())
    assert "3-strikes" in md and "L1 (from L2)" in md and "change:CR-20261009-001" in md
    assert "Break-glass runs (1)" in md and "1h00m" in md
    rows = list(csv.reader(io.StringIO(sla.render(report, "csv", SlaPolicy()))))
    assert ["# Incidents"] in rows
    assert "<table>" in sla.render(report, "html", SlaPolicy())


def test_cli_report_to_file(tmp_path):
    env = {**__import__("os").environ, "HOSPOPS_HOME": str(tmp_path), "HOSPOPS_NOW": "2026-11-24T23:00:00+08:00"}
    cmd = [sys.executable, "-m", "hospops"]
    r = subprocess.run(cmd + ["incident", "--no-notify", "open", "--service", "portal", "--report", "usability",
                              "--by", "运营"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "r.csv"
    r = subprocess.run(cmd + ["sla", "report", "--month", "2026-11", "--format", "csv", "-o", str(out)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "portal:usability" in out.read_text(encoding="utf-8")
    bad = subprocess.run(cmd + ["sla", "report", "--month", "Nov"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
