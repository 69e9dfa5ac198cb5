"""A first draft of an upgrade plan (``hospops upgrade plan``): the facts filled in from the release
index and the running nodes (file, checksum, schema numbers, versions), and the prose (impact,
rollback steps) pre-written for the supplier to read, correct and complete."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from hospops import releases, upgrades
from hospops._collection import approval
from hospops.errors import UserError

LEAD_TIME = timedelta(minutes=10)
WINDOW = timedelta(hours=4)

HEADER = """\
# Upgrade plan (contract 5.5), drafted by `hospops upgrade plan`. The facts (file, sha256, schema,
# versions) come from the release index and the running nodes; the texts are a starting point:
# read and correct impact, window and rollback before filing it with
#   hospops change request upgrade THIS_FILE
"""


def scaffold(inv, policy, service: str, to_version: str, from_version: str | None = None, *,
             now: datetime | None = None,
             reader: Callable = upgrades.read_nodes) -> tuple[dict[str, Any], list[str]]:
    """(plan, notes for the person who edits it)."""
    hosts = inv.groups.get(upgrades.targets(inv, service)[0], [])
    directory = releases.releases_dir(inv)
    index = releases.load_index(directory)
    if index is None:
        raise UserError(f"no release index ({releases.INDEX_NAME}) in {directory or 'hospops_releases_dir (unset)'}",
                        "write the plan by hand (README, Upgrades), or build the index beside the tarballs")
    new = releases.find(index, service, to_version)
    if new is None:
        raise UserError(f"release {service} {to_version} is not in the release index",
                        f"choose one of: {', '.join(releases.versions(index, service)) or '(none)'}")
    old_version = from_version or upgrades.running_version(inv, service, reader)
    if old_version == to_version:
        raise UserError(f"{service} already runs {to_version}", "nothing to upgrade; choose another --to")
    old = releases.find(index, service, old_version)
    if old is None:
        raise UserError(f"release {service} {old_version} is not in the release index, so its schema is unknown",
                        f"give --from with one of: {', '.join(releases.versions(index, service))}")
    schema_from, schema_to = int(old["schema_required"]), int(new["schema_required"])
    payment = bool(((inv.var("hospops_services", None) or {}).get(service) or {}).get("payment_probe"))
    start, end, notes = _window(policy, now or datetime.now(timezone.utc))
    migrates = schema_to > schema_from
    plan = {
        "format": 1, "service": service, "from_version": old_version, "to_version": to_version,
        "artifacts": [{"file": new["file"], "sha256": new["sha256"]}],
        "migrations": {"forward": migrates, "schema_from": schema_from, "schema_to": schema_to,
                       "backward": "down" if migrates else "none"},
        "health_checks": {"path": "/health", "timeout_seconds": 40, "payment_probe": payment},
        "impact": _impact(service, to_version, hosts, payment),
        "window": {"start": start, "end": end},
        "rollback": _rollback(old_version, migrates, payment),
    }
    if new.get("fault"):
        notes.append(f"the index marks {service} {to_version} as {new['fault']!r}: {new.get('note') or ''}".strip())
    return plan, notes


def _window(policy, now: datetime) -> tuple[str, str, list[str]]:
    ap = approval()
    tz = ap.zone(policy.rules.get("timezone"))
    start = (now + LEAD_TIME).astimezone(tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
    notes = []
    try:
        hits = ap.blackouts_now(policy.rules, "upgrade", start, policy.is_outpatient_hours)
    except Exception:  # noqa: BLE001 - no calendar or an unreadable blackout: the gate will say so
        hits = []
    if hits:
        windows = ", ".join(f"{w.get('from')}-{w.get('to')}" for w in policy.rules.get("maintenance_windows") or [])
        notes.append(f"the drafted window starts in blackout {hits[0]!r}: move window.start"
                     + (f" (maintenance window {windows})" if windows else ""))
    return start.isoformat(timespec="seconds"), (start + WINDOW).isoformat(timespec="seconds"), notes


def _impact(service: str, version: str, hosts: list[str], payment: bool) -> dict[str, str]:
    if len(hosts) > 1:
        downtime = "none (rolling, one node at a time; the gateway sends users to the other nodes)"
    else:
        downtime = f"about a minute while {hosts[0] if hosts else 'the only node'} restarts on the new release"
    users = "patients paying online and at the windows; staff at the service windows" if payment else \
        "patients and staff using " + service
    return {"summary": f"{service} moves to release {version}; EDIT: what users will notice (new features, changes)",
            "downtime": downtime, "users": users}


def _rollback(old_version: str, migrates: bool, payment: bool) -> dict[str, Any]:
    triggers = ["health_check_failed", "migration_failed", "window_closing", "operator"]
    if payment:
        triggers.insert(1, "payment_probe_failed")
    steps = ["stop switching: nodes not yet upgraded stay on " + old_version,
             f"switch each upgraded node back to {old_version}, one at a time, out of the gateway's rotation",
             "verify each node's health" + (" and a test payment" if payment else "") + " before it rejoins"]
    if migrates:
        steps.append("run the new release's down migrations, back to the old schema")
    steps.append("report to the hospital what happened and when a new attempt is proposed")
    return {"triggers": triggers, "steps": steps, "restore_point": "auto",
            "data": "kept, except values written into what the new release added (its down migrations drop it)"
            if migrates else "kept: the schema does not change"}
