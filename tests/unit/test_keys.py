"""Approver keys: ensure_keypair, the CLI line for the inventory, the lab's approvers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from hospops import keys
from hospops._collection import approval

REPO = Path(__file__).resolve().parents[2]


def test_ensure_keypair_creates_once_with_safe_modes(tmp_path):
    pub = keys.ensure_keypair("zhang-it", tmp_path / "k")
    key = tmp_path / "k" / "zhang-it.key"
    assert pub == tmp_path / "k" / "zhang-it.pub"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o700
    line = pub.read_text().strip()
    assert line.startswith("ssh-ed25519 ") and line.endswith("hospops:zhang-it")
    before = key.read_bytes()
    assert keys.ensure_keypair("zhang-it", tmp_path / "k") == pub
    assert key.read_bytes() == before  # never replaced
    ap = approval()
    k = keys.load_private_key(key)
    assert ap.signature_valid(line, {"a": 1}, ap.sign(k, {"a": 1}))


def test_keys_new_prints_the_inventory_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "hospops", "keys", "new", "li-si", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first == (tmp_path / "li-si.pub").read_text().strip()
    assert "BEGIN" not in out.stdout  # the private key is never printed


def test_bad_names_are_refused(tmp_path):
    out = subprocess.run([sys.executable, "-m", "hospops", "keys", "new", "../evil", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "not usable" in out.stderr


def test_lab_inventory_declares_the_lab_approvers():
    declared = yaml.safe_load((REPO / "inventories/lab/group_vars/all/approvers.yml").read_text())["hospops_approvers"]
    assert [a["name"] for a in declared] == list(keys.LAB_APPROVERS)
    assert {a["organisation"] for a in declared} == {"hospital-it", "department", "supplier"}
    for a in declared:
        assert f"/lab/approvers/{a['name']}.pub" in a["public_key"]
    example = yaml.safe_load((REPO / "inventories/example/group_vars/all/approvers.yml").read_text())["hospops_approvers"]
    ap = approval()
    for a in example:
        ap.load_public_key(a["public_key"])
