#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: log_redact
short_description: Write patient-data-redacted copies of log files on the managed host
version_added: 0.1.0
description:
  - Reads log files on the managed host and writes redacted copies under O(dest_dir), so that logs
    can be sent to the developers (contract clause 7.7.2 E) without patient data leaving the host
    (contract clause 1, confidentiality).
  - "Redacts mainland resident ID-card numbers (18 characters, GB 11643-1999 checksum and a plausible
    birth date; an 18-digit number that fails either is left alone), mobile numbers (C(1[3-9]) and 9 digits,
    optionally C(+86)), bank card numbers (13 to 19 digits, Luhn-valid, optionally grouped by spaces or
    dashes), medical record numbers (regular expressions), names after configured field labels and,
    when asked, e-mail addresses."
  - "Each value becomes a token such as C([ID-CARD:1a2b3c4d]): the suffix is an HMAC-SHA256 of the value
    keyed with a per-run salt, so one patient gives one token within a bundle, but tokens can neither be
    reversed nor matched across bundles. The salt is never written out."
  - Only redacted copies are written, with mode C(0600) in directories with mode C(0700). A copy is
    C(dest_dir) followed by the source's absolute path. Files under O(dest_dir) are never read as sources.
    Files ending in C(.gz) are read and written gzip-compressed.
  - Writes O(dest_dir)/C(redaction_report.json) with the counts by kind and per file, the time window,
    line and byte counts and the SHA-256 of each copy; never a redacted value.
  - An existing copy whose content would not change is left alone, so a run with a fixed O(salt) on
    unchanged logs reports no change.
author:
  - fuhosp.ops maintainers (@fuhosp)
options:
  src:
    description:
      - Absolute paths or glob patterns of the log files to redact.
      - A path or pattern that matches nothing gives a warning, not a failure.
    type: list
    elements: str
    required: true
    version_added: 0.1.0
  dest_dir:
    description:
      - Directory that receives the redacted copies and the report; created (mode C(0700)) if missing.
    type: path
    required: true
    version_added: 0.1.0
  since:
    description:
      - Keep only lines at or after this time, as an ISO timestamp (C(2026-11-25T17:00:00+08:00),
        C(2026-11-25 17:00) or C(2026-11-25)). Without an offset it is the managed host's local time.
      - "A line's time is the timestamp it starts with (ISO, C(2026/11/25 17:00:00), C(25/Nov/2026:17:00:00),
        syslog C(Nov 25 17:00:00)). A line without one belongs to the previous line's window (stack traces);
        lines before the first timestamped line of a file are kept."
    type: str
    version_added: 0.1.0
  until:
    description:
      - Keep only lines at or before this time; same format as O(since). A date alone means the end of that day.
    type: str
    version_added: 0.1.0
  patterns:
    description:
      - Extra regular expressions (Python syntax) for medical record numbers, added to the defaults, which
        match C(MRN) followed by 6 to 10 digits (replaced whole) and the labels C(病案号) and C(住院号) with an
        optional colon followed by up to three letters and 6 to 12 digits (the number is replaced, the label kept).
      - If a pattern has a capturing group, only the first group that took part in the match is replaced
        (the label is kept); otherwise the whole match is replaced. Back-references are not supported.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  name_fields:
    description:
      - Field labels whose values are patient names; replaces the default list
        C(患者), C(姓名), C(就诊人), C(patient_name), C(patientName), C(name).
      - "Each label is recognised as C(\"label\": \"value\") (JSON), C(<label>value</label>),
        C(label=value) or C(label: value); a Chinese label also as C(患者张三). The value is replaced and the
        label kept. ASCII labels also match in lower case, upper case and with a capital first letter."
    type: list
    elements: str
    version_added: 0.1.0
  salt:
    description:
      - Key for the token hashes. Give the same salt to several tasks of one bundle to get the same
        tokens for the same patient across its files; by default each run uses a fresh random salt.
      - Never logged, never written to the report.
    type: str
    version_added: 0.1.0
  kinds:
    description:
      - Which kinds of patient data to redact.
    type: list
    elements: str
    choices: [id_card, phone, bank_card, mrn, name, email]
    default: [id_card, phone, bank_card, mrn, name]
    version_added: 0.1.0
  encoding:
    description:
      - Text encoding of the logs (a Python codec name, for example C(gb18030)). Bytes that are not valid
        in it are copied through unchanged; they never stop the run.
    type: str
    default: utf-8
    version_added: 0.1.0
