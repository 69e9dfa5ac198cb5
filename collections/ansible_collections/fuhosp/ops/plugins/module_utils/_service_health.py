# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Poll a service object's health endpoint until it is healthy, and prove payments work.

Runs on the managed host (stdlib only, Python 3.6+), so it reaches the app on its own loopback.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url


def _call(url, timeout, body=None):
    """Return (status, parsed JSON or None, error text)."""
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    try:
        resp = open_url(url, data=data, headers=headers, method="POST" if data else "GET", timeout=timeout,
                        use_proxy=False)
        raw = resp.read()
        status = resp.getcode()
    except HTTPError as exc:
        raw, status = exc.read(), exc.code
    except (URLError, OSError, ValueError) as exc:
        return 0, None, str(getattr(exc, "reason", exc))
    try:
        return status, json.loads(raw.decode("utf-8") or "null"), ""
    except ValueError:
        return status, None, "the answer is not JSON"


def probe_once(base_url, health_path, timeout, expect_version=None):
    """One health read: a dict with healthy, status, version, reason."""
    status, doc, error = _call(base_url.rstrip("/") + health_path, timeout)
    doc = doc if isinstance(doc, dict) else {}
    version = doc.get("version", "")
    reason = error or doc.get("reason", "")
    healthy = status == 200 and doc.get("status") == "ok"
    if healthy and expect_version and version != expect_version:
        healthy, reason = False, "serving version %s, expected %s" % (version, expect_version)
    if not healthy and not reason:
        reason = "HTTP %s" % status
    return {"healthy": healthy, "status": status, "version": version, "reason": reason}


def wait_healthy(base_url, health_path, timeout, interval, expect_version=None, clock=time.monotonic,
                 sleep=time.sleep):
    """Poll until healthy or the timeout passes; return the last reading plus timing."""
    start = clock()
    attempts = 0
    while True:
        attempts += 1
        reading = probe_once(base_url, health_path, min(5.0, max(1.0, timeout)), expect_version)
        elapsed = clock() - start
        if reading["healthy"] or elapsed >= timeout:
            reading.update(attempts=attempts, seconds=round(elapsed, 3))
            return reading
        sleep(min(interval, max(0.0, timeout - elapsed)))


def payment_probe(base_url, timeout, order_ref):
    """Make a test payment and read it back: proof that the payment path records transactions."""
    status, doc, error = _call(base_url.rstrip("/") + "/api/payments", timeout,
                               {"amount_fen": 1, "method": "scan", "order_ref": order_ref, "probe": True})
    if status != 201 or not isinstance(doc, dict) or "id" not in doc:
        return {"ok": False, "reason": error or "payment answered HTTP %s" % status}
    pid = doc["id"]
    status, back, error = _call("%s/api/payments/%s" % (base_url.rstrip("/"), pid), timeout)
    if status != 200 or not isinstance(back, dict) or back.get("status") != "recorded":
        return {"ok": False, "id": pid, "reason": error or "payment %s not found recorded (HTTP %s)" % (pid, status)}
    return {"ok": True, "id": pid, "reason": ""}
