# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fuhosp.ops.change_gate: refuse to change anything without the hospital's signed approval.

Runs on the control node, once per play batch (BYPASS_HOST_LOOP, i.e. run_once semantics; a refusal
is fatal for every host of the play). Documentation: plugins/modules/change_gate.py.

One run per approval: the change's nonce is consumed by creating ``<ledger>/nonces/<nonce>.json``
with O_EXCL. The file names the consuming run: the ansible-playbook main process (its pid, its start
time from /proc, the node and boot id). Every task of one ansible-playbook run executes in worker
processes forked from that main process, so all ``serial`` batches of one run find themselves in
the file and pass; any other ansible-playbook process (a second run, or a re-run after a crash) has
another pid or start time and is refused. Nothing a user passes (extra vars, environment) enters
that identity, so it cannot be spoofed from the command line.

Resuming: a run started by hospops (it passes ``hospops_run_id``) that died before hospops recorded
its end (``finished`` in the claim: the orchestrator or ansible-playbook was killed) may be taken over
by a later hospops run of the same change while the approval holds, once the claiming process is
gone on this node; the claim keeps the list of runs it was resumed by. A run that ended, or one
started by hand, never passes twice.

Rehearsal: with ``ansible-playbook --check`` the gate verifies the request itself but not its
approvals, window time or blackouts, and claims nothing (``hospops upgrade rehearse``): the
approvers see what would change before they sign.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import multiprocessing
import os
import re
import socket
from datetime import datetime, timezone

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.fuhosp.ops.plugins.module_utils import _approval

_NONCE = re.compile(r"^[0-9a-f]{16,128}$")
# Who is trusted comes from the inventory; extra variables (highest precedence) may not redefine it.
_TRUSTED_VARS = ("hospops_approvers", "hospops_change_policy", "hospops_clinic_calendar", "change_gate_ledger_dir")

_ARGUMENT_SPEC = dict(
    action=dict(type="str", required=True),
    ticket=dict(type="path"),
    ledger_dir=dict(type="path"),
)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except OSError:
        return ""


