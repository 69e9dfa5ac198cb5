# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the inspection modules: one shape for a finding, severities, and a command helper.

A finding is a plain dict, the same from every check, so the orchestrator can store, score and
translate it without knowing the check: ``code`` names the kind (the report keeps the zh/en titles
and recommendations per code), ``subject`` what it is about (a mount point, an index, a port),
``value``/``threshold`` the numbers, ``clause`` the contract clause it belongs to.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import subprocess

SEVERITIES = ("critical", "high", "medium", "low", "info")


def finding(code, severity, subject, message, clause, recommendation, value=None, threshold=None):
    if severity not in SEVERITIES:
        raise ValueError("unknown severity %r" % severity)
    return {"code": code, "severity": severity, "subject": subject, "message": message, "clause": clause,
            "recommendation": recommendation, "value": value, "threshold": threshold}


def level(value, warn, crit):
    """'critical' at or above crit, 'high' at or above warn, else None."""
    if value is None:
        return None
    if crit is not None and value >= crit:
        return "critical"
    if warn is not None and value >= warn:
        return "high"
    return None


def run(argv, timeout=30, env=None):
    """Run a command (a list, never a shell); return (rc, stdout, stderr); rc 127 when it is missing."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        return 127, "", str(exc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return 124, out.decode("utf-8", "replace"), "timed out after %ss" % timeout
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
