#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_facts_inspect
short_description: Inspect one host read-only (disk, inodes, memory, load, units, time, certificates, ports, updates, apps)
version_added: 0.1.0
description:
  - The operating-system and application half of the quarterly inspection (contract 5.1, 5.2, 7.4.2 (4)).
  - Reads filesystems and inodes, memory, load, failed systemd units, time synchronisation, the expiry of the
    certificate files it is told about, listening TCP ports, pending security updates (simulated with
    C(apt-get -s) from the local package lists, no network needed), the health and latency of HTTP endpoints,
    and the error rate of application logs over the last minutes.
  - Returns the facts and a list of findings (code, severity, subject, message, clause, recommendation,
    value, threshold). It never changes anything; log lines are counted, never returned (patient data).
author:
  - fuhosp.ops contributors (@fuhosp)
options:
  checks:
    description: Which checks to run; all when empty.
    type: list
    elements: str
    choices: [filesystems, memory, load, systemd, time, certificates, ports, updates, http, logs]
    default: []
    version_added: 0.1.0
  thresholds:
    description:
      - Thresholds overriding the defaults, for example C(disk_warn_pct), C(disk_crit_pct), C(inode_warn_pct),
        C(mem_warn_pct), C(load_per_cpu_warn), C(cert_warn_days), C(cert_crit_days), C(latency_warn_ms),
        C(error_rate_warn), C(error_min_count), C(security_updates_warn).
    type: dict
    default: {}
    version_added: 0.1.0
  certificates:
    description:
      - Paths of PEM certificate files on the host whose expiry is checked.
      - A path with glob characters (C(/etc/nginx/tls/*.pem)) names every file it matches; one that matches
        nothing is not a finding, a plain path that does not exist is.
    type: list
    elements: path
    default: []
    version_added: 0.1.0
  expected_ports:
    description:
      - TCP ports that may listen on this host. Any other listening port is a finding.
      - When omitted, ports are listed but not judged.
    type: list
    elements: int
    version_added: 0.1.0
  http_checks:
    description: HTTP endpoints to call from the host (health and latency).
    type: list
    elements: dict
    default: []
    version_added: 0.1.0
    suboptions:
      name:
        description: Name of what answers (the service object).
        type: str
        required: true
      url:
        description: URL to GET; 200 with an optional JSON C(status) of C(ok) is healthy.
        type: str
        required: true
      timeout:
        description: Seconds to wait.
        type: float
        default: 5
  app_logs:
    description: Application logs whose lines of the last minutes are counted by level.
    type: list
    elements: dict
    default: []
    version_added: 0.1.0
    suboptions:
      name:
        description: Name of the application.
        type: str
        required: true
      path:
        description: Log file; lines start with an ISO 8601 time stamp and a level.
        type: path
        required: true
      minutes:
        description: How many minutes back to count.
        type: int
        default: 15
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
notes:
  - Runs as root to read every filesystem and log; C(openssl) is needed for certificates.
"""

EXAMPLES = r"""
- name: Inspect the host
  fuhosp.ops.host_facts_inspect:
    certificates: [/etc/nginx/tls/hospital.pem]
    expected_ports: [22, 80, 443]
    thresholds: {disk_warn_pct: 80, cert_warn_days: 30}
  register: os_inspection

- name: Inspect an app host, its health and its log
  fuhosp.ops.host_facts_inspect:
    checks: [http, logs]
    http_checks: [{name: ih, url: "http://127.0.0.1:8000/health"}]
    app_logs: [{name: ih, path: /var/log/hospapp/ih.log, minutes: 15}]
"""

RETURN = r"""
filesystems:
  description: One entry per real filesystem (mount, fstype, size, used, avail bytes, used_pct, inodes, inodes_pct).
  returned: when checked
  type: list
  elements: dict
memory:
  description: Total and available bytes, used_pct, swap.
  returned: when checked
  type: dict
load:
  description: Load averages, CPU count, 15-minute load per CPU.
  returned: when checked
  type: dict
systemd:
  description: Failed units.
  returned: when checked
  type: dict
time:
  description: NTP synchronisation, time zone, whether the host is a container (its clock is the host's).
  returned: when checked
  type: dict
certificates:
  description: Path, subject, not_after and days_left per certificate.
  returned: when checked
  type: list
  elements: dict
ports:
  description: Listening TCP ports with their addresses.
  returned: when checked
  type: list
  elements: dict
updates:
  description: Pending updates (status, total, security list).
  returned: when checked
  type: dict
http:
  description: Status, latency_ms and healthy per HTTP check.
  returned: when checked
  type: list
  elements: dict
logs:
  description: Lines, errors, warnings and error_rate per log in the window.
  returned: when checked
  type: list
  elements: dict
findings:
  description: Problems found, each with code, severity, subject, message, clause, recommendation, value, threshold.
  returned: always
  type: list
  elements: dict
  sample: [{code: disk_usage_high, severity: critical, subject: /var, clause: "5.2", value: 93.1, threshold: 80}]
thresholds:
  description: The thresholds used.
  returned: always
  type: dict
timings:
  description: Seconds per check.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fuhosp.ops.plugins.module_utils._inspect_host import CHECKS, inspect


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type="list", elements="str", choices=list(CHECKS), default=[]),
            thresholds=dict(type="dict", default={}),
            certificates=dict(type="list", elements="path", default=[]),
            expected_ports=dict(type="list", elements="int"),
            http_checks=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True), url=dict(type="str", required=True),
                timeout=dict(type="float", default=5))),
            app_logs=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True), path=dict(type="path", required=True),
                minutes=dict(type="int", default=15))),
        ),
        supports_check_mode=True,
    )
    result = inspect(module.params)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
