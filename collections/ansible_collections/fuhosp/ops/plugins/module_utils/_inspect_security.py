# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only security audit for fuhosp.ops.security_audit (contract 1 confidentiality; GB/T 22239 level 3).

SSH daemon settings (the effective ones, from ``sshd -T``), password policy (login.defs, pam_pwquality),
sudoers NOPASSWD, world-writable files under given paths, listening ports against an allowed list,
nginx TLS settings (from ``nginx -T``). Every finding names its fix.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import stat

from ansible_collections.fuhosp.ops.plugins.module_utils._inspect_common import finding, run
from ansible_collections.fuhosp.ops.plugins.module_utils._inspect_host import listening

CHECKS = ("ssh", "password", "sudo", "world_writable", "ports", "nginx")
_WEAK_SSH = re.compile(r"(-cbc\b|arcfour|3des|hmac-md5|-96\b|diffie-hellman-group1-sha1|"
                       r"diffie-hellman-group14-sha1|diffie-hellman-group-exchange-sha1)", re.I)
_WEAK_TLS_CIPHERS = re.compile(r"(?<![!-])\b(RC4|3DES|DES-CBC3|NULL|EXPORT|MD5|aNULL|eNULL)\b")
CLAUSE = "1"


def ssh(params):
    rc, out, err = run(["sshd", "-T"])
    if rc != 0:
        return {"available": False, "error": (err or out).strip()[:200]}, []
    cfg = {}
    for line in out.splitlines():
        key, dummy, value = line.partition(" ")
        cfg.setdefault(key.lower(), value.strip())
    findings = []

    def add(code, severity, message, fix, value=None):
        findings.append(finding(code, severity, "sshd", message, CLAUSE, fix, value))

    root = cfg.get("permitrootlogin", "")
    if root == "yes":
        add("ssh_root_login", "high", "sshd allows root to log in with a password (PermitRootLogin yes)",
            "set PermitRootLogin no (or prohibit-password where automation logs in as root with keys)", root)
    elif root in ("prohibit-password", "without-password") and not params.get("allow_root_keys", True):
        add("ssh_root_login", "low", "sshd allows root to log in with keys", "set PermitRootLogin no", root)
    if cfg.get("passwordauthentication") == "yes":
        add("ssh_password_auth", "high", "sshd accepts passwords (PasswordAuthentication yes)",
            "set PasswordAuthentication no and use keys", "yes")
    if cfg.get("permitemptypasswords") == "yes":
        add("ssh_empty_passwords", "critical", "sshd accepts empty passwords", "set PermitEmptyPasswords no", "yes")
    if cfg.get("x11forwarding") == "yes":
        add("ssh_x11_forwarding", "low", "sshd forwards X11", "set X11Forwarding no", "yes")
    try:
        tries = int(cfg.get("maxauthtries", "6"))
    except ValueError:
        tries = 6
    if tries > int(params.get("ssh_max_auth_tries") or 4):
        add("ssh_max_auth_tries", "low", "MaxAuthTries is %d" % tries, "set MaxAuthTries 4 or less", tries)
    weak = sorted(set(w for k in ("ciphers", "macs", "kexalgorithms") for w in cfg.get(k, "").split(",") if _WEAK_SSH.search(w)))
    if weak:
        add("ssh_weak_algorithms", "medium", "sshd offers weak algorithms: %s" % ", ".join(weak),
            "remove them from Ciphers, MACs and KexAlgorithms")
    keep = ("permitrootlogin", "passwordauthentication", "permitemptypasswords", "x11forwarding", "maxauthtries",
            "pubkeyauthentication", "port", "listenaddress")
    return {"available": True, "settings": dict((k, cfg.get(k)) for k in keep)}, findings


def password_policy(params, login_defs="/etc/login.defs", pam_dir="/etc/pam.d"):
    values = {}
    try:
        with open(login_defs) as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and not parts[0].startswith("#"):
                    values[parts[0]] = parts[1]
    except IOError:
        pass
    quality = False
    for name in ("common-password", "system-auth", "password-auth"):
        try:
            with open(os.path.join(pam_dir, name)) as handle:
                quality = quality or any(("pam_pwquality" in l or "pam_cracklib" in l) and not l.lstrip().startswith("#")
                                         for l in handle)
        except IOError:
            continue
    findings = []
    max_days = int(values.get("PASS_MAX_DAYS", "99999") or 99999)
    if max_days > int(params.get("pass_max_days") or 90):
        findings.append(finding("password_max_age", "medium", "/etc/login.defs", "passwords never expire (PASS_MAX_DAYS %d)" % max_days,
                                CLAUSE, "set PASS_MAX_DAYS %d in /etc/login.defs (and chage for existing users)" % int(params.get("pass_max_days") or 90),
                                max_days, params.get("pass_max_days") or 90))
    if not quality:
        findings.append(finding("password_quality", "medium", "/etc/pam.d", "no password quality rules (pam_pwquality)", CLAUSE,
                                "install libpam-pwquality and set minlen=12, minclass=3 in /etc/security/pwquality.conf"))
    return {"pass_max_days": max_days, "pass_min_days": values.get("PASS_MIN_DAYS"), "pwquality": quality}, findings


