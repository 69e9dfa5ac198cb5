"""Wiring for the CLI and other features: store + inventory + policy + notifier in one place.

``HOSPOPS_NOW`` (ISO-8601 with offset) fixes the clock for demos and CLI tests; otherwise the
clock is the system's (UTC)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hospops.errors import UserError
from hospops.incidents import Incidents
from hospops.incidents.clock import Now, SlaPolicy, utcnow
from hospops.incidents.rules import rules_from_inventory


def clock_from_env() -> Now:
    fixed = os.environ.get("HOSPOPS_NOW")
    if not fixed:
        return utcnow
    try:
        at = datetime.fromisoformat(fixed)
    except ValueError as exc:
        raise UserError(f"HOSPOPS_NOW={fixed!r} is not an ISO-8601 time", "e.g. 2026-09-30T23:00:00+08:00") from exc
    if at.tzinfo is None:
        raise UserError(f"HOSPOPS_NOW={fixed!r} has no UTC offset", "e.g. 2026-09-30T23:00:00+08:00")
    return lambda: at


@dataclass
class Runtime:
    store: Any
    inventory: Any
    policy: SlaPolicy
    incidents: Incidents
    notify_config: Any
    now: Now

    def tickets(self):
        from hospops.tickets import Tickets

        return Tickets(self.store, self.policy, self.now, self.incidents.notifier)


def build(inventory: str | None = None, notify: bool = True, now: Now | None = None) -> Runtime:
    from hospops import inventory as inventory_mod
    from hospops.store import open_store

    inv = inventory_mod.load(inventory)
    now = now or clock_from_env()
    store = open_store()
    policy = SlaPolicy.from_inventory(inv)
    notify_config = None
    notifier = None
    if notify and inv.var("hospops_notify", None):
        from hospops.notify import NotifyConfig, notifier_for

        notify_config = NotifyConfig.from_inventory(inv)
        notifier = notifier_for(store, notify_config, now=now)
    incidents = Incidents(store, policy=policy, rules=rules_from_inventory(inv), now=now, notifier=notifier,
                          services=inv.var("hospops_services", None) or {})
    return Runtime(store, inv, policy, incidents, notify_config, now)
