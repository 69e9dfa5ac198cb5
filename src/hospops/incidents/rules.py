"""The incident classifier (7.7.1): rules kept in YAML, JMESPath expressions over a probe view.

A rules file::

    rules:
      - name: ih-payment-failed          # unique, [a-z0-9-]
        level: L1                        # L1..L4
        symptom: payment_failed          # the symptom class: fingerprint = "<service>:<symptom>"
        when: "payment.ok == `false`"    # JMESPath over the view; truthy = matches
        title: {zh: ..., en: ...}        # what happened
        impact: {zh: ..., en: ...}       # what it means for the hospital
        advice: {zh: ..., en: ...}       # what the hospital should do

The view a probe builds for one service object (see hospops.probes.service_view)::

    {"source": "probe", "service": "ih", "gateway": {"ok", "status", "latency_ms", "error", "body_status"},
     "hosts": [{"host", "ok", "status", "latency_ms", "error", "body_status"}], "hosts_ok": 1, "hosts_total": 2,
     "payment": {"ok", "failed_hosts", "error"} | null, "db": {"ok", "error", "latency_ms"} | null,
     "slow": false}

A report by a person: ``{"source": "person", "service": "portal", "report": "usability"}`` where
report is one of payment_failed, unavailable, errors, usability.

Rules are validated on load; a bad rule is named with its field and what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import jmespath
import yaml
from jmespath.exceptions import JMESPathError

from hospops.errors import UserError

LEVELS = ("L1", "L2", "L3", "L4")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SYMPTOM = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELDS = {"name", "level", "symptom", "when", "title", "impact", "advice", "service"}
_REQUIRED = ("name", "level", "symptom", "when", "title")


@dataclass(frozen=True)
class Rule:
    name: str
    level: str
    symptom: str
    when: str
    title: Mapping[str, str]
    impact: Mapping[str, str]
    advice: Mapping[str, str]
    service: str | None
    _compiled: Any

    def matches(self, view: Mapping[str, Any]) -> bool:
        if self.service and view.get("service") != self.service:
            return False
        try:
            return bool(self._compiled.search(dict(view)))
        except JMESPathError:
            return False  # e.g. comparing a number with null on a partial view: not a match

    def text(self, what: str, lang: str = "zh") -> str:
        d = getattr(self, what)
        return d.get(lang) or d.get("zh") or d.get("en") or ""


@dataclass(frozen=True)
class Match:
    rule: Rule
    service: str

    @property
    def level(self) -> str:
        return self.rule.level

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.service, self.rule.symptom)


def fingerprint(service: str, symptom: str) -> str:
    return f"{service}:{symptom}"


class RuleSet:
    def __init__(self, rules: list[Rule], source: str) -> None:
        self.rules = rules
        self.source = source

    def classify(self, view: Mapping[str, Any]) -> list[Match]:
        """All matching rules, one per symptom (the first rule of a symptom wins), most severe first."""
        seen: dict[str, Match] = {}
        for rule in self.rules:
            if rule.symptom not in seen and rule.matches(view):
                seen[rule.symptom] = Match(rule, str(view.get("service")))
        return sorted(seen.values(), key=lambda m: LEVELS.index(m.level))

    def by_symptom(self, symptom: str) -> Rule | None:
        return next((r for r in self.rules if r.symptom == symptom), None)


def _texts(rule_name: str, idx: int, key: str, value: Any, where: str, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if isinstance(value, str):
        return {"zh": value}
    if not isinstance(value, Mapping) or not value or not all(isinstance(v, str) for v in value.values()):
        raise UserError(f"{where}: rule {rule_name!r} (#{idx}) field '{key}': expected text or {{zh: ..., en: ...}}",
                        "give the text in Chinese (zh) and optionally English (en)")
    bad = set(value) - {"zh", "en"}
    if bad:
        raise UserError(f"{where}: rule {rule_name!r} (#{idx}) field '{key}': unknown language(s) {sorted(bad)}",
                        "use zh and en")
    return dict(value)


def parse_rules(data: Any, where: str) -> RuleSet:
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise UserError(f"{where}: expected a mapping with a non-empty list 'rules'", "see hospops/data/incident_rules.yml")
    rules: list[Rule] = []
    names: set[str] = set()
    for idx, raw in enumerate(data["rules"], start=1):
        if not isinstance(raw, Mapping):
            raise UserError(f"{where}: rule #{idx} is not a mapping", "each rule is name/level/symptom/when/title")
        name = str(raw.get("name") or f"#{idx}")

        def bad(field: str, why: str, fix: str) -> UserError:
            return UserError(f"{where}: rule {name!r} (#{idx}) field '{field}': {why}", fix)

        for key in _REQUIRED:
            if raw.get(key) in (None, ""):
                raise bad(key, "is missing", f"every rule needs {', '.join(_REQUIRED)}")
        unknown = set(raw) - _FIELDS
        if unknown:
            raise bad(sorted(unknown)[0], "is not a rule field", f"use only {', '.join(sorted(_FIELDS))}")
        if not _NAME.match(name):
            raise bad("name", f"{name!r} is not lower-case letters, digits and '-'", "e.g. ih-payment-failed")
        if name in names:
            raise bad("name", "is used by an earlier rule", "give each rule its own name")
        names.add(name)
        level = str(raw["level"]).upper()
        if level not in LEVELS:
            raise bad("level", f"{raw['level']!r} is not one of {', '.join(LEVELS)}", "7.7.1 has four levels: L1..L4")
        symptom = str(raw["symptom"])
        if not _SYMPTOM.match(symptom):
            raise bad("symptom", f"{symptom!r} is not a lower-case identifier", "e.g. payment_failed")
        when = raw["when"]
        if not isinstance(when, str):
            raise bad("when", "must be a JMESPath expression (text)", "quote it in YAML")
        try:
            compiled = jmespath.compile(when)
        except JMESPathError as exc:
            raise bad("when", f"JMESPath does not compile: {exc}".replace("\n", " "),
                      "check the expression; literals go in backticks, e.g. payment.ok == `false`") from exc
        rules.append(Rule(name=name, level=level, symptom=symptom, when=when,
                          title=_texts(name, idx, "title", raw.get("title"), where, True),
                          impact=_texts(name, idx, "impact", raw.get("impact"), where, False),
                          advice=_texts(name, idx, "advice", raw.get("advice"), where, False),
                          service=str(raw["service"]) if raw.get("service") else None,
                          _compiled=compiled))
    return RuleSet(rules, where)


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Rules from a file, else the packaged defaults (hospops/data/incident_rules.yml)."""
    if path:
        p = Path(path)
        if not p.exists():
            raise UserError(f"incident rules file {p} does not exist", "set hospops_incident_rules to an existing file")
        text, where = p.read_text(encoding="utf-8"), str(p)
    else:
        text = resources.files("hospops").joinpath("data", "incident_rules.yml").read_text(encoding="utf-8")
        where = "hospops/data/incident_rules.yml"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: not valid YAML: {exc}", "fix the YAML syntax") from exc
    return parse_rules(data, where)


def rules_from_inventory(inv) -> RuleSet:
    path = inv.var("hospops_incident_rules", None)
    if path and not Path(path).is_absolute():
        path = Path(inv.path) / path
    return load_rules(path)
