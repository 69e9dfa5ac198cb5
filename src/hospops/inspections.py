"""Inspections and maintenance runs: run the playbook, collect each host's result, store it for trends.

``run()`` runs ``playbooks/inspect.yml`` through ``hospops.runner.run_playbook`` (no change: the
inspection only reads), then reads the fact ``inspection_result`` that the ``fuhosp.ops.inspection``
role sets on each host from the run's job events, and stores the run, each host's JSON, its findings
and a few numbers per host (disk use, database size, certificate days left, latency, ...) as history
for the report's trends and predictions (contract 5.1, 7.4.2 (4)).

``maintain()`` files a pre-approved ``maintain`` change (policy: pre-approved inside the maintenance
window), runs ``playbooks/maintain.yml`` under it and stores what each host's maintenance did.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from hospops import audit

SEVERITY_WEIGHT = {"critical": 40, "high": 15, "medium": 6, "low": 2, "info": 0}
SEVERITY_ORDER = ["critical", "high", "medium", "low", "info"]


@dataclass
class Outcome:
    id: str
    kind: str
    run_id: str | None
    status: str
    hosts: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def facts_from_events(artifacts_dir: Path | None, fact: str) -> dict[str, dict[str, Any]]:
    """The last value of ``fact`` set per host in a run, read from ansible-runner's job events."""
    out: dict[str, dict[str, Any]] = {}
    if not artifacts_dir:
        return out
    events_dir = Path(artifacts_dir) / "job_events"
    if not events_dir.is_dir():
        return out
    def order(p: Path) -> int:
        try:
            return int(p.name.split("-", 1)[0])
        except ValueError:
            return 0
    for path in sorted(events_dir.glob("*.json"), key=order):
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if event.get("event") != "runner_on_ok":
            continue
        data = event.get("event_data") or {}
        value = ((data.get("res") or {}).get("ansible_facts") or {}).get(fact)
        if isinstance(value, dict):
            out[data.get("host", "?")] = value
    return out


def metrics_of(result: dict[str, Any]) -> list[tuple[str, str, float]]:
    """The numbers of one host's result that the report follows over time."""
    out: list[tuple[str, str, float]] = []
    os_ = result.get("os") or {}
    for fs in os_.get("filesystems") or []:
        out += [("disk_used_pct", fs["mount"], fs["used_pct"]), ("disk_used_bytes", fs["mount"], fs["used_bytes"]),
                ("disk_size_bytes", fs["mount"], fs["size_bytes"]), ("inodes_pct", fs["mount"], fs["inodes_pct"])]
    if os_.get("memory"):
        out.append(("memory_used_pct", "memory", os_["memory"]["used_pct"]))
    if os_.get("load"):
        out.append(("load15_per_cpu", "load", os_["load"]["load15_per_cpu"]))
    for cert in os_.get("certificates") or []:
        if cert.get("days_left") is not None:
            out.append(("cert_days_left", cert["path"], cert["days_left"]))
    for check in os_.get("http") or []:
        out.append(("latency_ms", check["name"], check["latency_ms"]))
    for log in os_.get("logs") or []:
        if log.get("readable"):
            out.append(("error_rate", log["name"], log["error_rate"]))
    db = result.get("database") or {}
    for d in db.get("databases") or []:
        out.append(("db_size_bytes", d["datname"], d["size_bytes"]))
    if db.get("connections"):
        out.append(("db_connections_pct", "connections", db["connections"]["used_pct"]))
    return [(m, s, float(v)) for m, s, v in out if v is not None]


def score(findings: Iterable[dict[str, Any]]) -> int:
    """100 minus a weight per kind of problem (finding code) at its worst severity, never below 0: the
    same weakness on eight hosts is one problem to fix, not eight."""
    worst: dict[str, int] = {}
    for f in findings:
        weight = SEVERITY_WEIGHT.get(f.get("severity", "info"), 0)
        worst[f.get("code", "?")] = max(worst.get(f.get("code", "?"), 0), weight)
    return max(0, 100 - sum(worst.values()))


