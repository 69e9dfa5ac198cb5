"""Inspection logic without the lab: app-log error rates, certificate expiry, listening ports from
/proc/net, apt simulation parsing, the B-tree bloat estimate, pg_inspect/pg_maintain against a
throwaway PostgreSQL (a bloated index is found, rebuilt, and a second run does nothing), and the
orchestrator's store (results, findings, metrics from runner events)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.fuhosp.ops.plugins.module_utils import _inspect_host as host  # noqa: E402
from ansible_collections.fuhosp.ops.plugins.module_utils import _inspect_pg as pg  # noqa: E402
from ansible_collections.fuhosp.ops.plugins.module_utils import _inspect_pgmaint as pgmaint  # noqa: E402

TH = dict(host.DEFAULT_THRESHOLDS)


def _line(epoch: float, level: str) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".000+00:00 {level} ih@ih1 something\n"


def test_app_log_error_rate_counts_only_the_window(tmp_path):
    now = 1_800_000_000.0
    log = tmp_path / "ih.log"
    lines = [_line(now - 3600, "ERROR")] * 50                      # an hour ago: outside a 15-minute window
    lines += [_line(now - 600 + i, "ERROR" if i % 4 == 0 else "INFO") for i in range(40)]
    lines += ["  continuation line without a time stamp\n", _line(now - 60, "WARN")]
    log.write_text("".join(lines))
    facts, findings = host.app_logs(TH, [{"name": "ih", "path": str(log), "minutes": 15}], now=now)
    assert (facts[0]["lines"], facts[0]["errors"], facts[0]["warnings"]) == (41, 10, 1)
    assert findings[0]["code"] == "app_error_rate" and findings[0]["severity"] == "critical"   # 24 % > 20 %
    assert "something" not in json.dumps(facts)                                                # no log text
    quiet = tmp_path / "quiet.log"
    quiet.write_text("".join(_line(now - 60, "INFO") for _ in range(20)))
    assert host.app_logs(TH, [{"name": "ih", "path": str(quiet)}], now=now)[1] == []
    timezone_log = tmp_path / "tz.log"
    timezone_log.write_text(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 60 + 8 * 3600)) + "+08:00 ERROR x\n")
    assert host.app_logs(TH, [{"name": "ih", "path": str(timezone_log)}], now=now)[0][0]["errors"] == 1


@pytest.mark.parametrize("days, severity", [(10, "critical"), (20, "high"), (90, None)])
def test_certificate_expiry(tmp_path, days, severity):
    cert = tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days), "-subj", "/CN=t",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(cert)], check=True, capture_output=True)
    facts, findings = host.certificates(TH, [str(tmp_path / "*.pem")])
    cert_fact = [f for f in facts if f["path"] == str(cert)][0]
    assert days - 1 <= cert_fact["days_left"] <= days
    mine = [f for f in findings if f["subject"] == str(cert)]
    assert (mine[0]["severity"] if mine else None) == severity
    # the key matched the glob too: unreadable as a certificate is a finding, a missing plain path as well
    assert any(f["code"] == "certificate_unreadable" for f in findings)
    assert host.certificates(TH, [str(tmp_path / "none" / "*.pem")]) == ([], [])
    assert host.certificates(TH, [str(tmp_path / "gone.pem")])[1][0]["code"] == "certificate_missing"


def test_listening_ports_from_proc_net(tmp_path):
    (tmp_path / "tcp").write_text(
        "  sl  local_address rem_address   st\n"
        "   0: 00000000:0016 00000000:0000 0A 0\n"                  # 0.0.0.0:22 LISTEN
        "   1: 0100007F:1F40 00000000:0000 0A 0\n"                  # 127.0.0.1:8000 LISTEN
        "   2: 0100007F:C350 0100007F:0016 01 0\n")                 # established: ignored
    (tmp_path / "tcp6").write_text(
        "  sl  local_address rem_address st\n"
        "   0: 00000000000000000000000000000000:22A7 00000000000000000000000000000000:0000 0A 0\n")  # [::]:8871
    facts, findings = host.listening(TH, [22, 8000], proc_net=str(tmp_path))
    assert [(f["port"], f["addresses"]) for f in facts] == [(22, ["0.0.0.0"]), (8000, ["127.0.0.1"]), (8871, ["::"])]
    assert [f["subject"] for f in findings] == ["tcp/8871"]
    assert host.listening(TH, None, proc_net=str(tmp_path))[1] == []


@pytest.mark.parametrize("line, expected", [
    ("Inst openssl [3.0.11-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])",
     ("openssl", "3.0.11-1~deb12u1", "3.0.15-1~deb12u1", True)),
    ("Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])",
     ("tzdata", "2024a-0+deb12u1", "2025b-0+deb12u1", False)),
])
def test_apt_simulation_lines(line, expected):
    m = host._INST.match(line)
    assert (m.group(1), m.group(2), m.group(3), "security" in m.group(4).lower()) == expected


@pytest.mark.parametrize("ix, pct", [
    ({"method": "btree", "reltuples": 100000, "key_width": 4, "bytes": 2260992, "fillfactor": 90}, 0.4),
    ({"method": "btree", "reltuples": 100000, "key_width": 4, "bytes": 9003008, "fillfactor": 90}, 75.0),
    ({"method": "hash", "reltuples": 100000, "key_width": 4, "bytes": 9003008}, None),
    ({"method": "btree", "reltuples": -1, "key_width": 4, "bytes": 9003008}, None),
    ({"method": "btree", "reltuples": 1000, "key_width": 4, "bytes": 9003008, "expression_columns": 1}, None),
])
def test_bloat_estimate(ix, pct):
    assert pg.estimate_index_bloat(ix)[2] == pct


@pytest.fixture()
def pg_db(pg_server):
    import psycopg

    name = f"inspect_{int(time.time() * 1000) % 10**8}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = {"login_user": pg_server.user, "login_host": "127.0.0.1", "port": pg_server.port, "databases": [name]}
    yield name, params, pg_server
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_pg_inspect_and_maintain_on_a_real_server(pg_db):
    if not pg.HAS_PSYCOPG2:
        pytest.skip("neither psycopg2 nor psycopg is installed on the control node")
    import psycopg

    name, params, server = pg_db
    with psycopg.connect(server.url(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 60000) g;"
                     " CREATE INDEX t_v ON t (v); CREATE INDEX t_v_dup ON t (v); ANALYZE t")
        for _ in range(4):
            conn.execute("UPDATE t SET v = v + 1")
    with psycopg.connect(server.url(name), autocommit=True) as conn:   # the updater's statistics are flushed at exit
        conn.execute("VACUUM t")
    th = {"index_bloat_min_bytes": 100000}
    out = pg.inspect({**params, "thresholds": th})
    codes = {(f["code"], f["subject"]) for f in out["findings"]}
    assert ("index_bloat", f"{name}.public.t_v") in codes
    assert ("index_duplicate", f"{name}.t_v,t_v_dup") in codes
    assert out["connections"]["max_connections"] == 50
    assert {d["datname"] for d in out["databases"]} >= {name}
    check = pgmaint.maintain({**params, "thresholds": th}, check_mode=True)
    assert {a["object"] for a in check["actions"]} >= {"public.t_v", "public.t_v_dup"}
    assert all(a["after_bytes"] is None for a in check["actions"])
    assert pg.inspect({**params, "thresholds": th})["details"][0]["indexes"] == out["details"][0]["indexes"]
    done = pgmaint.maintain({**params, "thresholds": th}, check_mode=False)
    assert done["changed"] and done["freed_bytes"] > 0
    assert all(a["after_bytes"] < a["before_bytes"] for a in done["actions"] if a["action"] == "reindex")
    again = pgmaint.maintain({**params, "thresholds": th}, check_mode=False)
    assert not again["changed"] and again["actions"] == []


def test_store_records_results_findings_and_metrics(store, tmp_path):
    from hospops import inspections

    events = tmp_path / "artifacts" / "job_events"
    events.mkdir(parents=True)
    result = {"host": "db", "at": "2026-11-25T10:00:00Z", "service": None,
              "os": {"filesystems": [{"mount": "/", "used_pct": 91.0, "used_bytes": 91, "size_bytes": 100, "inodes_pct": 1.0}]},
              "database": {"databases": [{"datname": "hospital", "size_bytes": 7_000_000}],
                           "connections": {"used_pct": 3.0}},
              "findings": [{"code": "disk_usage_high", "severity": "critical", "subject": "/", "message": "full",
                            "clause": "5.2", "recommendation": "clean", "value": 91.0, "threshold": 80}]}
    (events / "1-a.json").write_text(json.dumps({"event": "runner_on_ok", "event_data": {
        "host": "db", "res": {"ansible_facts": {"inspection_result": result}}}}))
    (events / "2-b.json").write_text(json.dumps({"event": "runner_on_ok", "event_data": {"host": "db", "res": {}}}))
    got = inspections.facts_from_events(tmp_path / "artifacts", "inspection_result")
    assert got == {"db": result}
    out = inspections.record(store, kind="full", run_id="run-x", actor="test", results=got, unreachable=["ih2"],
                             failed=[], started="2026-11-25T10:00:00+00:00")
    assert out.status == "partial" and len(out.findings) == 2
    assert {f["code"] for f in inspections.findings(store, out.id)} == {"disk_usage_high", "host_unreachable"}
    series = inspections.series(store, "disk_used_pct")
    assert series[("db", "/")] == [("2026-11-25T10:00:00Z", 91.0)]
    assert inspections.series(store, "db_size_bytes")[("db", "hospital")][0][1] == 7_000_000
    assert inspections.score(out.findings) == 100 - 40 - 40
    assert store.one("SELECT data FROM audit WHERE kind = 'inspection.recorded'")
