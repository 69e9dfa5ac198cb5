"""The upgrade plan (contract 5.5): the supplier's upgrade and rollback plan for one service object,
in one YAML (or JSON) file that approvers read and sign with the change request.

    format: 1
    service: ih
    from_version: 1.0.0
    to_version: 2.0.0
    reason: optional text
    artifacts: [{file: ih/hospapp-ih-2.0.0.tar.gz, sha256: <64 hex>}]
    migrations: {forward: true, schema_from: 1, schema_to: 2, backward: down | restore_point | none}
    health_checks: {path: /health, timeout_seconds: 40, payment_probe: true}
    impact: {summary: ..., downtime: ..., users: optional}
    window: {start: 2026-11-26T01:00:00+08:00, end: 2026-11-26T05:00:00+08:00}
    rollback: {triggers: [...], steps: [...], restore_point: auto, data: optional}

``problems(plan, inventory)`` lists every mistake with the dotted field it is in, what is wrong and
how to fix it; ``normalise(plan, change_id)`` fills in the defaults. The normalised plan is what the
change request stores (so approvers sign it) and what ``playbooks/upgrade.yml`` gets as
``upgrade_plan``.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from hospops import releases
from hospops.errors import UserError

FORMAT = 1
TRIGGERS = ("health_check_failed", "migration_failed", "payment_probe_failed", "window_closing", "operator")
BACKWARD = ("down", "restore_point", "none")
AUTO_RESTORE_POINT = "auto"

_TOP = ("format", "service", "from_version", "to_version", "reason", "artifacts", "migrations", "health_checks",
        "impact", "window", "rollback")
_ARTIFACT = ("file", "sha256")
_MIGRATIONS = ("forward", "schema_from", "schema_to", "backward")
_HEALTH = ("path", "timeout_seconds", "payment_probe")
_IMPACT = ("summary", "downtime", "users")
_WINDOW = ("start", "end")
_ROLLBACK = ("triggers", "steps", "restore_point", "data")

_SERVICE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")  # it becomes part of paths on the hosts
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RESTORE_POINT = re.compile(r"[A-Za-z0-9_]{1,60}")
_SCAFFOLD = "`hospops upgrade plan SERVICE --to VERSION` writes a complete plan to start from"


@dataclass(frozen=True)
class Problem:
    field: str   # dotted path: rollback.steps, artifacts[0].sha256
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.what} (fix: {self.fix})"


# -- reading -----------------------------------------------------------------------------------
class _PlanLoader(yaml.SafeLoader):
    """Dates stay text (the window keeps the offset it was written with, and the plan stays JSON for
    the signed digest); a key written twice is an error, not a silent override."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key_node.value!r} appears twice", key_node.start_mark)
                    seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_PlanLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load(path: str | Path) -> dict[str, Any]:
    """The plan in ``path`` as a mapping (not yet checked: see ``problems``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"cannot read upgrade plan {path}: {why}", f"give a readable plan file; {_SCAFFOLD}") from exc
    try:
        plan = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_PlanLoader)  # noqa: S506
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(f"upgrade plan {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                        f"{' '.join(str(exc).split())}", "correct the syntax at the line it names") from exc
    if not isinstance(plan, dict):
        raise UserError(f"upgrade plan {path} is not a mapping (it holds {type(plan).__name__})",
                        f"a plan is a mapping starting with `format: 1`; {_SCAFFOLD}")
    return plan


def dump(plan: dict[str, Any]) -> str:
    return yaml.safe_dump(plan, sort_keys=False, allow_unicode=True, width=100)


# -- checking ----------------------------------------------------------------------------------
class _Checks:
    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, field: str, what: str, fix: str) -> None:
        self.found.append(Problem(field, what, fix))

    def bad(self, prefix: str) -> bool:
        """Whether a problem was already found in this field or under it."""
        return any(p.field == prefix or p.field.startswith((prefix + ".", prefix + "[")) for p in self.found)

    def section(self, value: Any, field: str, known: tuple[str, ...], required: tuple[str, ...]) -> dict | None:
        if not isinstance(value, dict):
            self.add(field, f"must be a mapping with {', '.join(required or known)}, not {_kind(value)}",
                     f"write it as `{field.rsplit('.', 1)[-1]}:` with the keys below it, indented")
            return None
        for key in value:
            if key not in known:
                self.add(_join(field, str(key)), "is not a field of an upgrade plan" + _did_you_mean(str(key), known),
                         _suggest_fix(str(key), known))
        for key in required:
            if key not in value:
                self.add(_join(field, key), "is missing", f"add {key}: (see the format in `hospops upgrade plan`)")
        return value

    def text(self, section: dict, key: str, field: str, *, pattern: re.Pattern | None = None,
             example: str = "", optional: bool = False) -> str | None:
        if key not in section or (optional and section[key] is None):
            return None
        value, where = section[key], _join(field, key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and pattern is not None:
            self.add(where, f"{value!r} was read as a number, not text", f'quote it: {key}: "{example or value}"')
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(where, f"must be non-empty text, not {_kind(value)}", f"write it as {key}: {example or 'TEXT'}")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.add(where, f"{value!r} is not a valid {key.replace('_', ' ')}", f"write it like {key}: {example}")
            return None
        return value

    def integer(self, section: dict, key: str, field: str, low: int, high: int | None = None) -> int | None:
        if key not in section:
            return None
        value, where = section[key], _join(field, key)
        if not _is_int(value) or value < low or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f">= {low}"
            self.add(where, f"must be a whole number {span}, not {value!r}", f"write e.g. {key}: {max(low, 1)}")
            return None
        return value

    def boolean(self, section: dict, key: str, field: str) -> bool | None:
        if key not in section:
            return None
        value = section[key]
        if not isinstance(value, bool):
            self.add(_join(field, key), f"must be true or false, not {value!r}", f"write {key}: true or {key}: false")
            return None
        return value

    def when(self, section: dict, key: str, field: str) -> datetime | None:
        if key not in section:
            return None
        value, where = section[key], _join(field, key)
        if isinstance(value, datetime):
            dt = value
        else:
            try:
                dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                self.add(where, f"{value!r} is not an ISO 8601 date and time",
                         f"write e.g. {key}: 2026-11-26T01:00:00+08:00")
                return None
        if dt.tzinfo is None:
            self.add(where, f"{value} has no UTC offset, so approvers and hosts could read it differently",
                     f"add the offset, e.g. {dt.isoformat(timespec='minutes')}+08:00")
            return None
        return dt


def problems(plan: Any, inventory=None) -> list[Problem]:
    """Every mistake in ``plan``; with an inventory, also the service, the artifact on disk (its
    SHA-256) and the release index (schema). An empty list means the plan may be filed."""
    c = _Checks()
    if not isinstance(plan, dict):
        return [Problem("(plan)", f"must be a mapping, not {_kind(plan)}", _SCAFFOLD)]
    c.section(plan, "", _TOP, required=tuple(k for k in _TOP if k not in ("reason", "rollback")))
    if "format" in plan and not (_is_int(plan["format"]) and plan["format"] == FORMAT):
        c.add("format", f"is {plan['format']!r}; this hospops reads format {FORMAT}", f"write format: {FORMAT}")
    c.text(plan, "service", "", pattern=_SERVICE, example="ih")
    old = c.text(plan, "from_version", "", pattern=_VERSION, example="1.0.0")
    new = c.text(plan, "to_version", "", pattern=_VERSION, example="2.0.0")
    if old and new and old == new:
        c.add("to_version", f"is the same as from_version ({old}): there is nothing to upgrade",
              "set to_version to the new release")
    c.text(plan, "reason", "", optional=True)
    _artifacts(c, plan)
    migrations = _migrations(c, plan)
    health = _health(c, plan)
    _impact(c, plan)
    _window(c, plan)
    rollback = _rollback(c, plan)
    _together(c, plan, migrations, health, rollback, inventory)
    if inventory is not None:
        _against_inventory(c, plan, inventory)
    return c.found


def _artifacts(c: _Checks, plan: dict) -> None:
    if "artifacts" not in plan:
        return
    items = plan["artifacts"]
    if not isinstance(items, list) or len(items) != 1:
        got = f"{len(items)} entries" if isinstance(items, list) else _kind(items)
        c.add("artifacts", f"must list exactly one release tarball, not {got}",
              "write artifacts: [{file: ih/hospapp-ih-2.0.0.tar.gz, sha256: ...}] (one release per upgrade)")
        return
    field = "artifacts[0]"
    item = c.section(items[0], field, _ARTIFACT, required=_ARTIFACT)
    if item is None:
        return
    file = c.text(item, "file", field, example="ih/hospapp-ih-2.0.0.tar.gz")
    if file and ".." in PurePosixPath(file).parts:
        c.add(f"{field}.file", f"{file!r} climbs out of the releases directory with '..'",
              "give a path inside hospops_releases_dir, or an absolute path")
    sha = item.get("sha256")
    if "sha256" in item and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        c.add(f"{field}.sha256", f"must be 64 lowercase hex digits, not {str(sha)[:80]!r}",
              "write the output of `sha256sum FILE` (first word), quoted")


def _migrations(c: _Checks, plan: dict) -> dict | None:
    if "migrations" not in plan:
        return None
    m = c.section(plan["migrations"], "migrations", _MIGRATIONS, required=_MIGRATIONS)
    if m is None:
        return None
    c.boolean(m, "forward", "migrations")
    low = c.integer(m, "schema_from", "migrations", 0)
    high = c.integer(m, "schema_to", "migrations", 0)
    if low is not None and high is not None and high < low:
        c.add("migrations.schema_to", f"is {high}, below schema_from {low}: an upgrade does not go back",
              "set schema_to to the schema the new release requires")
    if "backward" in m and m["backward"] not in BACKWARD:
        c.add("migrations.backward", f"{m['backward']!r} is not one of {', '.join(BACKWARD)}"
              + _did_you_mean(str(m["backward"]), BACKWARD),
              "down (the new release's down migrations), restore_point (PITR, loses data written meanwhile) "
              "or none (old code runs on the new schema)")
    return m


def _health(c: _Checks, plan: dict) -> dict | None:
    if "health_checks" not in plan:
        return None
    h = c.section(plan["health_checks"], "health_checks", _HEALTH, required=("path", "timeout_seconds"))
    if h is None:
        return None
    path = c.text(h, "path", "health_checks", example="/health")
    if path and not path.startswith("/"):
        c.add("health_checks.path", f"{path!r} does not start with /", f"write path: /{path}")
    c.integer(h, "timeout_seconds", "health_checks", 5, 600)
    c.boolean(h, "payment_probe", "health_checks")
    return h


def _impact(c: _Checks, plan: dict) -> None:
    if "impact" not in plan:
        return
    i = c.section(plan["impact"], "impact", _IMPACT, required=("summary", "downtime"))
    if i is not None:
        c.text(i, "summary", "impact", example="what patients and staff notice")
        c.text(i, "downtime", "impact", example='"none (rolling, one node at a time)"')
        c.text(i, "users", "impact", optional=True)


def _window(c: _Checks, plan: dict) -> None:
    if "window" not in plan:
        return
    w = c.section(plan["window"], "window", _WINDOW, required=_WINDOW)
    if w is None:
        return
    start, end = c.when(w, "start", "window"), c.when(w, "end", "window")
    if start and end and end <= start:
        c.add("window.end", f"{w['end']} is not after the start {w['start']}", "give an end after the start")


def _rollback(c: _Checks, plan: dict) -> dict | None:
    if "rollback" not in plan:
        c.add("rollback", "the plan has no rollback plan (rollback: triggers, steps, restore_point)",
              f"add a rollback section: when to roll back, the steps in order, the restore point; {_SCAFFOLD}")
        return None
    r = c.section(plan["rollback"], "rollback", _ROLLBACK, required=("triggers", "steps", "restore_point"))
    if r is None:
        return None
    triggers = r.get("triggers")
    if "triggers" in r:
        if not isinstance(triggers, list) or not triggers:
            c.add("rollback.triggers", "must be a non-empty list", f"list some of: {', '.join(TRIGGERS)}")
        else:
            for n, t in enumerate(triggers):
                if t not in TRIGGERS:
                    c.add(f"rollback.triggers[{n}]", f"{t!r} is not a trigger" + _did_you_mean(str(t), TRIGGERS),
                          f"use one of: {', '.join(TRIGGERS)}")
    if "steps" in r:
        steps = r["steps"]
        if not isinstance(steps, list) or not steps:
            c.add("rollback.steps", "must be a non-empty list of steps, in the order they happen",
                  'write steps: ["switch nodes back to FROM_VERSION one at a time", "..."]')
        else:
            for n, step in enumerate(steps):
                if not isinstance(step, str) or not step.strip():
                    c.add(f"rollback.steps[{n}]", f"must be non-empty text, not {_kind(step)}", "say what happens")
    if "restore_point" in r:
        point = r["restore_point"]
        if not (isinstance(point, str) and (point == AUTO_RESTORE_POINT or _RESTORE_POINT.fullmatch(point))):
            c.add("rollback.restore_point", f"{point!r} is not auto or a name of 1-60 letters, digits or _",
                  "write restore_point: auto (named upgrade_<change id>)")
    c.text(r, "data", "rollback", optional=True)
    return r


def _together(c: _Checks, plan: dict, migrations: dict | None, health: dict | None, rollback: dict | None,
              inventory) -> None:
    """Fields that are each fine but contradict each other."""
    if migrations and not c.bad("migrations"):
        if migrations["forward"] is False and migrations["schema_to"] > migrations["schema_from"]:
            c.add("migrations.forward", f"is false, but the schema goes from {migrations['schema_from']} to "
                  f"{migrations['schema_to']}", "set forward: true, or schema_to equal to schema_from")
        if migrations["backward"] == "restore_point" and rollback is not None and not c.bad("rollback.data") \
                and not str(rollback.get("data") or "").strip():
            c.add("rollback.data", "is missing: rolling back to a restore point loses what was written since",
                  "say what happens to payments and records made during the upgrade (rollback.data)")
    if rollback is not None and not c.bad("rollback.triggers") and "payment_probe_failed" in rollback["triggers"] \
            and health is not None and not c.bad("health_checks") and isinstance(plan.get("service"), str):
        if not health.get("payment_probe", _payment_probe_default(plan["service"], inventory)):
            c.add("rollback.triggers", "names payment_probe_failed, but no payment probe runs",
                  "set health_checks.payment_probe: true, or drop the trigger")


def _against_inventory(c: _Checks, plan: dict, inv) -> None:
    services = inv.var("hospops_services", None) or {}
    service = plan.get("service")
    if isinstance(service, str) and not c.bad("service") and service not in services:
        c.add("service", f"{service!r} is not a service object of inventory {inv.path}"
              + _did_you_mean(service, tuple(services)), f"use one of: {', '.join(sorted(services)) or '(none)'}")
    directory = releases.releases_dir(inv)
    if not c.bad("artifacts"):
        _artifact_on_disk(c, plan["artifacts"][0], directory)
    try:
        index = releases.load_index(directory)
    except UserError as exc:
        c.add("artifacts", exc.what, exc.fix or "")
        return
    if index is None or c.bad("service") or c.bad("to_version"):
        return
    entry = releases.find(index, service, plan["to_version"])
    if entry is None:
        c.add("to_version", f"release {service} {plan['to_version']} is not in the release index "
              f"{directory / releases.INDEX_NAME}",
              f"use a listed version ({', '.join(releases.versions(index, service)) or 'none for ' + service}) "
              "or add the release to the index")
        return
    _schema_against_release(c, plan.get("migrations"), entry, f"{service} {plan['to_version']}")


def _schema_against_release(c: _Checks, migrations: Any, entry: dict, release: str) -> None:
    """Forward migrations take the schema exactly to what the release requires; without them the
    schema stays as it is (e.g. back to v1 on the compatible v2 schema) and must be at least that."""
    if not isinstance(migrations, dict) or c.bad("migrations"):
        return
    required, schema_to = entry.get("schema_required"), migrations["schema_to"]
    if not _is_int(required):
        return
    if migrations["forward"] and schema_to != required:
        c.add("migrations.schema_to", f"is {schema_to}, but release {release} requires schema {required} "
              "(release index)", f"write schema_to: {required}")
    elif not migrations["forward"] and schema_to < required:
        c.add("migrations.schema_to", f"is {schema_to}, but release {release} needs at least schema {required} "
              "(release index) and no forward migrations run", "set forward: true and schema_to: " + str(required))


def _artifact_on_disk(c: _Checks, artifact: dict, directory: Path | None) -> None:
    path = Path(artifact["file"])
    if not path.is_absolute():
        if directory is None:
            c.add("artifacts[0].file", f"{artifact['file']!r} is relative, but the inventory has no "
                  "hospops_releases_dir", "give an absolute path, or set hospops_releases_dir in the inventory")
            return
        path = directory / path
    if not path.is_file():
        c.add("artifacts[0].file", f"{path} does not exist", "copy the release tarball there, or correct the path")
        return
    actual = releases.sha256_of(path)
    if actual != artifact["sha256"]:
        c.add("artifacts[0].sha256", f"does not match {path} (its SHA-256 is {actual})",
              "the tarball is not the one the plan names: get the right file, or correct the checksum")


# -- filling in --------------------------------------------------------------------------------
def normalise(plan: dict[str, Any], change_id: str | None = None, inventory=None) -> dict[str, Any]:
    """The plan with its defaults: reason, health_checks.payment_probe and, once the change id is
    known, rollback.restore_point ``auto`` resolved to ``upgrade_<change id>``."""
    out = copy.deepcopy(plan)
    out.setdefault("reason", f"upgrade {out['service']} {out['from_version']} -> {out['to_version']}")
    out["health_checks"].setdefault("payment_probe", _payment_probe_default(out["service"], inventory))
    for key in ("start", "end"):
        if isinstance(out["window"][key], datetime):  # a plan built in Python rather than read from a file
            out["window"][key] = out["window"][key].isoformat()
    if change_id and out["rollback"]["restore_point"] == AUTO_RESTORE_POINT:
        out["rollback"]["restore_point"] = restore_point_name(change_id)
    return out


def restore_point_name(change_id: str) -> str:
    """``upgrade_CHG_20261126_a1b2c3``: PostgreSQL restore point names are kept to [A-Za-z0-9_]."""
    return ("upgrade_" + re.sub(r"[^A-Za-z0-9_]", "_", change_id))[:60]


def request_problems(plan: dict[str, Any] | None) -> list[str]:
    """The check ``hospops.changes`` runs on every upgrade request (no inventory at hand there)."""
    if not plan:
        return ["an upgrade needs an upgrade plan with its rollback plan (hospops change request upgrade PLAN.yml)"]
    return [str(p) for p in problems(plan)]


def _payment_probe_default(service: str, inventory) -> bool:
    """The service table says which services take payments; without it, only ih does."""
    if inventory is not None:
        svc = (inventory.var("hospops_services", None) or {}).get(service)
        if isinstance(svc, dict):
            return bool(svc.get("payment_probe"))
    return service == "ih"


# -- small helpers -----------------------------------------------------------------------------
def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "empty"}.get(
        type(value), type(value).__name__)


def _close(word: str, choices: tuple[str, ...]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = _close(word, tuple(choices))
    return f" (did you mean {close}?)" if close else ""


def _suggest_fix(word: str, known: tuple[str, ...]) -> str:
    close = _close(word, known)
    return f"rename it to {close}" if close else f"remove it; the fields here are {', '.join(known)}"