def record(store, *, kind: str, run_id: str | None, actor: str, results: dict[str, dict[str, Any]],
           unreachable: list[str], failed: list[str], started: str, ended: str | None = None,
           inspection_id: str | None = None) -> Outcome:
    """Store one inspection: the run, each host's result, its findings and metrics."""
    iid = inspection_id or f"insp-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    ended = ended or _now()
    findings: list[dict[str, Any]] = []
    status = "ok" if not unreachable and not failed else "partial"
    if not results:
        status = "failed"
    with store.transaction():
        store.execute(
            "INSERT INTO inspection_runs (id, kind, run_id, actor, status, hosts, findings, unreachable, started_at,"
            " ended_at) VALUES (:id, :kind, :run, :actor, :status, :hosts, 0, :unreachable, :started, :ended)",
            {"id": iid, "kind": kind, "run": run_id, "actor": actor, "status": status, "hosts": len(results),
             "unreachable": json.dumps(sorted(set(unreachable) | set(failed))), "started": started, "ended": ended})
        seq = 0
        for host, result in sorted(results.items()):
            at = str(result.get("at") or ended)
            store.execute(
                "INSERT INTO inspection_results (inspection_id, host, service, status, at, result)"
                " VALUES (:id, :host, :service, 'ok', :at, :result)",
                {"id": iid, "host": host, "service": result.get("service"), "at": at,
                 "result": json.dumps(result, ensure_ascii=False, sort_keys=True)})
            for f in result.get("findings") or []:
                seq += 1
                row = {"id": iid, "seq": seq, "host": host, "service": result.get("service"), "at": at,
                       "code": f["code"], "severity": f["severity"], "subject": str(f["subject"]),
                       "message": f["message"], "clause": f["clause"], "recommendation": f["recommendation"],
                       "value": _float(f.get("value")), "threshold": _float(f.get("threshold"))}
                store.execute(
                    "INSERT INTO inspection_findings (inspection_id, seq, host, service, code, severity, subject, message,"
                    " clause, recommendation, value, threshold, at) VALUES (:id, :seq, :host, :service, :code, :severity,"
                    " :subject, :message, :clause, :recommendation, :value, :threshold, :at)", row)
                findings.append({**f, "host": host, "service": result.get("service")})
            for metric, subject, value in metrics_of(result):
                store.execute(
                    "INSERT INTO inspection_metrics (inspection_id, host, metric, subject, value, at)"
                    " VALUES (:id, :host, :metric, :subject, :value, :at)",
                    {"id": iid, "host": host, "metric": metric, "subject": subject, "value": value, "at": at})
        for host in sorted(set(unreachable) | set(failed)):
            seq += 1
            code = "host_unreachable" if host in unreachable else "inspection_failed"
            f = {"code": code, "severity": "critical", "subject": host,
                 "message": f"{host} could not be inspected ({'unreachable' if host in unreachable else 'a task failed'})",
                 "clause": "5.1", "recommendation": "check that the host is up and reachable over SSH, then inspect again"}
            store.execute(
                "INSERT INTO inspection_findings (inspection_id, seq, host, service, code, severity, subject, message,"
                " clause, recommendation, value, threshold, at) VALUES (:id, :seq, :host, NULL, :code, :severity,"
                " :subject, :message, :clause, :recommendation, NULL, NULL, :at)",
                {"id": iid, "seq": seq, "host": host, "at": ended, **f})
            findings.append({**f, "host": host, "service": None})
        store.execute("UPDATE inspection_runs SET findings = :n WHERE id = :id", {"n": len(findings), "id": iid})
        counts = {s: sum(1 for f in findings if f["severity"] == s) for s in SEVERITY_ORDER}
        audit.record(store, "inspection.recorded", iid,
                     {"kind": kind, "run_id": run_id, "hosts": sorted(results), "status": status,
                      "unreachable": sorted(set(unreachable) | set(failed)), "findings": counts}, actor=actor)
    return Outcome(id=iid, kind=kind, run_id=run_id, status=status, hosts=sorted(results), findings=findings,
                   unreachable=sorted(unreachable), failed=sorted(failed))


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def run(*, light: bool = False, inventory: str | None = None, limit: str | None = None, actor: str = "hospops",
        store=None, progress=None) -> Outcome:
    """Run the inspection playbook (read-only, no change needed) and store what it found."""
    from hospops.runner import run_playbook
    from hospops.store import open_store

    store = store or open_store()
    started = _now()
    result = run_playbook("inspect.yml", change_id=None, inventory=Path(inventory) if inventory else None,
                          extravars={"inspection_light": light}, limit=limit, check=False, actor=actor,
                          store=store, progress=progress)
    results = facts_from_events(result.artifacts_dir, "inspection_result")
    for host, sec in facts_from_events(result.artifacts_dir, "security_baseline_result").items():
        if host in results:
            results[host]["security"] = sec.get("facts")
            results[host]["findings"] = list(results[host].get("findings") or []) + list(sec.get("findings") or [])
    failed = [h for h in result.failed_hosts if h not in results]
    return record(store, kind="light" if light else "full", run_id=result.run_id, actor=actor, results=results,
                  unreachable=result.unreachable_hosts, failed=failed, started=started)


