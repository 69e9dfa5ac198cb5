#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: service_health
short_description: Wait until a hospital service object is healthy, and prove payments are recorded
version_added: 0.1.0
description:
  - Polls the service's health endpoint on the managed host until it answers C(200) with a JSON
    body whose C(status) is C(ok) (and, when asked, the expected version), or the timeout passes.
  - For the internet hospital platform it can then make a real test payment and read it back from
    the service, which proves the payment path records transactions (the L1 symptom of the contract).
  - Read-only apart from the test payment, which is marked as a probe and skipped in check mode.
author:
  - fuhosp.ops maintainers (@fuhosp)
options:
  url:
    description: Base URL of the service as seen from the managed host.
    type: str
    default: http://127.0.0.1:8000
  health_path:
    description: Path of the health endpoint.
    type: str
    default: /health
  expect_version:
    description: Only count the service healthy when it reports this version.
    type: str
  timeout:
    description: Seconds to wait for the service to become healthy.
    type: float
    default: 40
  interval:
    description: Seconds between health reads.
    type: float
    default: 1
  payment_probe:
    description: After the service is healthy, make a test payment and read it back.
    type: bool
    default: false
  fail_unhealthy:
    description: Fail the task when the service is not healthy in time (else report it and succeed).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Health reads happen in check mode too; the test payment does not.
  diff_mode:
    support: none
    description: Nothing on the host changes, so there is nothing to show.
  platform:
    support: full
    platforms: posix
    description: Runs on POSIX managed hosts with Python 3.6 or later.
notes:
  - Uses only the Python standard library on the managed host.
"""

EXAMPLES = r"""
- name: Wait for the internet hospital platform and prove a payment is recorded
  fuhosp.ops.service_health:
    expect_version: 2.0.0
    payment_probe: true
  register: health

- name: Read health without failing, to decide whether to restart
  fuhosp.ops.service_health:
    timeout: 0
    fail_unhealthy: false
  register: before
"""

RETURN = r"""
healthy:
  description: Whether the service answered healthy (and, if asked, the payment was recorded).
  returned: always
  type: bool
  sample: true
status:
  description: HTTP status of the last health read (0 when nothing answered).
  returned: always
  type: int
  sample: 200
version:
  description: Version the service reported.
  returned: always
  type: str
  sample: 1.0.0
reason:
  description: What was wrong with the last reading, empty when healthy.
  returned: always
  type: str
  sample: "[Errno 111] Connection refused"
seconds:
  description: Seconds from the first read to the healthy one (or to giving up).
  returned: always
  type: float
  sample: 1.42
attempts:
  description: Number of health reads made.
  returned: always
  type: int
  sample: 3
payment:
  description: The test payment, when O(payment_probe=true) and not in check mode.
  returned: when payment_probe
  type: dict
  sample: {"ok": true, "id": 42, "reason": ""}
"""

import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fuhosp.ops.plugins.module_utils._service_health import payment_probe, wait_healthy


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", default="http://127.0.0.1:8000"),
            health_path=dict(type="str", default="/health"),
            expect_version=dict(type="str"),
            timeout=dict(type="float", default=40),
            interval=dict(type="float", default=1),
            payment_probe=dict(type="bool", default=False),
            fail_unhealthy=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = wait_healthy(p["url"], p["health_path"], p["timeout"], p["interval"], p["expect_version"])
    if result["healthy"] and p["payment_probe"] and not module.check_mode:
        ref = "probe-%s-%d" % (socket.gethostname(), int(time.time() * 1000))
        result["payment"] = payment_probe(p["url"], 10, ref)
        if not result["payment"]["ok"]:
            result["healthy"] = False
            result["reason"] = result["payment"]["reason"]
    if not result["healthy"] and p["fail_unhealthy"]:
        module.fail_json(msg="service at %s not healthy after %ss: %s" % (p["url"], result["seconds"], result["reason"]),
                         changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
