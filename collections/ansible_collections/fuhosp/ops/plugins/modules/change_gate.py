#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: change_gate
short_description: Verify the hospital's signed approval before a play changes anything
version_added: 0.1.0
description:
  - The first task of every play that changes production (restart, redeploy, upgrade, rollback, restore, maintenance).
    It implements contract clauses 7.7.2 A (restart or redeploy only after the hospital has been told and agrees) and
    5.5 (upgrades only with approved upgrade and rollback plans, in an agreed window).
  - Runs on the control node only, once per play batch (as if C(run_once=true)); a refusal fails every host of the play.
    It does not connect to the managed hosts.
  - Reads the signed change ticket written by C(hospops change export ID -o FILE) (passed by C(hospops run) as the extra
    variable C(change_ticket)), and the approvers (C(hospops_approvers)) and policy (C(hospops_change_policy)) from the
    inventory variables the play sees.
  - "It refuses, naming what is wrong and how to fix it, when: there is no ticket; the ticket was altered after export;
    a signature does not verify against the approver's public key in the inventory (forged or altered); an approval
    was signed for an earlier version of the request; an approver approved their own request, is not declared, or may
    not approve this action; the quorum or a required organisation (for example C(hospital-it) for upgrades) is
    missing; someone denied the change; an approval has expired; the play's action differs from the ticket's; any host
    of the play (C(ansible_play_hosts_all), groups expanded with C(groups)) is outside the approved targets; now is
    outside the change window or inside a blackout of the policy; or the approval was already used by another run."
  - One approval allows one run. The gate claims the change's nonce in its ledger directory for the running
    C(ansible-playbook) process (pid and start time of the main process, node, boot id), so later C(serial) batches of
    the same run pass and any second run with the same ticket is refused. In check mode the gate verifies everything
    but does not claim the nonce.
  - A run started by C(hospops) that died before C(hospops) recorded its end (the orchestrator or C(ansible-playbook)
    was killed) may be resumed by a later C(hospops) run of the same change while the approval holds, once the dead
    run's process is gone; a run that ended, or one started by hand, never passes twice.
  - "Rehearsal: when the whole run is in check mode (C(ansible-playbook --check), as C(hospops upgrade rehearse) runs
    it), the gate verifies the request (format, action, class, scope, signatures present) but not its approvals, the
    time inside the window or blackouts, and claims nothing, so approvers can see what would change before they sign.
    Tasks marked C(check_mode: false) still run for real in a rehearsal; the collection's roles use that only to read."
  - Break-glass tickets (an L1 incident at night with no approver reachable) pass without signatures only with a
    linked incident of an allowed level and a stated reason; an approval after the fact is owed
    (C(hospops change list --owed)). Pre-approved actions of the policy pass without signatures. Both are logged.
  - Every decision, pass or refusal, is appended as one JSON line to C(decisions.jsonl) in the ledger directory. The
    orchestrator imports these lines into its hash-chained audit log after each run and on C(hospops audit verify).
    No key or secret is written.
  - The policy's C(outpatient_hours) blackouts need the C(hospops) package on the control node (clinic calendar);
    without it such a blackout refuses rather than passes.
author:
  - fuhosp.ops contributors (@fuhosp)
options:
  action:
    description:
      - What the play does; must equal the action of the change ticket.
      - For example C(restart), C(redeploy), C(upgrade), C(rollback), C(restore), C(maintain), C(collect_logs).
    type: str
    required: true
    version_added: 0.1.0
  ticket:
    description:
      - Path of the change ticket (JSON) on the control node.
      - Defaults to the variable C(change_ticket), which C(hospops run) sets.
    type: path
    version_added: 0.1.0
  ledger_dir:
    description:
      - Directory of the gate ledger on the control node (consumed nonces and C(decisions.jsonl)).
      - Defaults to the variable C(change_gate_ledger_dir), else C($HOSPOPS_HOME/gate), else C(~/.local/state/hospops/gate).
    type: path
    version_added: 0.1.0
attributes:
  action:
    support: full
    description: Runs entirely on the control node as an action plugin.
  async:
    support: none
    description: Verification is quick and runs on the control node; it cannot run asynchronously.
  bypass_host_loop:
    support: full
    description: Runs once per play batch for all hosts of the play.
  check_mode:
    support: full
    description: Verifies the approval but does not consume it, so a real run may follow.
  diff_mode:
    support: none
    description: Nothing on the managed hosts changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs on a POSIX control node (it uses /proc for the run identity on Linux).
notes:
  - Do not put C(ignore_errors) or C(failed_when) on this task; they would let a refused play continue.
  - Not supported with the C(free) strategy (Ansible refuses host-loop-bypassing actions there).
  - C(hospops_approvers), C(hospops_change_policy), C(hospops_clinic_calendar) and C(change_gate_ledger_dir) given as
    extra variables (C(-e)) are refused; they come from the inventory, which must be protected and reviewed.
seealso:
  - name: Contract clause 7.7.2 A and 5.5
    description: The operations contract this gate enforces (DESIGN.md of the project).
    link: https://github.com/fuhosp/ops
"""

EXAMPLES = r"""
# The first task of every play that changes anything (here a play with serial: 1 over svc_ih):
- name: Verify the hospital's approval for this change
  fuhosp.ops.change_gate:
    action: restart

# By hand, with a ticket exported by the orchestrator:
#   hospops change export CHG-20261125-a1b2c3 -o /tmp/chg.json
#   ansible-playbook playbooks/restart.yml -e change_ticket=/tmp/chg.json --limit ih1
- name: Verify with an explicit ticket and ledger
  fuhosp.ops.change_gate:
    action: upgrade
    ticket: /srv/hospops/tickets/CHG-20261125-a1b2c3.json
    ledger_dir: /srv/hospops/gate
"""

RETURN = r"""
decision:
  description: C(pass) (a refusal fails the task).
  returned: always
  type: str
  sample: pass
change_id:
  description: The change the play runs under.
  returned: always
  type: str
  sample: CHG-20261125-a1b2c3
ticket_class:
  description: C(approval), C(pre-approved) or C(break-glass).
  returned: always
  type: str
  sample: approval
approvals:
  description: The valid approvals counted for the quorum.
  returned: always
  type: list
  elements: dict
  sample: [{"approver": "zhang-it", "organisation": "hospital-it", "fingerprint": "SHA256:..."}]
hosts:
  description: The play's hosts that were checked against the approved targets.
  returned: always
  type: list
  elements: str
  sample: [ih1, ih2]
window:
  description: The approved change window (ISO 8601 C(start) and C(end)); a rolling change stops at a safe point before it ends.
  returned: when the ticket was readable
  type: dict
  sample: {"start": "2026-11-26T01:00:00+08:00", "end": "2026-11-26T05:00:00+08:00"}
rehearsal:
  description: True when the whole run is in check mode (C(--check)) and only the request was verified, not its approvals.
  returned: always
  type: bool
  sample: false
problems:
  description: Why the gate refused, each with C(code), C(what) and C(fix); empty on a pass.
  returned: always
  type: list
  elements: dict
  sample: []
"""