def maintain(*, inventory: str | None = None, limit: str | None = None, check: bool = False, actor: str = "hospops",
             targets: list[str] | None = None, store=None, progress=None) -> dict[str, Any]:
    """File a pre-approved ``maintain`` change, run playbooks/maintain.yml under it, store what was done."""
    from hospops import changes
    from hospops import inventory as inventory_mod
    from hospops import policy as policy_mod
    from hospops.runner import run_playbook
    from hospops.store import open_store

    store = store or open_store()
    inv = inventory_mod.load(inventory)
    pol = policy_mod.load(inv)
    change = changes.request(store, pol, action="maintain", targets=targets or ["all"],
                             reason="scheduled maintenance (contract 5.2): indexes, tables, logs, temporary files",
                             requester=actor)
    result = run_playbook("maintain.yml", change_id=change.id, inventory=inv.path, limit=limit, check=check,
                          actor=actor, store=store, progress=progress)
    stored = record_maintenance(store, result.run_id, result.artifacts_dir, check)
    return {"change_id": change.id, "run_id": result.run_id, "status": result.status, "ok": result.ok,
            "failed_hosts": result.failed_hosts, "unreachable_hosts": result.unreachable_hosts, "results": stored}


def record_maintenance(store, run_id: str, artifacts_dir: Path | None, check: bool) -> list[dict[str, Any]]:
    stored = []
    for kind, fact in (("db", "db_maintenance_result"), ("os", "os_maintenance_result")):
        for host, res in facts_from_events(artifacts_dir, fact).items():
            freed = int(res.get("database_freed_bytes") or 0) + int(res.get("logs_freed_bytes") or 0) \
                + int(res.get("freed_bytes") or 0)
            row = {"run": run_id, "host": host, "kind": kind, "check": int(check), "changed": int(_truthy(res.get("changed"))),
                   "freed": freed, "at": str(res.get("at") or _now()), "result": json.dumps(res, ensure_ascii=False)}
            with store.transaction():
                store.execute(
                    "INSERT INTO maintenance_results (run_id, host, kind, check_mode, changed, freed_bytes, at, result)"
                    " VALUES (:run, :host, :kind, :check, :changed, :freed, :at, :result)", row)
                audit.record(store, "maintenance.recorded", run_id,
                             {"host": host, "kind": kind, "check_mode": check, "changed": bool(row["changed"]),
                              "freed_bytes": freed}, actor="hospops")
            stored.append({"host": host, "kind": kind, "changed": bool(row["changed"]), "freed_bytes": freed, "result": res})
    return stored


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


# -- reading back ------------------------------------------------------------------------------------------

def runs(store, since: str | None = None, until: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM inspection_runs WHERE 1 = 1"
    params: dict[str, Any] = {}
    if since:
        sql += " AND started_at >= :since"
        params["since"] = since
    if until:
        sql += " AND started_at < :until"
        params["until"] = until
    if kind:
        sql += " AND kind = :kind"
        params["kind"] = kind
    return store.query(sql + " ORDER BY started_at", params)


def latest(store, until: str | None = None, kind: str | None = None) -> dict[str, Any] | None:
    rows = runs(store, until=until, kind=kind)
    return rows[-1] if rows else None


def findings(store, inspection_id: str) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM inspection_findings WHERE inspection_id = :id ORDER BY seq", {"id": inspection_id})


def results(store, inspection_id: str) -> dict[str, dict[str, Any]]:
    return {r["host"]: json.loads(r["result"]) for r in store.query(
        "SELECT host, result FROM inspection_results WHERE inspection_id = :id", {"id": inspection_id})}


def series(store, metric: str, until: str | None = None) -> dict[tuple[str, str], list[tuple[str, float]]]:
    """History of one metric: (host, subject) -> [(at, value), ...] in time order."""
    sql = "SELECT host, subject, at, value FROM inspection_metrics WHERE metric = :m"
    params: dict[str, Any] = {"m": metric}
    if until:
        sql += " AND at < :until"
        params["until"] = until
    out: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for r in store.query(sql + " ORDER BY at", params):
        out.setdefault((r["host"], r["subject"]), []).append((r["at"], float(r["value"])))
    return out


def maintenance(store, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM maintenance_results WHERE check_mode = 0"
    params: dict[str, Any] = {}
    if since:
        sql += " AND at >= :since"
        params["since"] = since
    if until:
        sql += " AND at < :until"
        params["until"] = until
    return store.query(sql + " ORDER BY at", params)
