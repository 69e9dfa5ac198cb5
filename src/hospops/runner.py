"""Run a playbook through ansible-runner under a change: ticket, host locks, live progress, record.

``run_playbook`` is what every feature calls to change something::

    from hospops.runner import run_playbook
    result = run_playbook("restart.yml", change_id="CHG-...", limit="ih1", actor="oncall")
    if not result.ok: ...

It verifies the change before starting (the same code as the gate, for an early clear error),
exports the ticket into the run directory and passes its path as ``change_ticket``, locks the
change's hosts, runs ansible-runner with one private data dir per run (``HOSPOPS_HOME/runs/RUN_ID``),
records the run and its end in the store and the audit chain, and imports the gate's decisions.

Secrets: extra variables are never put on a command line (ansible-runner would put a dict there
with ``suppress_env_files=True``, and into ``artifacts/*/command``) nor in ``env/extravars``; they go
to a 0600 file on a memory file system when there is one, passed as ``-e @file`` and deleted when
the run ends. The store and the audit chain keep only their names.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from hospops import audit, changes, gate_ledger, locks
from hospops.errors import UserError
from hospops.paths import COLLECTIONS_PATH, PLAYBOOKS_DIR, REPO_ROOT, hospops_home

Progress = Callable[[str], None]
_HOST_EVENTS = {"runner_on_ok": "ok", "runner_on_failed": "FAILED", "runner_on_unreachable": "UNREACHABLE",
                "runner_on_skipped": "skipped", "runner_item_on_failed": "item FAILED"}


@dataclass
class RunResult:
    run_id: str
    status: str
    rc: int | None
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    failed_hosts: list[str] = field(default_factory=list)
    unreachable_hosts: list[str] = field(default_factory=list)
    artifacts_dir: Path | None = None
    gate: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0 and not self.failed_hosts and not self.unreachable_hosts


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_playbook(playbook: str) -> Path:
    path = Path(playbook)
    for candidate in (path, PLAYBOOKS_DIR / path, PLAYBOOKS_DIR / f"{playbook}.yml"):
        if candidate.is_file():
            return candidate.resolve()
    raise UserError(f"no playbook {playbook!r}", f"name a file in {PLAYBOOKS_DIR} or give its path")


def _secret_file(extravars: dict[str, Any]) -> Path:
    shm = Path("/dev/shm")
    directory = shm if shm.is_dir() and os.access(shm, os.W_OK) else hospops_home()
    for left in directory.glob("hospops-ev-*-*.json"):  # left by a hospops that was killed: its pid is gone
        pid = left.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            left.unlink(missing_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"hospops-ev-{os.getpid()}-", suffix=".json", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp: 0600
        json.dump(extravars, out)
    return Path(name)


def _printer(progress: Progress, started: float) -> Callable[[dict], bool]:
    def handle(event: dict) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        elapsed = f"{time.monotonic() - started:6.1f}s"
        if kind in _HOST_EVENTS:
            progress(f"[{elapsed}] {data.get('host', '?'):<12} {_HOST_EVENTS[kind]:<11} {data.get('task', '')}")
        elif kind == "playbook_on_play_start":
            progress(f"[{elapsed}] PLAY {data.get('name', '')}")
        return True  # keep the event in the artifacts
    return handle


def _stats(runner) -> tuple[dict[str, dict[str, int]], list[str], list[str]]:
    raw = runner.stats or {}
    per_host: dict[str, dict[str, int]] = {}
    for key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
        for host, n in (raw.get(key) or {}).items():
            per_host.setdefault(host, {})[key] = int(n)
    failed = sorted(h for h, n in (raw.get("failures") or {}).items() if n)
    unreachable = sorted(h for h, n in (raw.get("dark") or {}).items() if n)
    return per_host, failed, unreachable


def run_playbook(playbook: str, *, change_id: str | None, inventory: Path | None = None,
                 extravars: dict | None = None, limit: str | None = None, check: bool = False, actor: str,
                 store=None, progress: Progress | None = None, diff: bool = False,
                 rehearsal: bool = False) -> RunResult:
    """Run ``playbook`` under ``change_id`` (None: a run that changes nothing, e.g. inspect) and judge it.

    ``rehearsal``: a check-mode run of a change not yet approved (the gate verifies the request only);
    it implies ``check``."""
    check = check or rehearsal
    import ansible_runner

    from hospops import inventory as inventory_mod
    from hospops import policy as policy_mod
    from hospops.store import open_store

    store = store or open_store()
    inv_path = Path(inventory) if inventory else None
    inv = inventory_mod.load(inv_path)
    inv_path = inv.path.resolve()
    book = resolve_playbook(playbook)
    run_id = f"run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    run_dir = hospops_home() / "runs" / run_id
    run_dir.mkdir(parents=True, mode=0o700)
    progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    extravars = dict(extravars or {})
    vars_for_run: dict[str, Any] = {**extravars, "hospops_run_id": run_id}
    hosts: list[str] = []
    if change_id:
        change = changes.get(store, change_id)
        pol = policy_mod.load(inv)
        # without --limit the run is narrowed to the change's targets; a wider --limit is refused here
        limit = limit or ",".join(change.request["targets"])
        hosts = sorted(inv.hosts(limit))
        verdict = changes.preflight(change, pol, hosts, rehearsal=rehearsal)
        if not verdict["ok"]:
            p = verdict["problems"][0]
            audit.record(store, "run.refused", change_id,
                         {"run_id": run_id, "playbook": book.name, "problems": verdict["problems"]}, actor=actor)
            raise UserError(f"change {change_id} cannot run now: {p['what']}", p["fix"])
        ticket = changes.export(store, change_id, run_dir / "ticket.json")
        vars_for_run["change_ticket"] = str(ticket)
    record = {"id": run_id, "change": change_id, "playbook": str(book), "inventory": str(inv_path), "actor": actor,
              "check": int(check), "limit": limit, "names": json.dumps(sorted(extravars)), "dir": str(run_dir),
              "at": _now()}
    if hosts and not check:
        locks.acquire(store, hosts, run_id, actor)
    secret_file: Path | None = None
    try:
        with store.transaction():
            store.execute(
                "INSERT INTO runs (id, change_id, playbook, inventory, actor, check_mode, limit_pattern, extravar_names,"
                " status, artifacts_dir, started_at) VALUES (:id, :change, :playbook, :inventory, :actor, :check, :limit,"
                " :names, 'running', :dir, :at)", record)
            audit.record(store, "run.start", run_id,
                         {"change_id": change_id, "playbook": book.name, "limit": limit, "check_mode": check,
                          "hosts": hosts, "extravar_names": sorted(extravars)}, actor=actor)
        secret_file = _secret_file(vars_for_run)
        started = time.monotonic()
        env = {"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
               "HOSPOPS_HOME": str(hospops_home()), "ANSIBLE_RETRY_FILES_ENABLED": "false",
               # the ansible-playbook of this interpreter (the venv) first, even when it is not activated
               "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])}
        runner = ansible_runner.run(
            private_data_dir=str(run_dir), project_dir=str(REPO_ROOT), playbook=str(book), inventory=str(inv_path),
            ident=run_id, envvars=env,
            cmdline=f"-e @{secret_file}" + (" --check" if check else "") + (" --diff" if diff else ""),
            limit=limit, suppress_env_files=True, quiet=True, event_handler=_printer(progress, started))
        status, rc = runner.status, runner.rc
        per_host, failed, unreachable = _stats(runner)
    except BaseException:
        status, rc, per_host, failed, unreachable = "error", None, {}, [], []
        raise
    finally:
        if secret_file is not None:
            secret_file.unlink(missing_ok=True)
        (run_dir / "env" / "extravars").unlink(missing_ok=True)
        _names_only(run_dir / "artifacts" / run_id / "command")
        gate = _finish(store, run_id, change_id, actor, status, rc, per_host, failed, unreachable)
        if change_id and rc is not None and not check:  # the run ended: its approval may not be resumed
            gate_ledger.mark_finished(str(changes.get(store, change_id).request.get("nonce")), run_id, status)
        locks.release(store, run_id)
    return RunResult(run_id=run_id, status=status, rc=rc, stats=per_host, failed_hosts=failed,
                     unreachable_hosts=unreachable, artifacts_dir=run_dir / "artifacts" / run_id, gate=gate)


def _names_only(command_file: Path) -> None:
    """ansible-runner writes the whole environment of the run into artifacts/ID/command; an operator's
    environment may hold secrets (PGPASSWORD, tokens), so keep only the variable names."""
    try:
        doc = json.loads(command_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(doc.get("env"), dict):
        doc["env"] = sorted(doc["env"])
        command_file.write_text(json.dumps(doc), encoding="utf-8")


def _finish(store, run_id: str, change_id: str | None, actor: str, status: str, rc: int | None,
            per_host: dict, failed: list[str], unreachable: list[str]) -> dict[str, Any] | None:
    gate_ledger.import_decisions(store)
    gate = None
    for row in reversed(store.query("SELECT data FROM audit WHERE kind IN ('gate.pass', 'gate.refuse')"
                                     " AND subject = :s ORDER BY seq", {"s": change_id or "no-ticket"})):
        data = json.loads(row["data"])
        if data.get("hospops_run_id") == run_id:
            gate = {"decision": data.get("decision"), "problems": data.get("problems"), "approvals": data.get("approvals")}
            break
    with store.transaction():
        store.execute(
            "UPDATE runs SET status = :status, rc = :rc, stats = :stats, failed_hosts = :failed,"
            " unreachable_hosts = :unreachable, gate = :gate, ended_at = :at WHERE id = :id",
            {"status": status, "rc": rc, "stats": json.dumps(per_host), "failed": json.dumps(failed),
             "unreachable": json.dumps(unreachable), "gate": json.dumps(gate), "at": _now(), "id": run_id})
        audit.record(store, "run.end", run_id,
                     {"change_id": change_id, "status": status, "rc": rc, "failed_hosts": failed,
                      "unreachable_hosts": unreachable, "gate": (gate or {}).get("decision")}, actor=actor)
    return gate
