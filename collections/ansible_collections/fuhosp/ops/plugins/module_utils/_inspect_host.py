# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only checks of one host for fuhosp.ops.host_facts_inspect (contract 5.1, 5.2, 7.4.2 (4)).

Every function reads; none writes. Each returns (facts, findings). App log lines are counted, never
returned (they carry patient data).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import glob
import json
import os
import re
import socket
import time

from ansible_collections.fuhosp.ops.plugins.module_utils._inspect_common import finding, level, run

from ansible.module_utils.urls import open_url

CHECKS = ("filesystems", "memory", "load", "systemd", "time", "certificates", "ports", "updates", "http", "logs")

DEFAULT_THRESHOLDS = {
    "disk_warn_pct": 80, "disk_crit_pct": 90, "inode_warn_pct": 80, "inode_crit_pct": 90,
    "mem_warn_pct": 90, "mem_crit_pct": 97, "load_per_cpu_warn": 2.0, "load_per_cpu_crit": 4.0,
    "cert_warn_days": 30, "cert_crit_days": 14, "latency_warn_ms": 1000, "latency_crit_ms": 3000,
    "error_rate_warn": 0.05, "error_rate_crit": 0.2, "error_min_count": 3, "security_updates_warn": 1,
}

_PSEUDO_FS = frozenset((
    "proc", "sysfs", "cgroup", "cgroup2", "devtmpfs", "devpts", "mqueue", "debugfs", "tracefs", "securityfs",
    "pstore", "bpf", "autofs", "fusectl", "configfs", "hugetlbfs", "binfmt_misc", "nsfs", "rpc_pipefs",
    "squashfs", "efivarfs", "ramfs", "fuse.lxcfs", "selinuxfs"))
_PSEUDO_PREFIXES = ("/proc", "/sys", "/dev", "/run")


def _unescape(path):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def filesystems(th, mounts_file="/proc/mounts"):
    seen = {}
    with open(mounts_file) as handle:
        for line in handle:
            parts = line.split()
            if len(parts) < 3:
                continue
            device, mount, fstype = parts[0], _unescape(parts[1]), parts[2]
            if fstype in _PSEUDO_FS or any(mount == p or mount.startswith(p + "/") for p in _PSEUDO_PREFIXES):
                continue
            if not os.path.isdir(mount):
                continue  # a bind-mounted file (/etc/hosts in a container)
            try:
                st = os.statvfs(mount)
            except OSError:
                continue
            if not st.f_blocks:
                continue
            size = st.f_blocks * st.f_frsize
            avail = st.f_bavail * st.f_frsize
            used = (st.f_blocks - st.f_bfree) * st.f_frsize
            usable = used + avail
            inodes_used = st.f_files - st.f_ffree
            seen[mount] = {
                "mount": mount, "device": device, "fstype": fstype, "size_bytes": size, "used_bytes": used,
                "avail_bytes": avail, "used_pct": round(100.0 * used / usable, 1) if usable else 0.0,
                "inodes_total": st.f_files, "inodes_used": inodes_used,
                "inodes_pct": round(100.0 * inodes_used / st.f_files, 1) if st.f_files else 0.0,
            }
    facts = sorted(seen.values(), key=lambda f: f["mount"])
    findings = []
    for fs in facts:
        sev = level(fs["used_pct"], th["disk_warn_pct"], th["disk_crit_pct"])
        if sev:
            findings.append(finding(
                "disk_usage_high", sev, fs["mount"],
                "%s is %.1f%% full (%d bytes free)" % (fs["mount"], fs["used_pct"], fs["avail_bytes"]), "5.2",
                "free space on %s (old logs, temporary files, package cache) or enlarge it" % fs["mount"],
                fs["used_pct"], th["disk_warn_pct"]))
        sev = level(fs["inodes_pct"], th["inode_warn_pct"], th["inode_crit_pct"])
        if sev:
            findings.append(finding(
                "inode_usage_high", sev, fs["mount"], "%s uses %.1f%% of its inodes" % (fs["mount"], fs["inodes_pct"]),
                "5.2", "remove many small files (sessions, caches, temporary files) on %s" % fs["mount"],
                fs["inodes_pct"], th["inode_warn_pct"]))
    return facts, findings


