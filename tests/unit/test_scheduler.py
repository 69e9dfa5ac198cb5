"""The scheduler with an injected clock: on time, no overlap, one catch-up after a restart, audit,
stale locks, failures recorded, systemd units."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from hospops import locks, scheduler

SH = ZoneInfo("Asia/Shanghai")
CONFIG = {"timezone": "Asia/Shanghai", "jobs": {
    "nightly": {"cron": "30 1 * * *", "kind": "maintain", "lock": "hosts"},
    "daily": {"cron": "30 6 * * *", "kind": "inspect", "light": True},
    "drill": {"cron": "0 3 * * 3", "kind": "command", "argv": ["drill", "run"], "enabled": False, "lock": "hosts"},
}}


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, *args) -> None:
        self.now = datetime(*args, tzinfo=SH).astimezone(timezone.utc)


@pytest.fixture()
def world(store):
    tz, jobs = scheduler.load_jobs(CONFIG)
    clock = Clock(datetime(2026, 11, 24, 12, 0, tzinfo=SH))
    ran: list[str] = []
    sched = scheduler.Scheduler(store, jobs, tz, clock=clock, execute=lambda job: ran.append(job.name) or "done")
    return sched, clock, ran, store


def test_runs_on_time_and_not_twice(world):
    sched, clock, ran, store = world
    assert sched.tick() == [] and ran == []                  # first sight: no backlog
    clock.set(2026, 11, 25, 1, 29)
    assert sched.tick() == []
    clock.set(2026, 11, 25, 1, 30)
    recs = sched.tick()
    assert [(r.job, r.status, r.catch_up) for r in recs] == [("nightly", "ok", False)]
    clock.set(2026, 11, 25, 1, 31)
    assert sched.tick() == []                                # handled: not again in the same period
    clock.set(2026, 11, 25, 6, 30)
    assert [r.job for r in sched.tick()] == ["daily"]
    assert ran == ["nightly", "daily"]
    kinds = [r["kind"] for r in store.query("SELECT kind FROM audit WHERE kind LIKE 'scheduler.%' ORDER BY seq")]
    assert kinds == ["scheduler.run.start", "scheduler.run.end"] * 2


def test_catches_up_once_after_a_restart(world, store):
    sched, clock, ran, _ = world
    sched.tick()
    clock.set(2026, 11, 25, 1, 30)
    sched.tick()
    # the scheduler was down for five days; a new process (new Scheduler, same store) starts
    clock.set(2026, 11, 30, 9, 0)
    tz, jobs = scheduler.load_jobs(CONFIG)
    again = scheduler.Scheduler(store, jobs, tz, clock=clock, execute=lambda job: ran.append(job.name) or "")
    recs = again.tick()
    assert sorted((r.job, r.catch_up) for r in recs) == [("daily", True), ("nightly", True)]
    assert ran.count("nightly") == 2                         # once on time, once to catch up: not five times
    assert again.tick() == []
    due = store.one("SELECT due_at FROM scheduler_runs WHERE job = 'nightly' ORDER BY started_at DESC")
    assert due["due_at"] == datetime(2026, 11, 30, 1, 30, tzinfo=SH).astimezone(timezone.utc).isoformat()


def test_no_overlap_while_the_lock_is_held_by_a_live_process(world, store):
    sched, clock, ran, _ = world
    sched.tick()
    proc = subprocess.Popen(["sleep", "30"])
    try:
        start = locks.proc_start(proc.pid)
        with store.transaction():
            store.execute("INSERT INTO scheduler_locks (job, run_id, node, pid, proc_start, since)"
                          " VALUES ('hosts', 'sched-other', :node, :pid, :start, '2026-11-24T17:00:00+00:00')",
                          {"node": locks.node(), "pid": proc.pid, "start": start})
        clock.set(2026, 11, 25, 1, 30)
        recs = sched.tick()
        assert [(r.job, r.status) for r in recs] == [("nightly", "skipped")]
        assert ran == []
        audit = store.one("SELECT data FROM audit WHERE kind = 'scheduler.skipped'")
        assert json.loads(audit["data"])["held_by"] == "sched-other"
    finally:
        proc.kill()
        proc.wait()
    # the holder died: its lock is stale, released with an audit record, and the next due time runs
    clock.set(2026, 11, 26, 1, 30)
    recs = sched.tick()
    assert {r.job: r.status for r in recs}["nightly"] == "ok"
    assert store.one("SELECT 1 AS x FROM audit WHERE kind = 'scheduler.stale_lock_released'")
    assert store.query("SELECT * FROM scheduler_locks") == []


def test_a_job_that_runs_a_job_of_the_same_lock_is_refused(world, store):
    sched, clock, ran, _ = world
    inner: list[str] = []

    def execute(job):
        # while 'nightly' runs, a forced run of the same lock (another job of 'hosts') is skipped
        other = scheduler.Job(name="backup", cron=job.cron, kind="command", lock="hosts")
        inner.append(sched.run_job(other, forced=True).status)
        return "ok"

    sched.execute = execute
    sched.tick()
    clock.set(2026, 11, 25, 1, 30)
    sched.tick()
    assert inner == ["skipped"]


def test_failures_are_recorded_and_the_scheduler_goes_on(world, store):
    sched, clock, _, _ = world

    def boom(job):
        raise RuntimeError("playbook failed")

    sched.execute = boom
    sched.tick()
    clock.set(2026, 11, 25, 6, 30)
    recs = sched.tick()
    assert {r.job: r.status for r in recs} == {"nightly": "failed", "daily": "failed"}
    assert "playbook failed" in recs[0].detail
    assert store.query("SELECT * FROM scheduler_locks") == []
    end = [json.loads(r["data"]) for r in store.query("SELECT data FROM audit WHERE kind = 'scheduler.run.end'")]
    assert {e["status"] for e in end} == {"failed"}


def test_disabled_jobs_never_run_and_list_shows_next_due(world):
    sched, clock, ran, _ = world
    clock.set(2026, 12, 2, 3, 0)
    sched.tick()
    clock.set(2026, 12, 9, 3, 0)
    sched.tick()
    assert "drill" not in ran
    rows = {r["job"]: r for r in scheduler.describe(sched)}
    assert rows["drill"]["next_due"] is None
    assert rows["daily"]["next_due"] == "2026-12-09T06:30+08:00"


def test_bad_config_is_a_user_error():
    from hospops.errors import UserError

    with pytest.raises(UserError, match="kind"):
        scheduler.load_jobs({"jobs": {"x": {"cron": "* * * * *", "kind": "dance"}}})
    with pytest.raises(UserError, match="cron"):
        scheduler.load_jobs({"jobs": {"x": {"kind": "inspect"}}})
    with pytest.raises(UserError, match="timezone"):
        scheduler.load_jobs({"timezone": "Mars/Olympus", "jobs": {}})


def test_install_writes_timers(tmp_path):
    tz, jobs = scheduler.load_jobs(CONFIG)
    written = scheduler.install_systemd(jobs, tz, tmp_path, python="/opt/hospops/bin/python", env={"HOSPOPS_HOME": "/var/lib/hospops"})
    names = sorted(p.name for p in written)
    assert names == ["hospops-daily.service", "hospops-daily.timer", "hospops-nightly.service", "hospops-nightly.timer"]
    timer = (tmp_path / "hospops-nightly.timer").read_text()
    assert "OnCalendar=*-*-* 01:30:00 Asia/Shanghai" in timer and "Persistent=true" in timer
    service = (tmp_path / "hospops-nightly.service").read_text()
    assert "ExecStart=/opt/hospops/bin/python -m hospops scheduler run --job nightly" in service
    assert "Environment=HOSPOPS_HOME=/var/lib/hospops" in service
    if subprocess.run(["which", "systemd-analyze"], capture_output=True).returncode == 0:
        check = subprocess.run(["systemd-analyze", "calendar", "*-*-* 01:30:00 Asia/Shanghai"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