def run_identity() -> dict:
    """The ansible-playbook process this task belongs to (the parent of the worker we run in)."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None and parent.pid else os.getpid()
    stat = _read("/proc/%d/stat" % pid)
    start = stat.rsplit(")", 1)[-1].split()[19] if stat else "unknown"
    return {"node": socket.gethostname(), "boot": _read("/proc/sys/kernel/random/boot_id").strip(),
            "pid": pid, "start": start}


def default_ledger_dir(task_vars: dict) -> str:
    if task_vars.get("change_gate_ledger_dir"):
        return str(task_vars["change_gate_ledger_dir"])
    if os.environ.get("HOSPOPS_HOME"):
        return os.path.join(os.environ["HOSPOPS_HOME"], "gate")
    return os.path.join(os.path.expanduser("~"), ".local", "state", "hospops", "gate")


def _process_gone(run: dict) -> bool:
    """True when the claiming ansible-playbook process no longer exists (same node and boot only)."""
    if run.get("node") != socket.gethostname() or run.get("boot") != _read("/proc/sys/kernel/random/boot_id").strip():
        return False
    try:
        pid = int(run.get("pid"))
    except (TypeError, ValueError):
        return False
    stat = _read("/proc/%d/stat" % pid)
    return not stat or stat.rsplit(")", 1)[-1].split()[19] != run.get("start")


def _resume(path: str, holder: dict, ident: dict, hospops_run_id) -> bool:
    """Take over the claim of a hospops run that died before it ended; True when taken."""
    if not hospops_run_id or not holder.get("hospops_run_id") or holder.get("finished"):
        return False
    if not _process_gone(holder.get("run") or {}):
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "r", encoding="utf-8") as handle:
            current = json.load(handle)
        if current != holder:
            return False  # another run took it first
        current["resumed"] = (current.get("resumed") or []) + [
            {"from": current["run"], "from_hospops_run_id": current.get("hospops_run_id"),
             "at": _approval.iso(datetime.now(timezone.utc))}]
        current.update(run=ident, hospops_run_id=hospops_run_id)
        data = json.dumps(current, sort_keys=True).encode("utf-8")
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, data)
        os.fsync(fd)
        return True
    finally:
        os.close(fd)


def consume_nonce(ledger: str, nonce: str, change_id: str, ident: dict, check_mode: bool,
                  hospops_run_id=None) -> str | None:
    """Claim the nonce for this run; return None when ours, else a sentence naming the run that has it."""
    directory = os.path.join(ledger, "nonces")
    path = os.path.join(directory, nonce + ".json")
    if not check_mode:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        claim = {"change_id": change_id, "run": ident, "hospops_run_id": hospops_run_id,
                 "consumed_at": _approval.iso(datetime.now(timezone.utc))}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(claim, sort_keys=True))
                handle.flush()
                os.fsync(handle.fileno())
            return None
    try:
        with open(path, encoding="utf-8") as handle:
            holder = json.load(handle)
    except FileNotFoundError:
        return None  # check mode, not consumed yet
    except (OSError, ValueError):
        return "its approval is being claimed by another run right now"
    if holder.get("run") == ident:
        return None  # the same ansible-playbook run: a later serial batch
    if not check_mode and _resume(path, holder, ident, hospops_run_id):
        return None
    run = holder.get("run") or {}
    if holder.get("hospops_run_id") and not holder.get("finished") and not _process_gone(run):
        return "its run %s is still going (pid %s on %s)" % (holder["hospops_run_id"], run.get("pid"), run.get("node"))
    return "its approval was already used by another run (pid %s on %s at %s)" % (
        run.get("pid"), run.get("node"), holder.get("consumed_at"))


def append_decision(ledger: str, decision: dict) -> None:
    os.makedirs(ledger, mode=0o700, exist_ok=True)
    line = (json.dumps(decision, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(os.path.join(ledger, "decisions.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(_ARGUMENT_SPEC)

    def _template(self, task_vars: dict, name: str, default=None):
        value = task_vars.get(name, default)
        return self._templar.template(value) if value is not None else default

    def _outpatient_hours(self, task_vars: dict):
        try:
            from hospops.clinic_calendar import ClinicCalendar
        except ImportError:
            return None
        config = self._template(task_vars, "hospops_clinic_calendar")
        built = []

        def is_outpatient_hours(moment):
            if not built:
                try:
                    built.append(ClinicCalendar.from_config(config))
                except Exception as exc:  # any calendar error is a refusal, never a pass
                    raise _approval.CalendarMissing("(clinic calendar unreadable: %s)" % exc) from exc
            return built[0].is_outpatient_hours(moment)

        return is_outpatient_hours

    def _overridden_by_extra_vars(self) -> list:
        """Trusted variables given with -e (they would outrank the inventory): a refusal, never a pass."""
        try:
            from ansible import context
            from ansible.utils.vars import load_extra_vars

            extra = load_extra_vars(self._loader) if context.CLIARGS.get("extra_vars") else {}
        except Exception as exc:  # unreadable here means unverifiable
            return ["(extra variables unreadable: %s)" % exc]
        return [name for name in _TRUSTED_VARS if name in extra]

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=_ARGUMENT_SPEC)
        check_mode = bool(self._task.check_mode)
        rehearsal = check_mode and self._whole_run_in_check_mode()
        ledger = args.get("ledger_dir") or default_ledger_dir(task_vars)
        ticket_path = args.get("ticket") or self._template(task_vars, "change_ticket")
        hosts = [str(h) for h in task_vars.get("ansible_play_hosts_all") or []]
        ident = run_identity()
        decision = {
            "at": _approval.iso(datetime.now(timezone.utc)), "gate_action": args["action"], "check_mode": check_mode,
            "hosts": sorted(hosts), "play": str(task_vars.get("ansible_play_name", "")), "ticket": ticket_path,
            "user": getpass.getuser(), "run": ident, "hospops_run_id": task_vars.get("hospops_run_id"),
            "rehearsal": rehearsal,
        }
        verdict = self._verify(task_vars, args["action"], hosts, ticket_path, rehearsal)
        problems = verdict["problems"]
        overridden = self._overridden_by_extra_vars()
        if overridden:
            problems.append(_approval.Problem(
                "extra_vars", "%s given as extra variables: approvers and policy come from the inventory only"
                % ", ".join(overridden), "remove them from -e; change the inventory (and have the change reviewed)"))
        if not problems:
            used = consume_nonce(ledger, str(verdict["nonce"]), str(verdict["change_id"]), ident, check_mode,
                                 task_vars.get("hospops_run_id"))
            if used:
                problems.append(_approval.Problem(
                    "nonce_used", "change %s cannot run again: %s" % (verdict["change_id"], used),
                    "one approval allows one run; request a new change (hospops change request)"))
        approvals = [{k: a[k] for k in ("approver", "organisation", "fingerprint")} for a in verdict["approvals"]]
        decision.update(decision="refuse" if problems else "pass", change_id=verdict.get("change_id"),
                        ticket_class=verdict.get("ticket_class"), incident=verdict.get("incident"),
                        requester=verdict.get("requester"), approvals=approvals, problems=list(problems))
        append_decision(ledger, decision)
        result.update(changed=False, change_id=verdict.get("change_id"), ticket_class=verdict.get("ticket_class"),
                      approvals=approvals, hosts=sorted(hosts), decision=decision["decision"], problems=list(problems),
                      window=verdict.get("window"), rehearsal=rehearsal)
        if problems:
            lines = "\n".join("  - %s\n    fix: %s" % (p["what"], p["fix"]) for p in problems)
            raise AnsibleActionFail("change gate REFUSED %s for %s:\n%s" % (
                args["action"], verdict.get("change_id") or "this play", lines), result=result)
        if verdict.get("ticket_class") == "break-glass":
            result.setdefault("warnings", []).append(
                "BREAK-GLASS change %s (incident %s): everyone is notified and an approval after the fact is owed"
                % (verdict["change_id"], verdict.get("incident")))
        result["msg"] = "change %s verified for %s on %d host(s)%s" % (
            verdict["change_id"], args["action"], len(hosts),
            " (rehearsal: the request only, nothing claimed)" if rehearsal
            else " (check mode: approval not consumed)" if check_mode else "")
        return result

    @staticmethod
    def _whole_run_in_check_mode() -> bool:
        """ansible-playbook --check: every task (bar explicit check_mode: false ones) only reports."""
        try:
            from ansible import context

            return bool(context.CLIARGS.get("check"))
        except Exception:  # unreadable: not a rehearsal
            return False

    def _verify(self, task_vars: dict, action: str, hosts: list, ticket_path: str | None, rehearsal: bool = False) -> dict:
        empty = {"problems": [], "approvals": []}
        if not ticket_path:
            empty["problems"].append(_approval.Problem(
                "no_ticket", "no change ticket: this play changes production and needs the hospital's approval",
                "run it with `hospops run PLAYBOOK --change ID`, or pass -e change_ticket=FILE "
                "from `hospops change export ID -o FILE`"))
            return empty
        try:
            with open(os.path.expanduser(str(ticket_path)), encoding="utf-8") as handle:
                ticket = json.load(handle)
        except (OSError, ValueError) as exc:
            empty["problems"].append(_approval.Problem(
                "ticket_unreadable", "cannot read the change ticket %s: %s" % (ticket_path, exc),
                "export it again with `hospops change export ID -o FILE`"))
            return empty
        try:
            approvers = self._template(task_vars, "hospops_approvers", [])
            policy = self._template(task_vars, "hospops_change_policy", {})
        except Exception as exc:  # a broken inventory is a refusal with its reason, never a pass
            empty["problems"].append(_approval.Problem(
                "inventory", "cannot read hospops_approvers / hospops_change_policy: %s" % exc,
                "fix the inventory (group_vars/all/approvers.yml, policy.yml)"))
            return empty
        verdict = _approval.verify_ticket(
            ticket, action=action, hosts=hosts, groups=task_vars.get("groups") or {}, approvers=approvers,
            policy=policy, now=datetime.now(timezone.utc), is_outpatient_hours=self._outpatient_hours(task_vars),
            rehearsal=rehearsal)
        nonce = str(verdict.get("nonce") or "")
        if not verdict["problems"] and not _NONCE.match(nonce):
            verdict["problems"].append(_approval.Problem("format", "the ticket's nonce is malformed",
                                                         "export the ticket again"))
        return verdict