def sudoers(params, paths=("/etc/sudoers",), directory="/etc/sudoers.d"):
    files = list(paths)
    try:
        files += [os.path.join(directory, n) for n in sorted(os.listdir(directory)) if not n.startswith(".") and "~" not in n]
    except OSError:
        pass
    hits, findings = [], []
    allowed = set(params.get("sudo_nopasswd_allowed") or [])
    for path in files:
        try:
            with open(path) as handle:
                for number, line in enumerate(handle, 1):
                    text = line.strip()
                    if text.startswith("#") or "NOPASSWD" not in text:
                        continue
                    who = text.split()[0]
                    hits.append({"file": path, "line": number, "who": who})
                    if who not in allowed:
                        findings.append(finding("sudo_nopasswd", "medium", "%s:%d" % (path, number),
                                                "%s may run commands as root without a password (%s line %d)" % (who, path, number),
                                                CLAUSE, "remove NOPASSWD for %s, or list it in security_baseline_sudo_nopasswd_allowed with a reason" % who))
        except IOError:
            continue
    return {"nopasswd": hits}, findings


def world_writable(params, limit=200):
    found, findings = [], []
    for root_path in params.get("world_writable_paths") or []:
        for root, dirs, files in os.walk(root_path):
            for name in dirs + files:
                path = os.path.join(root, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if stat.S_ISLNK(st.st_mode) or not st.st_mode & stat.S_IWOTH:
                    continue
                if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
                    continue  # sticky directories (/tmp-like) are fine
                found.append(path)
                if len(found) <= limit:
                    findings.append(finding("world_writable", "high", path, "%s is writable by every user" % path, CLAUSE,
                                            "chmod o-w %s" % path))
    return {"paths": found[:limit], "count": len(found)}, findings


def nginx_tls(params):
    rc, out, err = run(["nginx", "-T"])
    if rc == 127:
        return {"available": False}, []
    if rc != 0:
        return {"available": True, "error": err.strip()[-300:]}, [finding(
            "nginx_config_invalid", "medium", "nginx", "nginx -T fails: %s" % err.strip()[-200:], CLAUSE,
            "fix the nginx configuration (nginx -t)")]
    lines = [l.split("#", 1)[0].strip() for l in out.splitlines()]
    tls_listen = any(re.match(r"listen\s+.*\bssl\b", l) for l in lines)
    protocols = [l for l in lines if l.startswith("ssl_protocols")]
    ciphers = [l for l in lines if l.startswith("ssl_ciphers")]
    tokens = any(re.match(r"server_tokens\s+off", l) for l in lines)
    findings = []
    old = sorted(set(p for l in protocols for p in l.rstrip(";").split()[1:] if p in ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")))
    if old:
        findings.append(finding("tls_old_protocols", "critical" if any(p.startswith("SSL") for p in old) else "high", "nginx",
                                "nginx allows %s" % ", ".join(old), CLAUSE, "set ssl_protocols TLSv1.2 TLSv1.3;"))
    elif tls_listen and not protocols:
        findings.append(finding("tls_default_protocols", "medium", "nginx",
                                "nginx serves TLS without ssl_protocols: the defaults include TLSv1 and TLSv1.1", CLAUSE,
                                "set ssl_protocols TLSv1.2 TLSv1.3;"))
    weak = sorted(set(m for l in ciphers for m in _WEAK_TLS_CIPHERS.findall(l)))
    if weak:
        findings.append(finding("tls_weak_ciphers", "high", "nginx", "nginx offers weak ciphers: %s" % ", ".join(weak), CLAUSE,
                                "use a modern cipher list, e.g. ECDHE+AESGCM:ECDHE+CHACHA20"))
    if not tokens:
        findings.append(finding("nginx_server_tokens", "low", "nginx", "nginx shows its version (server_tokens on)", CLAUSE,
                                "set server_tokens off;"))
    return {"available": True, "tls": tls_listen, "ssl_protocols": protocols, "ssl_ciphers": ciphers}, findings


def audit(params):
    checks = params.get("checks") or list(CHECKS)
    result, findings = {}, []
    steps = (("ssh", lambda: ssh(params)), ("password", lambda: password_policy(params)), ("sudo", lambda: sudoers(params)),
             ("world_writable", lambda: world_writable(params)),
             ("ports", lambda: listening({}, params.get("allowed_ports"))), ("nginx", lambda: nginx_tls(params)))
    for name, step in steps:
        if name not in checks:
            continue
        if name == "ports" and params.get("allowed_ports") is None:
            continue
        facts, found = step()
        if name == "ports":
            for f in found:
                f["code"], f["clause"] = "port_not_allowed", CLAUSE
        result[name] = facts
        findings.extend(found)
    result["findings"] = findings
    return result
