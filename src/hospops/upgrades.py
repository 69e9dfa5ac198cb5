"""Upgrades under an approved upgrade and rollback plan (contract 5.5): file the request from the
plan, rehearse it (check and diff, attached for the approvers), run it, and read where it ended.

The plan (``hospops.upgrade_plan``) travels inside the signed change request; ``playbooks/upgrade.yml``
(role ``fuhosp.ops.app_upgrade``) gets it, normalised, as ``upgrade_plan`` and reports back through
``set_stats`` under ``app_upgrade``::

    {"service", "from_version", "to_version", "outcome": upgraded | already_current | rolled_back |
     stopped_window | failed | rehearsed, "version", "consistent", "nodes": {host: {"before", "after",
     "switched", "seconds"}}, "migration", "restore_point", "backup", "failure", "rollback_seconds",
     "check_mode"}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from hospops import audit, changes, rehearsal, runner, upgrade_plan
from hospops._collection import approval
from hospops.errors import UserError
from hospops.inventory import Inventory

PLAYBOOK = "upgrade.yml"
STATS_KEY = "app_upgrade"
OUTCOMES = ("upgraded", "already_current", "rolled_back", "stopped_window", "failed", "rehearsed")
GATEWAY_GROUP = "gateways"


# -- the request -------------------------------------------------------------------------------
def targets(inv: Inventory, service: str) -> list[str]:
    """The service's group, and the gateways: the upgrade takes nodes in and out of the gateway's
    rotation, so the approvers must see the gateway is touched."""
    services = inv.var("hospops_services", None) or {}
    if service not in services:
        raise UserError(f"unknown service object {service!r}", f"use one of: {', '.join(sorted(services))}")
    out = [str(services[service]["group"])]
    if GATEWAY_GROUP in inv.groups:
        out.append(GATEWAY_GROUP)
    return out


class PlanRefused(UserError):
    """The plan has problems; nothing was filed. ``problems`` holds every one."""

    def __init__(self, path, found: list[upgrade_plan.Problem]) -> None:
        lines = "\n".join(f"  {p.field}: {p.what}\n      fix: {p.fix}" for p in found)
        super().__init__(f"upgrade plan {path} refused, nothing was filed ({len(found)} problem"
                         f"{'s' if len(found) != 1 else ''}):\n{lines}",
                         "correct the plan and file it again")
        self.problems = found


def request(store, policy, inv: Inventory, plan_path, *, requester: str, reason: str | None = None,
            window_start: str | None = None, window_end: str | None = None, incident: str | None = None,
            incident_level: str | None = None) -> changes.Change:
    """File an upgrade change from a plan file; the plan is checked (against the inventory, the
    tarball and the release index) before anything is stored."""
    plan = upgrade_plan.load(plan_path)
    if window_start or window_end:
        plan["window"] = _window_from_flags(plan.get("window"), window_start, window_end, policy)
    found = upgrade_plan.problems(plan, inv)
    if found:
        raise PlanRefused(plan_path, found)
    plan = upgrade_plan.normalise(plan, inventory=inv)
    return changes.request(
        store, policy, action="upgrade", targets=targets(inv, plan["service"]), reason=reason or plan["reason"],
        requester=requester, window_start=plan["window"]["start"], window_end=plan["window"]["end"],
        incident=incident, incident_level=incident_level, plan=plan)


def _window_from_flags(window: Any, start: str | None, end: str | None, policy) -> dict[str, Any]:
    """The plan's window with --window-start/--window-end over it; a time without an offset is read
    in the policy's time zone, as for every change request, and written with its offset."""
    tz = approval().zone(policy.rules.get("timezone"))
    out = dict(window) if isinstance(window, dict) else {}
    for key, value in (("start", start), ("end", end)):
        if value:
            try:
                dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise UserError(f"--window-{key} {value!r} is not a date and time",
                                "use ISO form, e.g. 2026-11-26T01:00+08:00") from exc
            out[key] = (dt if dt.tzinfo else dt.replace(tzinfo=tz)).isoformat(timespec="seconds")
    return out


def upgrade_change(store, change_id: str) -> tuple[changes.Change, dict[str, Any]]:
    change = changes.get(store, change_id)
    if change.action != "upgrade":
        raise UserError(f"change {change_id} is a {change.action} change, not an upgrade",
                        "file one: hospops change request upgrade PLAN.yml")
    plan = change.request.get("plan")
    if not isinstance(plan, dict) or upgrade_plan.request_problems(plan):
        raise UserError(f"upgrade {change_id} carries no valid upgrade plan",
                        "file a new request: hospops change request upgrade PLAN.yml")
    return change, plan