def memory(th, meminfo="/proc/meminfo"):
    values = {}
    with open(meminfo) as handle:
        for line in handle:
            key, dummy, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
    total = values.get("MemTotal", 0)
    avail = values.get("MemAvailable", values.get("MemFree", 0))
    used_pct = round(100.0 * (total - avail) / total, 1) if total else 0.0
    swap_total = values.get("SwapTotal", 0)
    swap_used = swap_total - values.get("SwapFree", 0)
    facts = {"total_bytes": total, "available_bytes": avail, "used_pct": used_pct,
             "swap_total_bytes": swap_total, "swap_used_bytes": swap_used}
    findings = []
    sev = level(used_pct, th["mem_warn_pct"], th["mem_crit_pct"])
    if sev:
        findings.append(finding("memory_high", sev, "memory", "memory is %.1f%% used" % used_pct, "5.2",
                                "find the process using the memory; add memory if the use is normal load",
                                used_pct, th["mem_warn_pct"]))
    return facts, findings


def load(th, loadavg="/proc/loadavg"):
    with open(loadavg) as handle:
        one, five, fifteen = [float(x) for x in handle.read().split()[:3]]
    cpus = os.cpu_count() or 1
    facts = {"load1": one, "load5": five, "load15": fifteen, "cpus": cpus, "load15_per_cpu": round(fifteen / cpus, 2)}
    findings = []
    sev = level(facts["load15_per_cpu"], th["load_per_cpu_warn"], th["load_per_cpu_crit"])
    if sev:
        findings.append(finding("load_high", sev, "load", "15-minute load %.2f on %d CPUs" % (fifteen, cpus), "5.2",
                                "find what keeps the CPUs busy; add CPUs if it is normal load",
                                facts["load15_per_cpu"], th["load_per_cpu_warn"]))
    return facts, findings


def systemd_units(th):
    rc, out, err = run(["systemctl", "list-units", "--state=failed", "--plain", "--no-legend", "--no-pager"])
    if rc != 0:
        return {"available": False, "error": err.strip()[:200]}, []
    failed = sorted(line.split()[0] for line in out.splitlines() if line.strip())
    findings = [finding("systemd_unit_failed", "high", unit, "unit %s has failed" % unit, "5.2",
                        "read `journalctl -u %s`, fix the cause and restart it (or disable it if unused)" % unit)
                for unit in failed]
    return {"available": True, "failed_units": failed}, findings


def _in_container():
    if os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv"):
        return True
    rc, out, dummy = run(["systemd-detect-virt", "--container"])
    return rc == 0 and out.strip() not in ("", "none")


def time_sync(th):
    rc, out, err = run(["timedatectl", "show"])
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line) if rc == 0 else {}
    container = _in_container()
    synced = values.get("NTPSynchronized") == "yes"
    facts = {"ntp_synchronized": synced, "ntp": values.get("NTP") == "yes", "timezone": values.get("Timezone"),
             "container": container, "epoch": int(time.time())}
    findings = []
    if not synced and not container:
        findings.append(finding("time_not_synced", "high", "time", "the clock is not synchronised (NTP)", "5.2",
                                "enable time synchronisation (systemd-timesyncd or chrony) against the hospital's NTP server"))
    return facts, findings


_OPENSSL_DATE = "%b %d %H:%M:%S %Y %Z"


def certificates(th, paths, now=None):
    now = now if now is not None else time.time()
    facts, findings = [], []
    expanded = []
    for pattern in paths:
        if glob.has_magic(pattern):
            expanded.extend(sorted(glob.glob(pattern)))  # a pattern that matches nothing is no finding
        else:
            expanded.append(pattern)
    for path in expanded:
        if not os.path.exists(path):
            facts.append({"path": path, "exists": False})
            findings.append(finding("certificate_missing", "medium", path, "certificate %s does not exist" % path, "5.2",
                                    "check the path in inspection_certificates or install the certificate"))
            continue
        rc, out, err = run(["openssl", "x509", "-noout", "-enddate", "-subject", "-in", path])
        if rc != 0:
            facts.append({"path": path, "exists": True, "error": err.strip()[:200]})
            findings.append(finding("certificate_unreadable", "medium", path, "cannot read %s as a certificate" % path,
                                    "5.2", "check that the file is a PEM certificate"))
            continue
        fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        not_after = calendar.timegm(time.strptime(" ".join(fields["notAfter"].split()), _OPENSSL_DATE))
        days = round((not_after - now) / 86400.0, 1)
        facts.append({"path": path, "exists": True, "subject": fields.get("subject", "").strip(),
                      "not_after": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(not_after)), "days_left": days})
        if days <= th["cert_crit_days"]:
            sev = "critical"
        elif days <= th["cert_warn_days"]:
            sev = "high"
        else:
            continue
        findings.append(finding("certificate_expiring", sev, path, "certificate %s expires in %.1f days" % (path, days),
                                "5.2", "renew the certificate and reload the service using it before it expires",
                                days, th["cert_warn_days"]))
    return facts, findings