attributes:
  check_mode:
    support: full
    description: Reads and redacts in memory, returns the counts, writes nothing.
  diff_mode:
    support: none
    description: The copies are new files of redacted text; their counts are returned instead of a diff.
  platform:
    support: full
    platforms: posix
    description: Runs on POSIX managed hosts with Python 3.6 or later and nothing else installed.
notes:
  - The redaction engine is C(plugins/module_utils/_redact.py) (pure Python standard library, Python 3.6+);
    the filter P(fuhosp.ops.redact#filter) uses the same engine on the controller.
seealso:
  - plugin: fuhosp.ops.redact
    plugin_type: filter
'''

EXAMPLES = r'''
- name: Redact the last hours of the internet hospital's logs into the bundle directory
  fuhosp.ops.log_redact:
    src:
      - /var/log/ih/*.log
      - /var/log/nginx/error.log
    dest_dir: /var/tmp/log_bundle/ih-20261125
    since: "2026-11-25T02:00:00+08:00"
    until: "2026-11-25T09:00:00+08:00"
  register: redacted

- name: Show what was redacted (counts only)
  ansible.builtin.debug:
    var: redacted.counts

- name: One salt for several tasks of one bundle, extra record-number format, e-mail too
  fuhosp.ops.log_redact:
    src: [/var/log/portal/app.log.1.gz]
    dest_dir: /var/tmp/log_bundle/portal
    patterns:
      - 'VISIT-\d{8}'
      - 'cardNo=(\d{6,12})'
    name_fields: [患者, 姓名, patient_name, contactName]
    kinds: [id_card, phone, bank_card, mrn, name, email]
    salt: "{{ log_bundle_salt }}"
'''

RETURN = r'''
counts:
  description: Values replaced, by kind, over all files.
  returned: always
  type: dict
  sample: {"bank_card": 2, "id_card": 5, "mrn": 3, "name": 7, "phone": 11}
files:
  description: One entry per source file redacted.
  returned: always
  type: list
  elements: dict
  contains:
    src:
      description: The source file.
      type: str
      sample: /var/log/ih/app.log
    dest:
      description: The redacted copy.
      type: str
      sample: /var/tmp/log_bundle/ih-20261125/var/log/ih/app.log
    changed:
      description: Whether the copy was (or in check mode would be) written.
      type: bool
    counts:
      description: Values replaced in this file, by kind.
      type: dict
    lines_read:
      description: Lines read from the source.
      type: int
    lines_written:
      description: Lines in the copy (after the time window).
      type: int
    bytes_read:
      description: Bytes read (uncompressed).
      type: int
    bytes_written:
      description: Bytes of redacted text (uncompressed).
      type: int
    sha256:
      description: SHA-256 of the redacted text (uncompressed).
      type: str
report:
  description: Path of the JSON report (counts by kind and per file, never values).
  returned: always
  type: str
  sample: /var/tmp/log_bundle/ih-20261125/redaction_report.json
dest_dir:
  description: The directory of the copies, as an absolute path.
  returned: always
  type: str
  sample: /var/tmp/log_bundle/ih-20261125
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fuhosp.ops.plugins.module_utils._redact import (
    RedactError,
    log_redact_argument_spec,
    run_log_redact,
)


def main():
    module = AnsibleModule(argument_spec=log_redact_argument_spec(), supports_check_mode=True)
    try:
        result = run_log_redact(module.params, check_mode=module.check_mode)
    except RedactError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