def _plan_for_run(store, inv: Inventory, change_id: str) -> tuple[changes.Change, dict[str, Any]]:
    """The signed plan, checked again against what is on disk now (a tarball replaced after the
    approval fails its checksum here), normalised with the change's restore point name."""
    change, plan = upgrade_change(store, change_id)
    found = upgrade_plan.problems(plan, inv)
    if found:
        raise UserError(f"upgrade {change_id}'s plan no longer holds: " + "; ".join(map(str, found)),
                        "restore what changed (e.g. the release tarball), or file a new request")
    return change, upgrade_plan.normalise(plan, change_id=change_id, inventory=inv)


def _extravars(inv: Inventory, plan: dict[str, Any]) -> dict[str, Any]:
    """The plan, and the service's group: a play's hosts pattern cannot read the inventory's vars."""
    return {"upgrade_plan": plan, "upgrade_hosts": inv.var("hospops_services")[plan["service"]]["group"]}


# -- rehearsal ---------------------------------------------------------------------------------
def rehearse(store, inv: Inventory, change_id: str, actor: str) -> dict[str, Any]:
    """Run the upgrade in check and diff mode (the gate's rehearsal mode: before the approval),
    attach the summary to the change and return it."""
    change, plan = _plan_for_run(store, inv, change_id)
    result = runner.run_playbook(PLAYBOOK, change_id=change_id, inventory=inv.path, extravars=_extravars(inv, plan),
                                 check=True, diff=True, rehearsal=True, actor=actor, store=store)
    summary = rehearsal.summarise(result, stats_key=STATS_KEY, playbook=PLAYBOOK)
    summary["request_digest"] = change.digest
    changes.attach(store, change_id, "rehearsal", summary, actor)
    return summary


# -- the run and where it ended ----------------------------------------------------------------
@dataclass
class Outcome:
    outcome: str
    service: str
    from_version: str
    to_version: str
    version: str | None
    consistent: bool
    nodes: dict[str, dict[str, Any]]
    failure: str | None
    rollback_seconds: float | None
    window_end: str
    run_id: str
    reported: bool                      # False: the role never published its stats (the run died early)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def on_target(self) -> bool:
        """The service ends on to_version everywhere (the command's exit 0)."""
        return self.outcome in ("upgraded", "already_current") and self.consistent \
            and self.version == self.to_version

    def node_state(self) -> str:
        if self.consistent and self.version:
            return f"all nodes on {self.version}"
        known = {h: n.get("after") for h, n in self.nodes.items()}
        if known:
            return "MIXED: " + ", ".join(f"{h} {v or '?'}" for h, v in sorted(known.items()))
        return "node versions unknown (see `hospops upgrade status " + self.service + "`)"

    def headline(self) -> str:
        s, hosts = self.service, ", ".join(sorted(self.nodes)) or "its nodes"
        if self.outcome == "upgraded":
            return f"{s} upgraded {self.from_version} -> {self.to_version} on {hosts}"
        if self.outcome == "already_current":
            return f"{s} already runs {self.to_version} on {hosts}: nothing to do"
        if self.outcome == "rolled_back":
            took = f"; rollback took {self.rollback_seconds:.0f} s" if self.rollback_seconds is not None else ""
            return f"{s} ROLLED BACK to {self.version or self.from_version}: {self.failure or 'a check failed'}{took}"
        if self.outcome == "stopped_window":
            return f"{s} stopped at a safe point: the window closes at {self.window_end}; {self.node_state()}"
        if self.outcome == "rehearsed":
            return f"{s} was only rehearsed (check mode): nothing changed"
        return f"{s} upgrade FAILED: {self.failure or 'see the failures below'}; {self.node_state()}"

    def node_lines(self) -> list[str]:
        out = []
        for host, n in sorted(self.nodes.items()):
            if n.get("note"):  # the role's own words: "switched to 2.0.0", "failed its check ..., returned to 1.0.0"
                seconds = _number(n.get("seconds")) if _true(n.get("switched")) else None
                secs = f" in {seconds:.1f} s" if seconds else ""
                out.append(f"  {host:<10} {n.get('after') or '?':<12} {n['note']}{secs}")
            elif _true(n.get("switched")):
                seconds = _number(n.get("seconds"))
                secs = f" in {seconds:.1f} s" if seconds is not None else ""
                out.append(f"  {host:<10} {n.get('before') or '?'} -> {n.get('after') or '?'}  switched{secs}")
            else:
                out.append(f"  {host:<10} {n.get('after') or n.get('before') or '?'}  not switched")
        return out


