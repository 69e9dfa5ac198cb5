"""Approvers and change policy as the inventory declares them (``hospops_approvers``,
``hospops_change_policy``), checked once so a typo fails before anyone signs anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from hospops._collection import approval
from hospops.errors import UserError

_FIX = "correct inventories/<name>/group_vars/all/approvers.yml"


@dataclass
class Policy:
    approvers: list[dict[str, Any]]
    rules: dict[str, Any]
    groups: dict[str, list[str]]
    is_outpatient_hours: Callable[[datetime], bool] | None
    inventory: Any = None

    def approver(self, name: str) -> dict[str, Any]:
        for a in self.approvers:
            if a["name"] == name:
                return a
        known = ", ".join(a["name"] for a in self.approvers) or "none"
        raise UserError(f"{name!r} is not a declared approver (declared: {known})", _FIX)


def check_approvers(raw: Any) -> list[dict[str, Any]]:
    ap = approval()
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise UserError("hospops_approvers must be a list", _FIX)
    out, seen = [], set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise UserError(f"hospops_approvers[{i}] has no name", _FIX)
        name = str(entry["name"])
        if name in seen:
            raise UserError(f"approver {name} is declared twice", _FIX)
        seen.add(name)
        org = entry.get("organisation")
        if org not in ap.ORGANISATIONS:
            raise UserError(f"approver {name}: organisation {org!r} is not one of {', '.join(ap.ORGANISATIONS)}", _FIX)
        actions = entry.get("actions")
        if not isinstance(actions, list) or not actions:
            raise UserError(f"approver {name}: actions must be a non-empty list (or ['*'])", _FIX)
        try:
            ap.load_public_key(str(entry.get("public_key") or ""))
        except ValueError as exc:
            raise UserError(f"approver {name}: public_key is not an Ed25519 key ({exc})",
                            f"paste the line printed by `hospops keys new {name}`") from exc
        out.append({"name": name, "organisation": org, "actions": [str(a) for a in actions],
                    "public_key": str(entry["public_key"]).strip()})
    return out


def outpatient_checker(inv) -> Callable[[datetime], bool] | None:
    """``ClinicCalendar.is_outpatient_hours`` from the inventory, or None if there is no calendar."""
    try:
        from hospops.clinic_calendar import ClinicCalendar
    except ImportError:
        return None
    built: list[Any] = []

    def is_outpatient_hours(dt: datetime) -> bool:  # built on first use: most policies never ask
        if not built:
            built.append(ClinicCalendar.from_config(inv.var("hospops_clinic_calendar")))
        return bool(built[0].is_outpatient_hours(dt))

    return is_outpatient_hours


def _read(inv, name: str) -> Any:
    try:
        return inv.var(name)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ansible's templating errors are many; all mean "cannot read"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read {name} from inventory {inv.path}: {first}",
                        "in the lab run `hospops lab up` (it makes the approvers' keys); elsewhere check the "
                        "public_key entries (`hospops keys new NAME` prints one)") from exc


def load(inv) -> Policy:
    ap = approval()
    rules = ap.normalise_policy(_read(inv, "hospops_change_policy") or {})
    try:
        ap.zone(rules.get("timezone"))
    except Exception as exc:  # noqa: BLE001 - any bad zone name
        raise UserError(f"hospops_change_policy.timezone {rules.get('timezone')!r} is unknown ({exc})",
                        "use an IANA name such as Asia/Shanghai or an offset like +08:00") from exc
    return Policy(approvers=check_approvers(_read(inv, "hospops_approvers")), rules=rules,
                  groups=inv.groups, is_outpatient_hours=outpatient_checker(inv), inventory=inv)
