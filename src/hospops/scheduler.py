"""The scheduler: jobs from the inventory (``hospops_schedule``) with cron expressions.

* a job runs when its latest due time (in the schedule's time zone) is after the last due time it
  handled; the handled due time is kept in the store, so after a restart missed runs are caught up
  **once** (not once per missed time), and a job seen for the first time starts fresh (no backlog);
* no overlapping runs: a lock row per lock key (default the job's name; jobs that must not run at the
  same time share a ``lock``) held by a process that can be checked for life, so a lock left by a
  dead scheduler is released (and audited) instead of blocking forever;
* every run, skip and stale lock goes to the audit log (``hospops.audit.record``);
* ``install_systemd`` writes one ``.service`` + ``.timer`` per job (``Persistent=true``: systemd
  also catches up once) for production hosts that prefer timers to a long-running scheduler.

The clock and the job executor are injected, so tests drive time by hand.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from hospops import audit, cron, locks
from hospops.errors import UserError

KINDS = ("inspect", "maintain", "report", "command")
CATCH_UP_GRACE = timedelta(minutes=5)


@dataclass
class Job:
    name: str
    cron: cron.Cron
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    description: str = ""
    lock: str = ""

    @property
    def lock_key(self) -> str:
        return self.lock or self.name


@dataclass
class RunRecord:
    id: str
    job: str
    due_at: str
    catch_up: bool
    status: str          # ok | failed | skipped
    detail: str = ""


Executor = Callable[[Job], str]


def load_jobs(config: dict[str, Any] | None) -> tuple[ZoneInfo, list[Job]]:
    """Parse ``hospops_schedule`` ({timezone, jobs: {name: {cron, kind, ...}}}) into jobs."""
    config = config or {}
    try:
        tz = ZoneInfo(str(config.get("timezone") or "Asia/Shanghai"))
    except Exception as exc:  # noqa: BLE001 - any unknown zone
        raise UserError(f"hospops_schedule.timezone {config.get('timezone')!r} is unknown ({exc})",
                        "use an IANA zone such as Asia/Shanghai") from exc
    jobs = []
    for name, spec in (config.get("jobs") or {}).items():
        spec = dict(spec or {})
        kind = spec.pop("kind", "")
        if kind not in KINDS:
            raise UserError(f"scheduled job {name!r} has kind {kind!r}", f"use one of {', '.join(KINDS)}")
        if "cron" not in spec:
            raise UserError(f"scheduled job {name!r} has no cron expression", "add cron: 'MIN HOUR DOM MON DOW'")
        expr = spec.pop("cron")
        jobs.append(Job(name=name, cron=cron.parse(expr), kind=kind, enabled=bool(spec.pop("enabled", True)),
                        description=str(spec.pop("description", "")), lock=str(spec.pop("lock", "") or ""),
                        params=spec))
    return tz, jobs


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Scheduler:
    def __init__(self, store, jobs: list[Job], tz: ZoneInfo, *, execute: Executor | None = None,
                 clock: Callable[[], datetime] | None = None, actor: str = "scheduler") -> None:
        self.store, self.jobs, self.tz = store, jobs, tz
        self.execute = execute or default_executor
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.actor = actor

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise UserError(f"no scheduled job {name!r}", "see `hospops scheduler list`")

    def state(self, name: str) -> dict[str, Any] | None:
        return self.store.one("SELECT * FROM scheduler_state WHERE job = :j", {"j": name})

    def next_due(self, job: Job, now: datetime | None = None) -> datetime:
        return job.cron.next_after((now or self.clock()).astimezone(self.tz))

    def tick(self) -> list[RunRecord]:
        """Run every enabled job that is due (once each, however many due times were missed)."""
        done = []
        for job in self.jobs:
            if not job.enabled:
                continue
            now = self.clock().astimezone(self.tz)
            latest = job.cron.latest_at_or_before(now)
            state = self.state(job.name)
            if state is None:
                # first sight: start fresh (no backlog); due this very minute still runs
                start = latest if latest is not None and latest < now.replace(second=0, microsecond=0) else None
                self._set_state(job.name, last_due=_iso(start or (latest - timedelta(minutes=1) if latest else now)))
                state = self.state(job.name)
            if latest is None or (state["last_due"] and latest <= _parse(state["last_due"])):
                continue
            missed = job.cron.due_between(_parse(state["last_due"]).astimezone(self.tz), latest, limit=2)
            catch_up = len(missed) > 1 or now - latest > CATCH_UP_GRACE
            done.append(self.run_job(job, latest, catch_up))
        return done

    def run_job(self, job: Job, due: datetime | None = None, catch_up: bool = False, forced: bool = False) -> RunRecord:
        now = self.clock()
        due = due or now.astimezone(self.tz).replace(second=0, microsecond=0)
        rid = f"sched-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        here, pid, start = locks.me()
        with self.store.transaction():
            lock = self.store.one("SELECT * FROM scheduler_locks WHERE job = :k", {"k": job.lock_key})
            if lock is not None and locks.holder_alive(lock):
                self._set_state(job.name, last_due=_iso(due), last_status="skipped")
                self.store.execute(
                    "INSERT INTO scheduler_runs (id, job, due_at, catch_up, status, detail, started_at, ended_at)"
                    " VALUES (:id, :job, :due, :cu, 'skipped', :detail, :at, :at)",
                    {"id": rid, "job": job.name, "due": _iso(due), "cu": int(catch_up), "at": _iso(now),
                     "detail": f"{job.lock_key} is held by run {lock['run_id']} since {lock['since']}"})
                audit.record(self.store, "scheduler.skipped", job.name,
                             {"run_id": rid, "due_at": _iso(due), "reason": "overlap", "held_by": lock["run_id"],
                              "lock": job.lock_key}, actor=self.actor)
                return RunRecord(rid, job.name, _iso(due), catch_up, "skipped", f"held by {lock['run_id']}")
            if lock is not None:
                self.store.execute("DELETE FROM scheduler_locks WHERE job = :k", {"k": job.lock_key})
                audit.record(self.store, "scheduler.stale_lock_released", job.lock_key,
                             {"run_id": lock["run_id"], "pid": lock["pid"], "since": lock["since"]}, actor=self.actor)
            self.store.execute(
                "INSERT INTO scheduler_locks (job, run_id, node, pid, proc_start, since)"
                " VALUES (:k, :r, :node, :pid, :start, :since)",
                {"k": job.lock_key, "r": rid, "node": here, "pid": pid, "start": start, "since": _iso(now)})
            # the due time counts as handled before the job runs: a crash mid-run is not retried N times
            self._set_state(job.name, last_due=_iso(due), last_status="running", last_run=rid)
            self.store.execute(
                "INSERT INTO scheduler_runs (id, job, due_at, catch_up, status, detail, started_at)"
                " VALUES (:id, :job, :due, :cu, 'running', '', :at)",
                {"id": rid, "job": job.name, "due": _iso(due), "cu": int(catch_up), "at": _iso(now)})
            audit.record(self.store, "scheduler.run.start", job.name,
                         {"run_id": rid, "kind": job.kind, "due_at": _iso(due), "catch_up": catch_up, "forced": forced},
                         actor=self.actor)
        status, detail = "ok", ""
        try:
            detail = str(self.execute(job) or "")
        except Exception as exc:  # noqa: BLE001 - a failed job is recorded, the scheduler goes on
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            ended = self.clock()
            with self.store.transaction():
                self.store.execute("UPDATE scheduler_runs SET status = :s, detail = :d, ended_at = :at WHERE id = :id",
                                   {"s": status, "d": detail[:2000], "at": _iso(ended), "id": rid})
                self.store.execute("DELETE FROM scheduler_locks WHERE job = :k AND run_id = :r",
                                   {"k": job.lock_key, "r": rid})
                self._set_state(job.name, last_status=status)
                audit.record(self.store, "scheduler.run.end", job.name,
                             {"run_id": rid, "status": status, "detail": detail[:500],
                              "seconds": round((ended - now).total_seconds(), 1)}, actor=self.actor)
        return RunRecord(rid, job.name, _iso(due), catch_up, status, detail)

    def _set_state(self, name: str, **values: Any) -> None:
        with self.store.transaction():
            if self.state(name) is None:
                self.store.execute("INSERT INTO scheduler_state (job, last_due, last_status, last_run)"
                                   " VALUES (:j, NULL, NULL, NULL)", {"j": name})
            for key, value in values.items():
                self.store.execute(f"UPDATE scheduler_state SET {key} = :v WHERE job = :j", {"v": value, "j": name})

    def loop(self, stop: Callable[[], bool] = lambda: False, sleep: Callable[[float], None] = time.sleep) -> None:
        while not stop():
            self.tick()
            now = self.clock()
            sleep(max(1.0, 60 - now.second - now.microsecond / 1e6))


def default_executor(job: Job) -> str:
    """Run a job in-process (inspections, maintenance, reports) or as a hospops command."""
    p = job.params
    if job.kind == "inspect":
        from hospops import inspections

        out = inspections.run(light=bool(p.get("light")), limit=p.get("limit"), actor="scheduler")
        if out.status == "failed":
            raise RuntimeError(f"inspection {out.id} failed: no host answered")
        return f"inspection {out.id}: {len(out.hosts)} hosts, {len(out.findings)} findings, {out.status}"
    if job.kind == "maintain":
        from hospops import inspections

        out = inspections.maintain(limit=p.get("limit"), actor="scheduler")
        if not out["ok"]:
            raise RuntimeError(f"maintenance run {out['run_id']} {out['status']}: failed {out['failed_hosts']},"
                               f" unreachable {out['unreachable_hosts']}")
        return f"maintenance {out['change_id']} run {out['run_id']}: {len(out['results'])} results"
    if job.kind == "report":
        from hospops.reports import generate

        paths = generate(str(p.get("report") or "daily"), lang=str(p.get("lang") or "zh"))
        return "wrote " + ", ".join(str(x) for x in paths)
    argv = [str(a) for a in p.get("argv") or []]
    if not argv:
        raise UserError(f"job {job.name} has no argv", "give the hospops sub-command as argv: [...]")
    proc = subprocess.run([sys.executable, "-m", "hospops", *argv], capture_output=True, text=True,
                          timeout=int(p.get("timeout_minutes") or 240) * 60)
    if proc.returncode:
        raise RuntimeError(f"`hospops {' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()[-500:]


def install_systemd(jobs: list[Job], tz: ZoneInfo, directory: Path, *, python: str | None = None,
                    env: dict[str, str] | None = None) -> list[Path]:
    """Write hospops-<job>.service and .timer for each enabled job into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    python = python or sys.executable
    env = env if env is not None else {k: os.environ[k] for k in ("HOSPOPS_HOME", "HOSPOPS_INVENTORY", "HOSPOPS_STORE_URL")
                                       if k in os.environ}
    written = []
    for job in jobs:
        if not job.enabled:
            continue
        unit = f"hospops-{job.name.replace('_', '-')}"
        env_lines = "".join(f"Environment={k}={v}\n" for k, v in sorted(env.items()))
        service = (f"[Unit]\nDescription=hospops scheduled job {job.name}: {job.description or job.kind}\n"
                   "After=network-online.target\n\n[Service]\nType=oneshot\n" + env_lines +
                   f"ExecStart={python} -m hospops scheduler run --job {job.name}\n")
        calendars = "".join(f"OnCalendar={c}\n" for c in cron.to_on_calendar(job.cron, str(tz)))
        timer = (f"[Unit]\nDescription=hospops schedule for {job.name} ({job.cron.expr}, {tz})\n\n[Timer]\n"
                 + calendars + f"Persistent=true\nUnit={unit}.service\n\n[Install]\nWantedBy=timers.target\n")
        for suffix, text in (("service", service), ("timer", timer)):
            path = directory / f"{unit}.{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def describe(sched: Scheduler) -> list[dict[str, Any]]:
    out = []
    for job in sched.jobs:
        state = sched.state(job.name) or {}
        out.append({"job": job.name, "kind": job.kind, "cron": job.cron.expr, "enabled": job.enabled,
                    "next_due": sched.next_due(job).isoformat(timespec="minutes") if job.enabled else None,
                    "last_due": state.get("last_due"), "last_status": state.get("last_status"),
                    "description": job.description})
    return out


def runs(store, job: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    sql = "SELECT * FROM scheduler_runs" + (" WHERE job = :j" if job else "") + " ORDER BY started_at DESC"
    return store.query(sql, {"j": job} if job else {})[:limit]


def to_json(records: list[RunRecord]) -> str:
    return json.dumps([r.__dict__ for r in records], ensure_ascii=False)
