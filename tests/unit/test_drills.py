"""hospops.drills: judging evidence, recording it (store + audit chain), the run flow, failure notification, CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from hospops import audit, drills

GOOD = {
    "status": "passed", "drill_id": "d", "target": "2026-11-25 10:00:00.000000+00", "target_type": "time",
    "backup": {"label": "20261125-095000F", "type": "full", "stop": 1795600200},
    "scratch_host": "scratch", "rto_seconds": 7.4, "rpo_seconds": 0.21,
    "checks": {"restored": True, "pg_dump": True, "amcheck": True, "before_present": True, "after_absent": True},
    "markers": {"written_before": 10, "written_after": 3, "restored_before": 10, "restored_after": 0},
}


def _with(**over):
    ev = json.loads(json.dumps(GOOD))
    for key, value in over.items():
        if key.startswith("checks."):
            ev["checks"][key.split(".", 1)[1]] = value
        else:
            ev[key] = value
    return ev


@pytest.mark.parametrize("evidence, run_ok, status, problem", [
    (GOOD, True, "passed", None),
    (None, False, "failed", "wrote no evidence"),
    ({}, True, "failed", "wrote no evidence"),
    (_with(**{"checks.after_absent": False}), True, "failed", "check after_absent did not pass"),
    (_with(**{"checks.before_present": False}), True, "failed", "check before_present did not pass"),
    (_with(**{"checks.amcheck": "true"}), True, "failed", "check amcheck did not pass"),   # only a real True passes
    (_with(checks={}), True, "failed", "check restored did not pass"),
    (_with(rto_seconds=None), True, "failed", "no RTO measured"),
    ({"status": "failed", "error": "Restore from the repository: unable to find backup set"}, False, "failed",
     "unable to find backup set"),
    (GOOD, False, "failed", "the playbook run failed after the checks"),
])
def test_judge(evidence, run_ok, status, problem):
    got, problems = drills.judge(evidence, run_ok)
    assert got == status
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_record_keeps_evidence_and_audits(store):
    row = drills.record(store, "drill-1", GOOD, status="passed", problems=[], actor="oncall", run_id="run-1",
                        started_at="2026-11-25T10:00:00+00:00", ended_at="2026-11-25T10:01:00+00:00")
    assert row["backup_label"] == "20261125-095000F"
    assert row["backup_stop"].startswith("2026-")
    assert row["rto_seconds"] == pytest.approx(7.4) and row["rpo_seconds"] == pytest.approx(0.21)
    assert json.loads(row["checks"])["after_absent"] is True
    last = store.one("SELECT kind, subject, data FROM audit ORDER BY seq DESC LIMIT 1")
    assert (last["kind"], last["subject"]) == ("drill.passed", "drill-1")
    assert json.loads(last["data"])["backup_label"] == "20261125-095000F"
    assert audit.verify(store).ok


@dataclass
class FakeResult:
    run_id: str
    ok: bool


def _fake_runner(evidence, ok=True, calls=None):
    def run(playbook, **kw):
        if calls is not None:
            calls.append((playbook, kw))
        if evidence is not None:
            Path(kw["extravars"]["restore_drill_evidence"]).write_text(json.dumps(evidence), encoding="utf-8")
        return FakeResult(run_id="run-x", ok=ok)
    return run


def test_run_drill_passes_and_records(store, monkeypatch):
    sent = []
    monkeypatch.setattr("hospops.notify.send", lambda *a, **k: sent.append((a, k)), raising=False)
    calls = []
    row = drills.run_drill(store, actor="oncall", runner=_fake_runner(GOOD, calls=calls))
    assert row["status"] == "passed" and row["run_id"] == "run-x"
    playbook, kw = calls[0]
    assert playbook == "restore_drill.yml" and kw["change_id"] is None
    assert kw["extravars"]["restore_drill_id"] == row["id"]
    assert sent == []
    kinds = [r["kind"] for r in store.query("SELECT kind FROM audit ORDER BY seq")]
    assert kinds[-2:] == ["drill.start", "drill.passed"]


def test_run_drill_failure_is_recorded_and_notified(store, monkeypatch):
    sent = []
    monkeypatch.setattr("hospops.notify.send", lambda st, event, ctx, **k: sent.append((event, ctx)), raising=False)
    row = drills.run_drill(store, actor="oncall", runner=_fake_runner(_with(**{"checks.after_absent": False})))
    assert row["status"] == "failed" and "after_absent" in row["error"]
    assert sent and sent[0][0] == "drill_failed" and sent[0][1]["id"] == row["id"]
    assert store.one("SELECT kind FROM audit ORDER BY seq DESC LIMIT 1")["kind"] == "drill.failed"


def test_run_drill_records_a_crash_of_the_runner(store, monkeypatch):
    monkeypatch.setattr("hospops.notify.send", lambda *a, **k: [], raising=False)

    def boom(playbook, **kw):
        raise RuntimeError("ansible-runner died")

    with pytest.raises(RuntimeError):
        drills.run_drill(store, actor="oncall", runner=boom)
    row = drills.list_drills(store)[0]
    assert row["status"] == "failed" and "no evidence" in row["error"]


def test_cli_list_and_show(store_url, monkeypatch, capsys):
    from hospops.cli import main
    from hospops.store import open_store

    monkeypatch.setenv("HOSPOPS_STORE_URL", store_url)
    st = open_store()
    drills.record(st, "drill-1", GOOD, status="passed", problems=[], actor="oncall", run_id="run-1",
                  started_at="2026-11-25T10:00:00+00:00", ended_at="2026-11-25T10:01:00+00:00")
    assert main(["drill", "list"]) == 0
    out = capsys.readouterr().out
    assert "drill-1" in out and "20261125-095000F" in out and "7.4 s" in out
    assert main(["drill", "show", "drill-1"]) == 0
    out = capsys.readouterr().out
    assert "RTO        7.4 s" in out and "after_absent ok" in out
    assert main(["drill", "show", "nope"]) == 2
    assert "no drill 'nope'" in capsys.readouterr().err
