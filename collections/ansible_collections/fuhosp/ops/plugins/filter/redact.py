# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: redact
short_description: Replace patient data in a string with tokens
version_added: 0.1.0
author: fuhosp.ops maintainers (@fuhosp)
description:
  - Replaces mainland resident ID-card numbers, mobile numbers, bank card numbers, medical record
    numbers, names after field labels and (when asked) e-mail addresses with tokens such as
    C([PHONE:0f3b5d21]), using the same engine as the M(fuhosp.ops.log_redact) module.
  - Token suffixes are keyed hashes. Without O(salt), the key is drawn at random once per Python process
    (a callback plugin, or one task's templating in a worker), so tokens can neither be reversed nor matched
    with anything outside that process. With O(salt), the same salt gives the same tokens as
    M(fuhosp.ops.log_redact) with that salt, so a notification can name the tokens found in a log bundle.
  - A list or dictionary is redacted value by value (keys are kept); an integer that is patient data
    (a phone number given as a number) becomes its token; other values pass through unchanged.
positional: kinds, patterns
options:
  _input:
    description: The text (or list or dictionary of texts) to redact.
    type: raw
    required: true
  kinds:
    description: Which kinds of patient data to redact.
    type: list
    elements: str
    choices: [id_card, phone, bank_card, mrn, name, email]
    default: [id_card, phone, bank_card, mrn, name]
  patterns:
    description:
      - Extra regular expressions for medical record numbers, added to the defaults (see M(fuhosp.ops.log_redact)).
      - If a pattern has a capturing group, only that group is replaced.
    type: list
    elements: str
    default: []
  name_fields:
    description: Field labels whose values are names; replaces the default list (see M(fuhosp.ops.log_redact)).
    type: list
    elements: str
  salt:
    description:
      - Key for the token hashes (see above). Keep it secret, as for M(fuhosp.ops.log_redact).
    type: str
'''

EXAMPLES = r'''
- name: Redact a message before it goes into a notification
  ansible.builtin.debug:
    msg: "{{ '患者：张三 手机 13812345678 病案号：12345678' | fuhosp.ops.redact }}"
    # -> "患者：[NAME:6c1e0a9b] 手机 [PHONE:0f3b5d21] 病案号：[MRN:5a1f3c7e]"

- name: Only phone numbers, with an extra record-number format
  ansible.builtin.debug:
    msg: "{{ incident_summary | fuhosp.ops.redact(['phone', 'mrn'], ['VISIT-\\d{8}']) }}"

- name: A whole registered result, value by value
  ansible.builtin.set_fact:
    safe_result: "{{ probe_result | fuhosp.ops.redact(name_fields=['patient_name', 'contact']) }}"

- name: Same tokens as the log bundle redacted with the same salt
  ansible.builtin.debug:
    msg: "{{ fault_summary | fuhosp.ops.redact(salt=log_bundle_salt) }}"
'''

RETURN = r'''
_value:
  description: The input with patient data replaced by tokens (same shape as the input).
  type: raw
'''

import os

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.fuhosp.ops.plugins.module_utils._redact import DEFAULT_KINDS, RedactError, Redactor

_SALT = os.urandom(32)
_REDACTORS = {}


def _redactor(kinds, patterns, name_fields, salt):
    key = (tuple(kinds), tuple(patterns), None if name_fields is None else tuple(name_fields), salt)
    redactor = _REDACTORS.get(key)
    if redactor is None:
        config = {"salt": _SALT if salt is None else salt, "kinds": kinds, "extra_mrn_patterns": patterns}
        if name_fields is not None:
            config["name_fields"] = name_fields
        redactor = Redactor(config)
        if len(_REDACTORS) > 32:
            _REDACTORS.clear()
        _REDACTORS[key] = redactor
    return redactor


def _walk(value, redactor):
    if isinstance(value, str):
        return redactor.redact_text(to_text(value, errors="surrogate_or_strict"))
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        text = str(value)
        redacted = redactor.redact_text(text)
        return value if redacted == text else redacted
    if isinstance(value, dict):
        return dict((k, _walk(v, redactor)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_walk(v, redactor) for v in value]
    return value


def _strings(name, value):
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise AnsibleFilterError("redact: %s must be a list of strings, got %r" % (name, value))
    return [to_text(v) for v in value]


def redact(value, kinds=None, patterns=None, name_fields=None, salt=None):
    """Replace patient data in ``value`` with tokens."""
    kinds = _strings("kinds", kinds) or list(DEFAULT_KINDS)
    patterns = _strings("patterns", patterns) or []
    name_fields = _strings("name_fields", name_fields)
    if salt is not None:
        if not isinstance(salt, str) or not salt:
            raise AnsibleFilterError("redact: salt must be a non-empty string")
        salt = to_text(salt)
    try:
        redactor = _redactor(kinds, patterns, name_fields, salt)
    except RedactError as exc:
        raise AnsibleFilterError("redact: %s" % exc)
    return _walk(value, redactor)


class FilterModule(object):
    """Patient-data redaction."""

    def filters(self):
        return {"redact": redact}
