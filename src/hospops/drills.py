"""Restore drills: restore the latest backup to a scratch host, recover to a time, check it, keep the evidence.

``run_drill`` runs ``playbooks/restore_drill.yml`` through ``hospops.runner.run_playbook`` (no change ticket:
a drill changes no production data beyond its own marker rows), reads the evidence the playbook writes as
JSON on the control node, judges it, and records it in the ``drills`` table and the audit chain (kind
``drill.passed`` or ``drill.failed``). A failed drill notifies (event ``drill_failed``).

Evidence: the backup set used (label, type, end), the target, RTO (seconds from the start of the restore to a
database that accepts writes), RPO (seconds between the target and the newest marker row recovered; the drill
writes a marker every 0.2 s up to the target, so a correct recovery gives about 0.2 s), and the checks:
restored, pg_dump of every database, pg_amcheck, markers before the target present, markers after it absent.
"""

from __future__ import annotations

import json
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from hospops import audit
from hospops.errors import UserError
from hospops.paths import hospops_home

PLAYBOOK = "restore_drill.yml"
CHECKS = ("restored", "pg_dump", "amcheck", "before_present", "after_absent")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_drill_id(now: datetime | None = None) -> str:
    return f"drill-{(now or datetime.now(timezone.utc)):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


def judge(evidence: dict[str, Any] | None, run_ok: bool) -> tuple[str, list[str]]:
    """('passed' | 'failed', problems) for the evidence of one drill and whether its run succeeded."""
    if not evidence:
        return "failed", ["the drill wrote no evidence: it failed before the restore (see the run's artifacts)"]
    problems = []
    if evidence.get("error"):
        problems.append(str(evidence["error"]))
    checks = evidence.get("checks") or {}
    for name in CHECKS:
        if checks.get(name) is not True:
            problems.append(f"check {name} did not pass")
    if evidence.get("rto_seconds") is None:
        problems.append("no RTO measured")
    if not run_ok and not problems:
        problems.append("the playbook run failed after the checks (see the run's artifacts)")
    return ("passed" if not problems else "failed"), problems


def _iso(epoch: Any) -> str | None:
    try:
        return datetime.fromtimestamp(float(epoch), timezone.utc).isoformat(timespec="seconds")
    except (TypeError, ValueError):
        return None


def record(store, drill_id: str, evidence: dict[str, Any] | None, *, status: str, problems: list[str], actor: str,
           run_id: str | None, started_at: str, ended_at: str) -> dict[str, Any]:
    """Store one drill's evidence and append it to the audit chain; return the stored row."""
    ev = evidence or {}
    backup = ev.get("backup") or {}
    row = {
        "id": drill_id, "started_at": started_at, "ended_at": ended_at, "status": status, "actor": actor,
        "run_id": run_id, "backup_label": backup.get("label"), "backup_type": backup.get("type"),
        "backup_stop": _iso(backup.get("stop")), "target_type": ev.get("target_type"), "target": ev.get("target"),
        "scratch_host": ev.get("scratch_host"), "rto_seconds": ev.get("rto_seconds"),
        "rpo_seconds": ev.get("rpo_seconds"), "checks": json.dumps(ev.get("checks") or {}, sort_keys=True),
        "markers": json.dumps(ev.get("markers") or {}, sort_keys=True), "error": "; ".join(problems),
    }
    with store.transaction():
        store.execute(
            "INSERT INTO drills (id, started_at, ended_at, status, actor, run_id, backup_label, backup_type, backup_stop,"
            " target_type, target, scratch_host, rto_seconds, rpo_seconds, checks, markers, error) VALUES (:id,"
            " :started_at, :ended_at, :status, :actor, :run_id, :backup_label, :backup_type, :backup_stop, :target_type,"
            " :target, :scratch_host, :rto_seconds, :rpo_seconds, :checks, :markers, :error)", row)
        audit.record(store, f"drill.{status}", drill_id,
                     {"run_id": run_id, "backup_label": row["backup_label"], "backup_type": row["backup_type"],
                      "target": row["target"], "rto_seconds": row["rto_seconds"], "rpo_seconds": row["rpo_seconds"],
                      "checks": ev.get("checks") or {}, "problems": problems}, actor=actor)
    return get(store, drill_id)