def _hex_addr(hexaddr):
    raw = bytes(bytearray.fromhex(hexaddr))
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
    return socket.inet_ntop(socket.AF_INET6, b"".join(words))


def listening(th, expected, proc_net="/proc/net"):
    seen = {}
    for name in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc_net, name)) as handle:
                lines = handle.readlines()[1:]
        except IOError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 4 or parts[3] != "0A":  # 0A = LISTEN
                continue
            addr, port = parts[1].split(":")
            port = int(port, 16)
            seen.setdefault(port, set()).add(_hex_addr(addr))
    facts = [{"port": p, "proto": "tcp", "addresses": sorted(a)} for p, a in sorted(seen.items())]
    findings = []
    if expected is not None:
        allowed = set(int(p) for p in expected)
        for item in facts:
            if item["port"] not in allowed:
                findings.append(finding(
                    "unexpected_port", "high", "tcp/%d" % item["port"],
                    "tcp port %d listens on %s and is not in the expected list" % (item["port"], ", ".join(item["addresses"])),
                    "5.2", "find the process (`ss -ltnp 'sport = :%d'`), stop it, or add the port to the expected list"
                    % item["port"], item["port"]))
    return facts, findings


_INST = re.compile(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) (.+?)\s*(?:\[[^\]]*\])?\)")


def pending_updates(th, lists_dir="/var/lib/apt/lists"):
    try:
        lists = [n for n in os.listdir(lists_dir) if n.endswith("_Packages") or n.endswith("_Packages.lz4")]
    except OSError:
        lists = []
    if not lists:
        facts = {"status": "unknown", "reason": "no package lists in %s" % lists_dir, "security": [], "total": 0}
        return facts, [finding("package_lists_missing", "low", "apt", "no apt package lists: pending updates unknown",
                               "5.2", "run `apt-get update` from the hospital's mirror so updates can be assessed")]
    rc, out, err = run(["apt-get", "-s", "-o", "Debug::NoLocking=true", "-o", "APT::Get::Show-User-Simulation-Note=false",
                        "dist-upgrade"], timeout=120, env=dict(os.environ, LC_ALL="C"))
    if rc != 0:
        return {"status": "error", "reason": err.strip()[:200], "security": [], "total": 0}, []
    total, security = 0, []
    for line in out.splitlines():
        match = _INST.match(line)
        if not match:
            continue
        total += 1
        if "security" in match.group(4).lower():
            security.append({"package": match.group(1), "installed": match.group(2), "candidate": match.group(3)})
    findings = []
    if len(security) >= th["security_updates_warn"]:
        findings.append(finding("security_updates_pending", "high" if len(security) >= 10 else "medium", "apt",
                                "%d security updates pending" % len(security), "5.2",
                                "apply the security updates in the maintenance window (pre-approved standard change)",
                                len(security), th["security_updates_warn"]))
    return {"status": "ok", "total": total, "security": security, "lists": len(lists)}, findings