def outcome_of(stats: dict[str, Any] | None, plan: dict[str, Any], result,
               failures: list[tuple[str, str, str]]) -> Outcome:
    """Read the role's stats; without them (the run died before the role reported) the outcome is
    ``failed`` with the run's first failure as the reason."""
    stats = stats if isinstance(stats, dict) else {}
    outcome = stats.get("outcome")
    failure = stats.get("failure")
    if outcome not in OUTCOMES:
        if stats:
            failure = f"the upgrade role reported an unknown outcome {outcome!r}"
        elif failures:
            host, task, msg = failures[0]
            failure = f"{host}: {task}: {msg}" if msg else f"{host}: {task} failed"
        else:
            failure = f"the run ended ({result.status}) before the upgrade role reported"
        outcome = "failed"
    nodes = stats.get("nodes") if isinstance(stats.get("nodes"), dict) else {}
    return Outcome(
        outcome=outcome, service=str(stats.get("service") or plan["service"]),
        from_version=str(stats.get("from_version") or plan["from_version"]),
        to_version=str(stats.get("to_version") or plan["to_version"]),
        version=stats.get("version") or None, consistent=_true(stats.get("consistent")), nodes=nodes,
        failure=str(failure)[:600] if failure else None, rollback_seconds=_number(stats.get("rollback_seconds")),
        window_end=str(plan["window"]["end"]), run_id=result.run_id, reported=bool(stats),
        failures=failures, stats=stats)


def _true(value: Any) -> bool:
    """A flag from set_stats: a bool, or its text when a template made one of it."""
    return value is True or str(value).strip().lower() in ("true", "yes", "1")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run(store, inv: Inventory, change_id: str, actor: str) -> Outcome:
    """Run the approved upgrade (or resume an interrupted one: the role starts from where the
    nodes are), record and announce where it ended."""
    from hospops import runbooks, upgrade_notice

    change, plan = _plan_for_run(store, inv, change_id)
    result = runner.run_playbook(PLAYBOOK, change_id=change_id, inventory=inv.path,
                                 extravars=_extravars(inv, plan), actor=actor, store=store)
    out = outcome_of(rehearsal.set_stats(result.artifacts_dir, STATS_KEY), plan, result, runbooks.failures(result))
    incident = change.request.get("incident")
    if incident:
        try:
            from hospops.incidents import link

            link(store, incident, "run", result.run_id, actor=actor)
        except (ImportError, UserError):
            pass  # the incident feature may be absent, or the incident gone: the run stands on its own
    audit.record(store, f"upgrade.{out.outcome}", change_id,
                 {"service": out.service, "from_version": out.from_version, "to_version": out.to_version,
                  "version": out.version, "consistent": out.consistent, "run_id": result.run_id, "ok": result.ok,
                  "failure": out.failure, "rollback_seconds": out.rollback_seconds, "incident": incident,
                  "stats_reported": out.reported}, actor=actor)
    notice = upgrade_notice.notice(out, plan, inv)
    if notice:
        event, context = notice
        changes.notify_everyone(store, event, change_id, context, actor=actor, inventory=inv)
    return out


# -- where a service stands --------------------------------------------------------------------
@dataclass
class NodeReading:
    host: str
    version: str
    ok: bool
    error: str = ""


def read_nodes(inv: Inventory, service: str) -> list[NodeReading]:
    """Each node's health and version, read directly by the same checks `hospops watch` runs."""
    from concurrent.futures import ThreadPoolExecutor

    from hospops.probes import ProbePlan, check_health

    targets(inv, service)  # an unknown service is named here
    plan = ProbePlan.from_inventory(inv)
    direct = [t for t in plan.health if t.service == service and t.path == "direct"]
    if not direct:
        raise UserError(f"no node of {service} can be probed directly",
                        "set hospops_app_url on its hosts and hospops_probe.direct: true")
    timeout = float(plan.settings["timeout_seconds"])
    with ThreadPoolExecutor(max_workers=min(8, len(direct))) as pool:
        results = list(pool.map(lambda t: check_health(t, timeout), direct))
    return [NodeReading(r.host, r.version, r.ok, r.error) for r in sorted(results, key=lambda r: r.host)]


def verdict(readings: list[NodeReading]) -> tuple[str, bool]:
    """"consistent at X", or what is wrong: "MIXED: ih1 2.0.0, ih2 1.0.0", "UNHEALTHY: ..."; and
    whether all is well."""
    if not readings:
        return "no nodes", False
    known = {r.version for r in readings if r.version}
    sick = [r for r in readings if not r.ok]
    parts = []
    if len(known) > 1:
        parts.append("MIXED: " + ", ".join(f"{r.host} {r.version or '?'}" for r in readings))
    if sick:
        parts.append("UNHEALTHY: " + ", ".join(f"{r.host} ({r.error or 'down'})" for r in sick))
        if len(known) == 1:
            parts.append(f"the others at {next(iter(known))}")
    if parts:
        return "; ".join(parts), False
    if not known:
        return "healthy, but no node reports its version", False
    return f"consistent at {next(iter(known))}", True


def running_version(inv: Inventory, service: str,
                    reader: Callable[[Inventory, str], list[NodeReading]] = read_nodes) -> str:
    text, ok = verdict(reader(inv, service))
    if not ok:
        raise UserError(f"cannot tell which version {service} runs now ({text})", "give it: --from VERSION")
    return text.removeprefix("consistent at ")
