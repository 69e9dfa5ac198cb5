"""The incident classifier: default rules classify 7.7.1's levels; bad rules are named clearly."""

from __future__ import annotations

import pytest

from hospops.errors import UserError
from hospops.incidents.rules import load_rules, parse_rules


def view(**kw):
    base = {"source": "probe", "service": "portal", "gateway": {"ok": True, "status": 200, "body_status": "ok"},
            "hosts": [], "hosts_ok": 2, "hosts_total": 2, "payment": None, "db": None, "slow": False}
    return {**base, **kw}


@pytest.fixture(scope="module")
def rules():
    return load_rules()


@pytest.mark.parametrize("v, expected", [
    (view(), []),
    (view(service="ih", payment={"ok": False, "failed_hosts": ["ih1"]}, hosts_ok=1),
     [("ih:payment_failed", "L1"), ("ih:errors", "L3")]),
    (view(gateway={"ok": False, "status": 502, "body_status": None}), [("portal:unavailable", "L2"), ("portal:errors", "L3")]),
    (view(hosts_ok=0), [("portal:unavailable", "L2"), ("portal:errors", "L3")]),
    (view(hosts_ok=1), [("portal:errors", "L3")]),
    (view(slow=True), [("portal:errors", "L3")]),
    (view(service="db", gateway=None, hosts_total=0, hosts_ok=0, db={"ok": False}), [("db:db_unreachable", "L2")]),
    ({"source": "person", "service": "portal", "report": "usability"}, [("portal:usability", "L4")]),
    ({"source": "person", "service": "ih", "report": "payment_failed"}, [("ih:payment_failed", "L1")]),
    ({"source": "person", "service": "waiting", "report": "errors"}, [("waiting:errors", "L3")]),
])
def test_default_rules(rules, v, expected):
    assert [(m.fingerprint, m.level) for m in rules.classify(v)] == expected


def test_payment_rule_only_for_ih(rules):
    assert rules.classify(view(service="portal", payment={"ok": False})) == []


GOOD = {"name": "x", "level": "L2", "symptom": "down", "when": "gateway.ok == `false`", "title": "down"}


@pytest.mark.parametrize("change, words", [
    ({"level": "L5"}, ["'x'", "'level'", "L5"]),
    ({"when": "gateway.ok == "}, ["'x'", "'when'", "JMESPath does not compile"]),
    ({"when": None}, ["'x'", "'when'", "missing"]),
    ({"symptom": "Down Now"}, ["'symptom'"]),
    ({"colour": "red"}, ["'colour'", "not a rule field"]),
    ({"name": "Bad Name"}, ["'name'"]),
    ({"title": {"fr": "panne"}}, ["'title'", "fr"]),
])
def test_bad_rules_are_named(change, words):
    rule = {**GOOD, **change}
    with pytest.raises(UserError) as err:
        parse_rules({"rules": [GOOD | {"name": "first"}, rule]}, "rules.yml")
    text = str(err.value)
    assert "rules.yml" in text and "#2" in text
    for w in words:
        assert w in text


def test_duplicate_names_and_empty_files():
    with pytest.raises(UserError, match="used by an earlier rule"):
        parse_rules({"rules": [GOOD, GOOD]}, "r.yml")
    with pytest.raises(UserError, match="non-empty list 'rules'"):
        parse_rules({}, "r.yml")


def test_rules_file_from_disk(tmp_path):
    p = tmp_path / "rules.yml"
    p.write_text("rules:\n  - {name: a, level: L3, symptom: s, when: 'slow', title: t}\n", encoding="utf-8")
    assert [r.name for r in load_rules(p).rules] == ["a"]
    p.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(UserError, match="not valid YAML"):
        load_rules(p)
    with pytest.raises(UserError, match="does not exist"):
        load_rules(tmp_path / "missing.yml")