def http_checks(th, checks):
    facts, findings = [], []
    for check in checks:
        name, url = check["name"], check["url"]
        started = time.time()
        status, state, error = None, None, None
        try:
            resp = open_url(url, timeout=float(check.get("timeout") or 5), use_proxy=False)
            status = resp.getcode()
            body = resp.read(65536)
            try:
                state = json.loads(body.decode("utf-8")).get("status")
            except (ValueError, AttributeError):
                state = None
        except Exception as exc:  # pylint: disable=broad-except
            error = str(getattr(exc, "reason", exc))[:200]
            status = getattr(exc, "code", None)
        latency = int(round((time.time() - started) * 1000))
        healthy = status == 200 and state in (None, "ok")
        facts.append({"name": name, "url": url, "status": status, "state": state, "latency_ms": latency,
                      "healthy": healthy, "error": error})
        if not healthy:
            findings.append(finding("app_unhealthy", "critical", name, "%s health check failed (%s)" % (name, error or status),
                                    "5.1", "restart or redeploy %s under an approved change; read its log" % name))
            continue
        sev = level(latency, th["latency_warn_ms"], th["latency_crit_ms"])
        if sev:
            findings.append(finding("app_slow", "medium" if sev == "high" else "high", name,
                                    "%s answered in %d ms" % (name, latency), "5.1",
                                    "look for slow queries and load on %s" % name, latency, th["latency_warn_ms"]))
    return facts, findings


_LOG_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,]\d+)?(Z|[+-]\d{2}:?\d{2})?\s+([A-Z]+)")
_ERRORS = ("ERROR", "CRITICAL", "FATAL", "PANIC")


def _epoch(day, clock, zone):
    base = calendar.timegm(time.strptime(day + " " + clock, "%Y-%m-%d %H:%M:%S"))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        base -= sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)
    return base


def app_logs(th, logs, now=None, max_bytes=8 * 1024 * 1024):
    now = now if now is not None else time.time()
    facts, findings = [], []
    for log in logs:
        name, path, minutes = log["name"], log["path"], int(log.get("minutes") or 15)
        since = now - minutes * 60
        counts = {"lines": 0, "errors": 0, "warnings": 0}
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - max_bytes))
                data = handle.read().decode("utf-8", "replace")
        except IOError as exc:
            facts.append({"name": name, "path": path, "minutes": minutes, "readable": False, "error": str(exc)[:200]})
            findings.append(finding("app_log_unreadable", "medium", name, "cannot read %s" % path, "5.1",
                                    "check the log path and its permissions"))
            continue
        for line in data.splitlines():
            match = _LOG_LINE.match(line)
            if not match or _epoch(match.group(1), match.group(2), match.group(3)) < since:
                continue
            counts["lines"] += 1
            if match.group(4) in _ERRORS:
                counts["errors"] += 1
            elif match.group(4) in ("WARN", "WARNING"):
                counts["warnings"] += 1
        rate = round(float(counts["errors"]) / counts["lines"], 4) if counts["lines"] else 0.0
        facts.append(dict(counts, name=name, path=path, minutes=minutes, readable=True, error_rate=rate))
        sev = level(rate, th["error_rate_warn"], th["error_rate_crit"]) if counts["errors"] >= th["error_min_count"] else None
        if sev:
            findings.append(finding("app_error_rate", sev, name,
                                    "%s: %d errors in %d lines in the last %d minutes" % (name, counts["errors"], counts["lines"], minutes),
                                    "5.1", "collect the log bundle for the developers (7.7.2 E) and open an L3 incident",
                                    rate, th["error_rate_warn"]))
    return facts, findings


def inspect(params, now=None):
    """Run the selected checks; return the result dict of the module."""
    th = dict(DEFAULT_THRESHOLDS)
    th.update(dict((k, v) for k, v in (params.get("thresholds") or {}).items() if v is not None))
    checks = params.get("checks") or list(CHECKS)
    result, findings = {}, []
    steps = (
        ("filesystems", lambda: filesystems(th)),
        ("memory", lambda: memory(th)),
        ("load", lambda: load(th)),
        ("systemd", lambda: systemd_units(th)),
        ("time", lambda: time_sync(th)),
        ("certificates", lambda: certificates(th, params.get("certificates") or [], now)),
        ("ports", lambda: listening(th, params.get("expected_ports"))),
        ("updates", lambda: pending_updates(th)),
        ("http", lambda: http_checks(th, params.get("http_checks") or [])),
        ("logs", lambda: app_logs(th, params.get("app_logs") or [], now)),
    )
    timings = {}
    for name, step in steps:
        if name not in checks:
            continue
        started = time.time()
        facts, found = step()
        timings[name] = round(time.time() - started, 3)
        result[name] = facts
        findings.extend(found)
    result["findings"] = findings
    result["thresholds"] = th
    result["timings"] = timings
    return result
