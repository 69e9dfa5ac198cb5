"""The fault runbooks (contract 7.7.2): restart, redeploy and roll back a service object under an
approved change, then collect the fault's logs for the developers, redacted on the hosts.

Each runbook checks that the change covers the service object before anything runs, runs its
playbook through ``hospops.runner.run_playbook`` (the gate in the play verifies the approval
again), links the run to the change's incident, and tells the people what happened.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hospops import audit, changes
from hospops.errors import UserError
from hospops.inventory import Inventory
from hospops.paths import hospops_home
from hospops.runner import RunResult, run_playbook


@dataclass
class RunbookResult:
    run: RunResult
    service: str
    hosts: list[str]
    per_host: dict[str, Any]


def service_hosts(inv: Inventory, service: str) -> list[str]:
    services = inv.var("hospops_services", {})
    if service not in services:
        raise UserError(f"unknown service object {service!r}", f"use one of: {', '.join(sorted(services))}")
    return inv.groups.get(services[service]["group"], [])


def _change_hosts(store, inv: Inventory, change_id: str, action: str, service: str) -> list[str]:
    """The hosts the change covers, checked against the runbook's action and service object."""
    change = changes.get(store, change_id)
    if change.action != action:
        raise UserError(f"change {change_id} is a {change.action} change, not {action}",
                        f"request one: hospops change request {action} --target ... --reason ...")
    targets = sorted({h for t in change.request["targets"] for h in inv.hosts(t)})
    outside = sorted(set(targets) - set(service_hosts(inv, service)))
    if outside:
        raise UserError(f"change {change_id} targets {', '.join(outside)}, which do not run {service}",
                        f"request a change whose targets are {service}'s hosts: {', '.join(service_hosts(inv, service))}")
    return targets


def _stats_of(result: RunResult, key: str) -> dict[str, Any]:
    """Read the role's set_stats (e.g. time to healthy per node) from the run's artifacts."""
    if not result.artifacts_dir:
        return {}
    for event_file in sorted((result.artifacts_dir / "job_events").glob("*.json")):
        event = json.loads(event_file.read_text(encoding="utf-8"))
        if event.get("event") == "playbook_on_stats":
            return (event.get("event_data", {}).get("artifact_data") or {}).get(key, {})
    return {}


def failures(result: RunResult) -> list[tuple[str, str, str]]:
    """(host, task, message) of every task that failed in the run, read from its artifacts.

    Messages come from this project's roles and modules (health readings, rollback notes), which
    never carry patient data; they are cut short all the same."""
    out = []
    if not result.artifacts_dir:
        return out
    for event_file in sorted((result.artifacts_dir / "job_events").glob("*.json"),
                             key=lambda p: int(p.name.split("-", 1)[0])):
        event = json.loads(event_file.read_text(encoding="utf-8"))
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable") and not event["event_data"].get("ignore_errors"):
            data = event["event_data"]
            msg = str((data.get("res") or {}).get("msg", "")).strip()
            out.append((data.get("host", "?"), data.get("task", "?"), msg[:600]))
    return out


def _after(store, change_id: str, action: str, service: str, result: RunResult, actor: str) -> None:
    change = changes.get(store, change_id)
    incident = change.request.get("incident")
    if incident:
        try:
            from hospops.incidents import link

            link(store, incident, "run", result.run_id, actor=actor)
        except (ImportError, UserError):
            pass
    audit.record(store, f"runbook.{action}", change_id,
                 {"service": service, "run_id": result.run_id, "ok": result.ok, "incident": incident,
                  "failed_hosts": result.failed_hosts}, actor=actor)


def run(store, inv: Inventory, action: str, service: str, change_id: str, actor: str,
        extravars: dict[str, Any] | None = None) -> RunbookResult:
    playbook = {"restart": "restart.yml", "redeploy": "redeploy.yml", "rollback": "rollback.yml"}[action]
    hosts = _change_hosts(store, inv, change_id, action, service)
    result = run_playbook(playbook, change_id=change_id, inventory=inv.path, extravars=extravars or {},
                          actor=actor, store=store)
    _after(store, change_id, action, service, result, actor)
    return RunbookResult(result, service, hosts, _stats_of(result, "service_restart"))


_BUNDLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def collect_logs(store, inv: Inventory, *, bundle_id: str, since: datetime, until: datetime, hosts: list[str],
                 change_id: str, actor: str) -> tuple[RunResult, Path | None]:
    """Collect the window's logs of ``hosts`` into HOSPOPS_HOME/bundles/ID, hashed and audited."""
    if not _BUNDLE_ID.match(bundle_id):
        raise UserError(f"bundle id {bundle_id!r} has characters a file name should not", "use letters, digits, . _ -")
    result = run_playbook("collect_logs.yml", change_id=change_id, inventory=inv.path, limit=",".join(hosts),
                          extravars={"bundle_id": bundle_id, "bundle_since": since.isoformat(timespec="seconds"),
                                     "bundle_until": until.isoformat(timespec="seconds"), "log_bundle_dest": str(bundles_dir())},
                          actor=actor, store=store)
    bundle = bundles_dir() / bundle_id
    if not result.ok or not (bundle / "SHA256SUMS").exists():
        return result, None
    manifest = (bundle / "SHA256SUMS").read_text(encoding="utf-8")
    summary = json.loads((bundle / "summary.json").read_text(encoding="utf-8")) if (bundle / "summary.json").exists() else {}
    totals: dict[str, int] = {}
    for counts in (summary.get("redactions_by_host") or {}).values():
        for kind, n in (counts or {}).items():
            totals[kind] = totals.get(kind, 0) + int(n)
    audit.record(store, "logs.bundle", bundle_id,
                 {"run_id": result.run_id, "hosts": hosts, "since": since.isoformat(), "until": until.isoformat(),
                  "manifest_sha256": hashlib.sha256(manifest.encode()).hexdigest(), "redacted": totals}, actor=actor)
    return result, bundle


def bundles_dir() -> Path:
    path = hospops_home() / "bundles"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def incident_window(store, incident_id: str, before: timedelta, after: timedelta) -> tuple[str, datetime, datetime]:
    """The incident's service and a window from ``before`` its opening to ``after`` its resolution (or now)."""
    row = store.one("SELECT * FROM incidents WHERE id = :id", {"id": incident_id})
    if row is None:
        raise UserError(f"no incident {incident_id}", "list them with `hospops incident list`")
    opened = datetime.fromisoformat(row["opened_at"])
    ended = datetime.fromisoformat(row["resolved_at"]) if row.get("resolved_at") else datetime.now(timezone.utc)
    return row["service"], opened - before, ended + after
