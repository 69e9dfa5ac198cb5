#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: security_audit
short_description: Audit a host's security baseline read-only (SSH, passwords, sudo, file modes, ports, nginx TLS)
version_added: 0.1.0
description:
  - Reads the effective SSH daemon settings (C(sshd -T)), the password policy (C(/etc/login.defs), pam_pwquality),
    sudoers rules with C(NOPASSWD), world-writable files under given paths, listening TCP ports against an allowed
    list and the TLS settings of nginx (C(nginx -T)).
  - Returns findings with severity, the contract clause (1, confidentiality) and the fix. Changes nothing.
author:
  - fuhosp.ops contributors (@fuhosp)
options:
  checks:
    description: Which checks to run; all when empty.
    type: list
    elements: str
    choices: [ssh, password, sudo, world_writable, ports, nginx]
    default: []
    version_added: 0.1.0
  allowed_ports:
    description: TCP ports that may listen; others are findings. Ports are not judged when omitted.
    type: list
    elements: int
    version_added: 0.1.0
  world_writable_paths:
    description: Directories searched (recursively) for world-writable files and non-sticky directories.
    type: list
    elements: path
    default: []
    version_added: 0.1.0
  pass_max_days:
    description: Longest allowed password age in days.
    type: int
    default: 90
    version_added: 0.1.0
  ssh_max_auth_tries:
    description: Highest allowed C(MaxAuthTries).
    type: int
    default: 4
    version_added: 0.1.0
  allow_root_keys:
    description: Accept C(PermitRootLogin prohibit-password) (automation logging in as root with keys).
    type: bool
    default: true
    version_added: 0.1.0
  sudo_nopasswd_allowed:
    description: Users or groups (as written in sudoers, e.g. C(%ops)) allowed C(NOPASSWD).
    type: list
    elements: str
    default: []
    version_added: 0.1.0
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs it the same way.
  diff_mode:
    support: none
    description: The module reports results, not file changes; there is no diff.
  platform:
    support: full
    platforms: debian
    description: Runs on the managed host (Linux with /proc and systemd).
"""

EXAMPLES = r"""
- name: Audit the security baseline
  fuhosp.ops.security_audit:
    allowed_ports: [22, 80, 443]
    world_writable_paths: [/etc, /opt/hospapp]
  register: security
"""

RETURN = r"""
ssh:
  description: The effective sshd settings that are judged.
  returned: when checked
  type: dict
password:
  description: Password age and whether quality rules are in force.
  returned: when checked
  type: dict
sudo:
  description: Sudoers lines with NOPASSWD (file, line, who).
  returned: when checked
  type: dict
world_writable:
  description: World-writable paths found (at most 200) and their count.
  returned: when checked
  type: dict
ports:
  description: Listening TCP ports.
  returned: when allowed_ports is given
  type: list
  elements: dict
nginx:
  description: Whether nginx serves TLS, its ssl_protocols and ssl_ciphers lines.
  returned: when checked
  type: dict
findings:
  description: Problems found with code, severity, subject, message, clause, recommendation.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fuhosp.ops.plugins.module_utils._inspect_security import CHECKS, audit


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type="list", elements="str", choices=list(CHECKS), default=[]),
            allowed_ports=dict(type="list", elements="int"),
            world_writable_paths=dict(type="list", elements="path", default=[]),
            pass_max_days=dict(type="int", default=90, no_log=False),
            ssh_max_auth_tries=dict(type="int", default=4),
            allow_root_keys=dict(type="bool", default=True),
            sudo_nopasswd_allowed=dict(type="list", elements="str", default=[], no_log=False),
        ),
        supports_check_mode=True,
    )
    module.exit_json(changed=False, **audit(module.params))


if __name__ == "__main__":
    main()