def _notify_failure(store, row: dict[str, Any], inventory) -> None:
    try:
        from hospops.notify import send
    except ImportError:  # notifications not installed: the record and the audit chain still hold the failure
        return
    try:
        send(store, "drill_failed", {"id": row["id"], "subject": row["id"], "title": "restore drill failed",
                                     "summary": row["error"], "backup_label": row["backup_label"],
                                     "target": row["target"]}, inventory=inventory)
    except Exception as exc:  # noqa: BLE001 - a notification failure must not hide the drill's own result
        print(f"hospops: could not notify the drill failure: {exc}", file=sys.stderr)


Runner = Callable[..., Any]


def run_drill(store, *, actor: str, inventory: Path | None = None, keep_scratch: bool = False,
              runner: Runner | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run one restore drill end to end and return its stored evidence row."""
    if runner is None:
        from hospops.runner import run_playbook as runner
    drill_id = new_drill_id()
    out_dir = hospops_home() / "drills"
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    evidence_file = out_dir / f"{drill_id}.json"
    started = _now()
    audit.record(store, "drill.start", drill_id, {"playbook": PLAYBOOK}, actor=actor)
    run_id, run_ok = None, False
    try:
        result = runner(PLAYBOOK, change_id=None, inventory=inventory, actor=actor, store=store, progress=progress,
                        extravars={"restore_drill_id": drill_id, "restore_drill_evidence": str(evidence_file),
                                   "restore_drill_keep": keep_scratch})
        run_id, run_ok = result.run_id, bool(result.ok)
    finally:
        evidence = None
        if evidence_file.is_file():
            try:
                evidence = json.loads(evidence_file.read_text(encoding="utf-8"))
            except ValueError:
                evidence = None
        status, problems = judge(evidence, run_ok)
        row = record(store, drill_id, evidence, status=status, problems=problems, actor=actor, run_id=run_id,
                     started_at=started, ended_at=_now())
    if status != "passed":
        _notify_failure(store, row, inventory)
    return row


def list_drills(store, limit: int = 20) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM drills ORDER BY started_at DESC, id DESC LIMIT :n", {"n": limit})


def get(store, drill_id: str) -> dict[str, Any]:
    row = store.one("SELECT * FROM drills WHERE id = :id", {"id": drill_id})
    if row is None:
        raise UserError(f"no drill {drill_id!r}", "list the drills with `hospops drill list`")
    return row


def _num(value: Any, unit: str = "s") -> str:
    return "-" if value is None else f"{float(value):.1f} {unit}"


def render_list(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'drill':<28} {'status':<7} {'backup':<36} {'RTO':>9} {'RPO':>8}  target"]
    for r in rows:
        lines.append(f"{r['id']:<28} {r['status']:<7} {(r['backup_label'] or '-'):<36} {_num(r['rto_seconds']):>9}"
                     f" {_num(r['rpo_seconds']):>8}  {r['target'] or '-'}")
    return "\n".join(lines) + "\n"


def render_show(r: dict[str, Any]) -> str:
    checks = json.loads(r["checks"] or "{}")
    markers = json.loads(r["markers"] or "{}")
    lines = [
        f"drill      {r['id']}",
        f"status     {r['status']}",
        f"when       {r['started_at']} .. {r['ended_at'] or '-'}  (by {r['actor']}, run {r['run_id'] or '-'})",
        f"backup     {r['backup_label'] or '-'} ({r['backup_type'] or '-'}, ended {r['backup_stop'] or '-'})",
        f"target     {r['target_type'] or '-'} {r['target'] or '-'}",
        f"restored   on {r['scratch_host'] or '-'}",
        f"RTO        {_num(r['rto_seconds'])} to a usable database",
        f"RPO        {_num(r['rpo_seconds'])} between the target and the newest row recovered",
        "checks     " + (", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in sorted(checks.items())) or "-"),
        "markers    " + (", ".join(f"{k}={v}" for k, v in sorted(markers.items())) or "-"),
    ]
    if r["error"]:
        lines.append(f"problems   {r['error']}")
    return "\n".join(lines) + "\n"
