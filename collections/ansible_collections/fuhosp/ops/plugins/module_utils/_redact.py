# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Patient-data redaction engine for log bundles (contract clause 1; 7.7.2 E).

Pure standard library: it runs on managed hosts that have nothing but python3 (3.6 or later).

Use::

    r = Redactor({"salt": None})          # a fresh random salt: tokens are per bundle
    r.redact_line(u"患者：张三 手机 13812345678")
    # -> u"患者：[NAME:6c1e0a9b] 手机 [PHONE:0f3b5d21]"
    r.counts                               # {"name": 1, "phone": 1, ...}
    redact_file("/var/log/app.log", "/tmp/bundle/app.log", r)   # -> counts for this file

A value becomes ``[KIND:xxxxxxxx]``: the suffix is HMAC-SHA256(salt, kind + value), truncated, so one
patient gives one token within a bundle, but tokens cannot be reversed nor matched across bundles
(every bundle has its own salt, which is never written out).

How it stays fast: each pass is one precompiled regular expression whose first character class lets
the C scanner skip ordinary text; Python code runs only for candidates. Text is redacted a block of
whole lines at a time, which is exactly equivalent to line by line (no detector crosses a newline).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import codecs
import datetime
import glob
import gzip
import hashlib
import hmac
import json
import os
import re
import sys
import tempfile

KINDS = ("id_card", "phone", "bank_card", "mrn", "name", "email")
DEFAULT_KINDS = ("id_card", "phone", "bank_card", "mrn", "name")
TOKEN_LABELS = {
    "id_card": "ID-CARD",
    "phone": "PHONE",
    "bank_card": "BANK-CARD",
    "mrn": "MRN",
    "name": "NAME",
    "email": "EMAIL",
}

# A capturing group in a pattern marks the value to replace (the label before it is kept);
# a pattern without one is replaced whole.
DEFAULT_MRN_PATTERNS = (
    u"MRN[:：#=]?[ \\t]*\\d{6,10}",
    # Hospitals often prefix record numbers with letters (BA2016470790, ZY123456): keep them in.
    u"病案号[:：]?[ \\t]*([A-Za-z]{0,3}\\d{6,12})",
    u"住院号[:：]?[ \\t]*([A-Za-z]{0,3}\\d{6,12})",
)
DEFAULT_NAME_FIELDS = (u"患者", u"姓名", u"就诊人", u"patient_name", u"patientName", u"name")

# Card-network first digits (2/5 Mastercard, 3 Amex/JCB, 4 Visa, 6 UnionPay, 9 domestic debit).
# Leaving out 1, 7, 8 and 0 keeps millisecond timestamps and most serial numbers out.
DEFAULT_CARD_FIRST_DIGITS = "234569"

DEFAULT_CONFIG = {
    "salt": None,
    "kinds": DEFAULT_KINDS,
    "mrn_patterns": DEFAULT_MRN_PATTERNS,
    "extra_mrn_patterns": (),
    "name_fields": DEFAULT_NAME_FIELDS,
    "id15": False,
    "card_first_digits": DEFAULT_CARD_FIRST_DIGITS,
    "token_length": 8,
}

REPORT_NAME = "redaction_report.json"
CHUNK_SIZE = 1 << 20          # characters read per block
MAX_LINE = 4 << 20            # a longer line is cut (at whitespace when possible)

_HAN = u"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# After a Chinese label with no separator ("患者张三"), these words are not a name.
_HAN_STOP = (
    u"信息|列表|管理|编号|姓名|名|档案|服务|主诉|须知|来源|类型|状态|挂号|就诊|支付|缴费|付款|退款|取消|"
    u"预约|签到|登录|注册|评价|查询|身份|证件|手机|电话|年龄|性别|地址|人数|总数|数量|端|数|总|卡|号|"
    u"不|未|已|在|的|与|和|及|或|可|需|应|将|被|无|有|等|对|从|为|是|请|提交|申请|订单|结算|随访|满意|"
    u"反馈|记录|数据|统计|满|个|们|均|也|都|还|又|再|即|但|若|如|因|由|于|了|过|给|向|到|自|要"
)
_LATIN_NAME = u"([A-Z][A-Za-z'.\\-]*(?: [A-Z][A-Za-z'.\\-]*){1,3})(?![A-Za-z0-9_])"
_VALUE_CHAR = u"[^\\s&,;，；。、\"'|<>()\\[\\]{}:：=]"
_KV_VALUE = (
    u'(?:"([^"\\n]{1,64})"'
    u"|'([^'\\n]{1,64})'"
    u"|" + _LATIN_NAME +
    u"|(?!(?:null|None|nil|undefined|-)(?!" + _VALUE_CHAR + u"))"
    u"(" + _VALUE_CHAR + u"{1,64}))"
)
_KV_GROUPS = 4

# Candidates for numbers. The first character is a plain class, so the C scanner skips other text.
# Alternatives: 18 characters shaped like an ID number (birth year 19xx/20xx, month, day; first, so
# that 17 digits + X is not taken as 17 digits); a contiguous run of 11-17 or 19 digits (other 18-digit
# runs are order numbers or timestamps, never redacted); a run grouped
# by spaces or dashes (phones 3-4-4, cards 4-4-4-4[-3], "+86 " prefixes) or 86 + separator + 11 digits.
_ID_TAIL = u"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])"
_GROUPED = u"[ \\-](?:[0-9]{3,4}[ \\-][0-9]{4}(?:[ \\-][0-9]{1,4}){0,2}|[0-9]{11})(?![0-9])"
_NUMBER_RX = (
    u"[0-9+](?<![0-9][0-9+])"
    u"(?:(?<=[1-9])[0-9]{5}" + _ID_TAIL +
    u"|[0-9]{10,16}(?![0-9])"
    u"|[0-9]{18}(?![0-9])"
    u"|[0-9]{0,3}" + _GROUPED + u")"
)
# The same language with a shared possessive prefix (Python 3.11+), about twice as fast: a run of 4+
# digits gives exactly 3 to the first repeat (possessive: no backtracking to fewer), so 7-13 more make
# 11-17 in all, 15 more make 19. tests/unit/test_redact.py checks both give the same matches.
_NUMBER_RX_POSSESSIVE = (
    u"[0-9+](?<![0-9][0-9+])[0-9]{0,3}+"
    u"(?:(?<=[1-9][0-9]{3})[0-9]{2}" + _ID_TAIL +
    u"|[0-9]{7,13}+(?![0-9])"
    u"|[0-9]{15}(?![0-9])"
    u"|" + _GROUPED + u")"
)
_POSSESSIVE = sys.version_info >= (3, 11)
_SEPARATOR = re.compile(u"[ \\-]")
_ASCII_LETTERS = frozenset(u"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_NUMBER_STRIP = dict((ord(c), None) for c in u" -+")

_EMAIL_AT_RX = (
    u"@[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,62}[A-Za-z0-9])?"
    u"(?:\\.[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,62}[A-Za-z0-9])?)*\\.[A-Za-z]{2,24}(?![A-Za-z0-9\\-])"
)
_EMAIL_LOCAL = re.compile(u"[A-Za-z0-9._%+\\-]{1,64}\\Z")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_AREAS = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82 83 91".split()
)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_UNSUPPORTED_IN_PATTERN = re.compile(r"\(\?P=|\(\?\(|(?<!\\)(?:\\\\)*\\[1-9]")
_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")
_LEADING_FLAGS = re.compile(r"\A\(\?([aiLmsux]+)\)")
_TRAILING_DIGITS = re.compile(r"(\d+)\Z")
_LITERAL_START = re.compile(u"[^\\\\.^$*+?{}\\[\\]|()]")


class RedactError(Exception):
    """A configuration or input problem, worded for the operator."""


# --------------------------------------------------------------------------------------------------
# validators


def _plausible_date(year, month, day, max_year):
    if year < 1900 or year > max_year or month < 1 or month > 12 or day < 1:
        return False
    if day > _MONTH_DAYS[month - 1]:
        return False
    if month == 2 and day == 29:
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return True


def id_card_shaped(number, max_year=None):
    """18 characters with a known province code and a plausible birth date (checksum not looked at)."""
    if len(number) != 18 or not number[:17].isdigit() or number[:2] not in _ID_AREAS:
        return False
    if max_year is None:
        max_year = datetime.date.today().year
    return _plausible_date(int(number[6:10]), int(number[10:12]), int(number[12:14]), max_year)


def id_card_checksum_ok(number):
    """GB 11643-1999 check character (ISO 7064 MOD 11-2) of an 18-character ID number."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = 0
    for i in range(17):
        total += (ord(number[i]) - 48) * _ID_WEIGHTS[i]
    return _ID_CHECK[total % 11] == number[17].upper()


def id_card_valid(number, max_year=None):
    """A mainland resident ID number: shape, birth date and checksum."""
    return id_card_shaped(number, max_year) and id_card_checksum_ok(number)


def id_card_check_char(first17):
    """The check character for 17 digits (used by tests and generators)."""
    total = 0
    for i in range(17):
        total += (ord(first17[i]) - 48) * _ID_WEIGHTS[i]
    return _ID_CHECK[total % 11]


def old_id_card_valid(number, max_year=None):
    """The 15-digit first-generation ID: province code and a 19YYMMDD birth date (no checksum)."""
    if len(number) != 15 or not number.isdigit() or number[:2] not in _ID_AREAS:
        return False
    return _plausible_date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]), 1999)


def luhn_ok(digits):
    """Luhn (mod 10) checksum of a digit string."""
    total = 0
    double = False
    for ch in reversed(digits):
        n = ord(ch) - 48
        if double:
            n *= 2
            if n > 9:
                n -= 9
        total += n
        double = not double
    return total % 10 == 0


def luhn_check_digit(payload):
    """The digit that makes payload + digit Luhn-valid (used by tests and generators)."""
    for d in "0123456789":
        if luhn_ok(payload + d):
            return d
    raise ValueError("no Luhn digit")  # pragma: no cover


# --------------------------------------------------------------------------------------------------
# the engine


def _prepare_pattern(pattern):
    """Make a user pattern fit into one combined alternation; returns (text, groups, literal_start)."""
    if not isinstance(pattern, str) or not pattern:
        raise RedactError("a redaction pattern must be a non-empty string, got %r" % (pattern,))
    if _UNSUPPORTED_IN_PATTERN.search(pattern):
        raise RedactError("pattern %r uses a back-reference or a conditional group, which redaction "
                          "patterns do not support; rewrite it without one" % pattern)
    text = _NAMED_GROUP.sub("(", pattern)
    flags = _LEADING_FLAGS.match(text)
    if flags:
        text = "(?%s:%s)" % (flags.group(1), text[flags.end():])
    try:
        compiled = re.compile(text, re.M)
    except re.error as exc:
        raise RedactError("pattern %r is not a valid regular expression: %s" % (pattern, exc))
    if compiled.match(""):
        raise RedactError("pattern %r matches the empty string; it would redact nothing useful" % pattern)
    literal_start = bool(_LITERAL_START.match(text)) and text[1:2] not in ("*", "+", "?", "{")
    return text, compiled.groups, literal_start


def _label_variants(field):
    variants = [field]
    if re.match(r"\A[\x21-\x7e]+\Z", field):
        for v in (field.lower(), field.upper(), field[:1].upper() + field[1:]):
            if v not in variants:
                variants.append(v)
    return variants


def _name_branches(field):
    """(regex, number of value groups) for one name field label, in each syntax it is written in."""
    if not isinstance(field, str) or not field.strip():
        raise RedactError("a name field must be a non-empty string, got %r" % (field,))
    field = field.strip()
    branches = []
    for label in _label_variants(field):
        esc = re.escape(label)
        if re.match(r"\A[\x21-\x7e]+\Z", label):
            # "patient_name": "..."   <patientName>...</patientName>   name=... / name: ... / 'name': '...'
            branches.append((u'"%s"[ \\t]*:[ \\t]*"((?:[^"\\\\\\n]|\\\\.){1,128})"' % esc, 1))
            branches.append((u"<%s>([^<\\n]{1,128})</%s>" % (esc, esc), 1))
            # the label is consumed first, then checked not to end a longer word: keeps a literal start
            first = re.escape(label[0])
            branches.append((u"%s(?<![A-Za-z0-9_]%s)%s['\"]?[ \\t]*[=:：][ \\t]*%s"
                             % (first, first, re.escape(label[1:]), _KV_VALUE), _KV_GROUPS))
        else:
            # 患者：张三 / 患者: Zhang San / 患者张三 / 患者 Zhang San (no separator: 2-3 Han characters,
            # minus common words, or capitalised words)
            branches.append((u"%s[ \\t]*(?:[:：=][ \\t]*%s|(?!%s)([%s][%s·]{1,2})|%s)"
                             % (esc, _KV_VALUE, _HAN_STOP, _HAN, _HAN, _LATIN_NAME), _KV_GROUPS + 2))
    return branches


def _first_char(text):
    return text[:2] if text[0] == "\\" else text[0]


def _factor(branches):
    """Group alternatives by their literal first character: ``a1|a2|b1`` -> ``a(?:1|2)|b1``.

    The same language in the same order (alternatives with different first characters never match at
    one position), but the regex engine then tests one character instead of every alternative.
    ``branches`` are (kind, text, groups); returns them reordered as they appear, and the regex text."""
    order, groups = [], {}
    for branch in branches:
        first = _first_char(branch[1])
        if first not in groups:
            groups[first] = []
            order.append(first)
        groups[first].append(branch)
    ordered, parts = [], []
    for first in order:
        members = groups[first]
        ordered.extend(members)
        rests = [u"%s()" % b[1][len(first):] for b in members]
        parts.append(first + rests[0] if len(rests) == 1 else u"%s(?:%s)" % (first, u"|".join(rests)))
    return ordered, u"|".join(parts)


class _Pass(object):
    """One combined regular expression; each alternative ends with an empty marker group whose index
    (``m.lastindex``) says which alternative matched and where its value groups are."""

    def __init__(self, branches, token, factor):
        if factor:
            branches, text = _factor(branches)
        else:
            text = u"|".join(u"%s()" % b[1] for b in branches)
        self.branch = {}
        count = 0
        for kind, _text, groups in branches:
            self.branch[count + groups + 1] = (kind, count + 1, count + groups)
            count += groups + 1
        self.regex = re.compile(text, re.M)
        if self.regex.groups != count:
            raise RedactError("internal error: %d groups expected, %d found" % (count, self.regex.groups))
        self._token = token

    def _callback(self, m):
        text = m.group(0)
        if u"\n" in text:       # a user pattern crossed a line end: redact each line on its own
            return u"\n".join(self.regex.sub(self._callback, piece) for piece in text.split(u"\n"))
        kind, first, last = self.branch[m.lastindex]
        base = m.start()
        for g in range(first, last + 1):
            start = m.start(g)
            if start != -1:
                value = _normalise(kind, m.group(g))
                return text[:start - base] + self._token(kind, value) + text[m.end(g) - base:]
        return self._token(kind, _normalise(kind, text))

    def run(self, text):
        return self.regex.sub(self._callback, text)


class _NumberPass(object):
    """ID cards, phones and bank cards: one scan for number candidates, Python only to classify them."""

    def __init__(self, classify, token):
        self.regex = re.compile(_NUMBER_RX_POSSESSIVE if _POSSESSIVE else _NUMBER_RX)
        self._classify = classify
        self._token = token

    def _callback(self, m):
        text = m.group(0)
        string = m.string
        start = m.start()
        end = m.end()
        if start > 1 and string[start - 1] == u"." and u"0" <= string[start - 2] <= u"9":
            return text         # the fraction of a decimal number
        glued = ((start > 0 and string[start - 1] in _ASCII_LETTERS)
                 or (end < len(string) and string[end] in _ASCII_LETTERS))
        kind, value = self._classify(text, glued)
        if kind is not None:
            return self._token(kind, value)
        sep = _SEPARATOR.search(text)
        if sep is None:
            return text
        # a rejected grouped candidate may still end in a number of its own ("12 13812345678")
        return text[:sep.end()] + self.regex.sub(self._callback, text[sep.end():])

    def run(self, text):
        return self.regex.sub(self._callback, text)


class _EmailPass(object):
    """E-mail addresses: the scan looks for '@' + domain, then reaches back for the local part."""

    def __init__(self, token):
        self.regex = re.compile(_EMAIL_AT_RX)
        self._token = token

    def run(self, text):
        if u"@" not in text:
            return text
        out = []
        last = 0
        for m in self.regex.finditer(text):
            at = m.start()
            if at < last:
                continue
            local = _EMAIL_LOCAL.search(text, max(last, at - 64), at)
            if local is None:
                continue
            out.append(text[last:local.start()])
            out.append(self._token("email", (text[local.start():at] + m.group(0)).lower()))
            last = m.end()
        if not out:
            return text
        out.append(text[last:])
        return u"".join(out)


class Redactor(object):
    """Redacts patient data from text.

    ``config`` keys (all optional): ``salt`` (str or bytes; random when None), ``kinds`` (subset of
    KINDS), ``mrn_patterns`` (replaces the defaults), ``extra_mrn_patterns`` (added to them),
    ``name_fields`` (labels whose values are names), ``id15`` (also the 15-digit old ID format),
    ``card_first_digits`` and ``token_length`` (6-10 hex characters).
    ``counts`` holds how many values of each kind were replaced so far.
    """

    def __init__(self, config=None):
        cfg = dict(DEFAULT_CONFIG)
        config = dict(config or {})
        unknown = sorted(set(config) - set(cfg))
        if unknown:
            raise RedactError("unknown redaction setting(s): %s; known: %s"
                              % (", ".join(unknown), ", ".join(sorted(cfg))))
        for key, value in config.items():
            if value is not None or key == "salt":
                cfg[key] = value
        kinds = tuple(cfg["kinds"])
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise RedactError("unknown redaction kind(s): %s; choose from %s" % (", ".join(bad), ", ".join(KINDS)))
        self.kinds = frozenset(kinds)
        length = int(cfg["token_length"])
        if not 6 <= length <= 10:
            # at most 10: a token's hex suffix can then never look like a phone or card number
            raise RedactError("token_length must be between 6 and 10, got %d" % length)
        self._length = length
        salt = cfg["salt"]
        if salt is None or salt == "":
            salt = os.urandom(32)
        elif not isinstance(salt, bytes):
            salt = str(salt).encode("utf-8")
        self._key = salt
        self._id15 = bool(cfg["id15"])
        self._card_first = frozenset(str(cfg["card_first_digits"]))
        self._max_year = datetime.date.today().year
        self._tokens = {}
        self.counts = dict((k, 0) for k in KINDS if k in self.kinds)

        mrn_patterns = list(cfg["mrn_patterns"]) + list(cfg["extra_mrn_patterns"] or ())
        self.mrn_patterns = tuple(mrn_patterns)
        self.name_fields = tuple(cfg["name_fields"])
        literal, other = [], []
        if "mrn" in self.kinds:
            for pattern in mrn_patterns:
                text, groups, literal_start = _prepare_pattern(pattern)
                (literal if literal_start else other).append(("mrn", text, groups))
        if "name" in self.kinds:
            for field in self.name_fields:
                for text, groups in _name_branches(field):
                    literal.append(("name", text, groups))
        # order: labelled values first (the label gives the kind), then e-mail, then bare numbers
        self.passes = []
        if literal:
            self.passes.append(_Pass(literal, self.token, factor=True))
        if other:
            self.passes.append(_Pass(other, self.token, factor=False))
        if "email" in self.kinds:
            self.passes.append(_EmailPass(self.token))
        if self.kinds & set(("id_card", "phone", "bank_card")):
            self.passes.append(_NumberPass(self.classify_number, self.token))
        self._runs = [p.run for p in self.passes]

    def __repr__(self):
        return "Redactor(kinds=%s)" % sorted(self.kinds)

    # ---- tokens

    def token(self, kind, value):
        """The replacement token for a normalised value; counts it."""
        self.counts[kind] += 1
        key = (kind, value)
        tok = self._tokens.get(key)
        if tok is None:
            if len(self._tokens) > 200000:
                self._tokens.clear()
            digest = hmac.new(self._key, (kind + u"\x00" + value).encode("utf-8", "surrogateescape"),
                              hashlib.sha256).hexdigest()
            tok = u"[%s:%s]" % (TOKEN_LABELS[kind], digest[:self._length])
            self._tokens[key] = tok
        return tok

    def classify_number(self, text, glued=False):
        """(kind, normalised value) for a number candidate, or (None, None) to leave it alone.

        ``glued``: the candidate touches an ASCII letter (as digit runs inside hex trace IDs do);
        such a run is not taken for a bank card."""
        plus = text[0] == u"+"
        digits = text.translate(_NUMBER_STRIP)
        grouped = len(digits) + plus != len(text)
        n = len(digits)
        kinds = self.kinds
        if digits[-1] in u"Xx":
            if n == 18 and not plus and not grouped and "id_card" in kinds and id_card_valid(digits, self._max_year):
                return "id_card", digits.upper()
            return None, None
        if "phone" in kinds:
            if n == 11 and digits[0] == u"1" and digits[1] in u"3456789":
                return "phone", digits
            if n == 13 and digits[:3] == u"861" and digits[3] in u"3456789":
                return "phone", digits[2:]
        if plus:
            return None, None
        if n == 18 and not grouped and id_card_shaped(digits, self._max_year):
            if "id_card" in kinds and id_card_checksum_ok(digits):
                return "id_card", digits
            return None, None      # an order number or timestamp that only looks like an ID
        if n == 15 and self._id15 and not grouped and "id_card" in kinds and old_id_card_valid(digits):
            return "id_card", digits
        if n == 18 and not grouped:
            return None, None      # contiguous 18 digits: an ID number or nothing (order numbers, timestamps)
        if 13 <= n <= 19 and not glued and "bank_card" in kinds and digits[0] in self._card_first and luhn_ok(digits):
            return "bank_card", digits
        return None, None

    # ---- public

    def redact_line(self, line):
        """Redact one line (or any text: a block of whole lines gives the same result)."""
        if not isinstance(line, str):
            raise TypeError("redact_line() takes text (str), not %s" % type(line).__name__)
        for run in self._runs:
            line = run(line)
        return line

    redact_text = redact_line


def _normalise(kind, value):
    value = value.strip()
    if kind == "mrn":
        m = _TRAILING_DIGITS.search(value)
        return m.group(1) if m else value
    if kind == "name" and u"\\" in value:
        try:
            return json.loads(u'"%s"' % value).strip()
        except ValueError:
            return value
    return value


# --------------------------------------------------------------------------------------------------
# time window


_MONTHS = dict((m, i + 1) for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()))
_ISO_TS = re.compile(
    r"\[?(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?)?"
    r"[ ]?(Z|[+-]\d{2}(?::?\d{2})?(?![\d:]))?")
_DMY_TS = re.compile(
    r"\[?(\d{1,2})[-/ ](Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[-/ ](\d{4})[: ](\d{2}):(\d{2}):(\d{2})"
    r"(?:[.,](\d{1,6})\d*)?(?: ?([+-]\d{2}:?\d{2}))?")
_SYSLOG_TS = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})")


def _tz(text):
    if text is None:
        return None
    if text == "Z":
        return datetime.timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
    return datetime.timezone(sign * datetime.timedelta(minutes=minutes))


def _local_naive(year, month, day, hour, minute, second, frac, tz):
    micro = int((frac or "0").ljust(6, "0")[:6])
    value = datetime.datetime(year, month, day, hour, minute, second, micro, tz)
    if tz is not None:
        value = value.astimezone().replace(tzinfo=None)
    return value


def parse_timestamp(text):
    """An ISO-like timestamp ('2026-11-25T17:00:00+08:00', '2026-11-25 17:00', '2026-11-25') as a naive
    local datetime; values with an offset are converted to this host's local time."""
    text = (text or "").strip()
    m = _ISO_TS.match(text)
    if not m or m.end() != len(text) or text.startswith("["):
        raise RedactError("%r is not an ISO timestamp; write it like 2026-11-25T17:00:00+08:00 "
                          "or 2026-11-25 17:00" % text)
    g = m.groups()
    try:
        return _local_naive(int(g[0]), int(g[1]), int(g[2]), int(g[3] or 0), int(g[4] or 0), int(g[5] or 0),
                            g[6], _tz(g[7]))
    except ValueError as exc:
        raise RedactError("%r is not a valid timestamp: %s" % (text, exc))


class TimeWindow(object):
    """Keeps lines whose leading timestamp lies in [since, until]; a line without one belongs to the
    previous line's window (lines before the first timestamped line are kept)."""

    def __init__(self, since=None, until=None):
        self.since = parse_timestamp(since) if since else None
        self.until = None
        if until:
            self.until = parse_timestamp(until)
            if len(until.strip()) == 10:        # a date alone: the whole day
                self.until += datetime.timedelta(days=1, microseconds=-1)
        if self.since and self.until and self.since > self.until:
            raise RedactError("since (%s) is after until (%s); swap them" % (since, until))
        ref = self.until or self.since or datetime.datetime.now()
        self._ref = ref
        self._cache_key = None
        self._cache_value = None

    def line_time(self, line):
        """The timestamp a line starts with (naive local), or None."""
        m = _ISO_TS.match(line)
        if m and m.group(4) is not None:
            g = m.groups()
            key = g
            if key == self._cache_key:
                return self._cache_value
            try:
                value = _local_naive(int(g[0]), int(g[1]), int(g[2]), int(g[3]), int(g[4]), int(g[5] or 0),
                                     g[6], _tz(g[7]))
            except ValueError:
                return None
        else:
            m = _DMY_TS.match(line)
            if m:
                g = m.groups()
                try:
                    value = _local_naive(int(g[2]), _MONTHS[g[1]], int(g[0]), int(g[3]), int(g[4]), int(g[5]),
                                         g[6], _tz(g[7]))
                except ValueError:
                    return None
                key = g
            else:
                m = _SYSLOG_TS.match(line)
                if not m:
                    return None
                g = m.groups()
                key = g
                if key == self._cache_key:
                    return self._cache_value
                try:
                    value = datetime.datetime(self._ref.year, _MONTHS[g[0]], int(g[1]), int(g[2]), int(g[3]),
                                              int(g[4]))
                    if value - self._ref > datetime.timedelta(days=183):   # syslog has no year
                        value = value.replace(year=value.year - 1)
                except ValueError:
                    return None
        self._cache_key = key
        self._cache_value = value
        return value

    def contains(self, value):
        return (self.since is None or value >= self.since) and (self.until is None or value <= self.until)


# --------------------------------------------------------------------------------------------------
# files


class _GzipWriter(object):
    """A reproducible .gz writer (no name, no mtime in the header) that closes its file."""

    def __init__(self, path):
        self._raw = open(path, "wb")
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)

    def write(self, data):
        self._gz.write(data)

    def close(self):
        try:
            self._gz.close()
        finally:
            self._raw.close()


def _open_binary(path, mode):
    if path.endswith(".gz"):
        return _GzipWriter(path) if "w" in mode else gzip.open(path, "rb")
    return open(path, mode)


def _blocks(stream, encoding, chunk_size):
    """(text, raw byte count) blocks of whole lines; a line longer than MAX_LINE is cut."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    buf = u""
    while True:
        raw = stream.read(chunk_size)
        final = not raw
        buf += decoder.decode(raw, final)
        if final:
            if buf:
                yield buf
            return
        cut = buf.rfind(u"\n") + 1
        if cut == 0:
            if len(buf) < MAX_LINE:
                continue
            space = max(buf.rfind(u" ", MAX_LINE // 2), buf.rfind(u"\t", MAX_LINE // 2))
            cut = space + 1 if space > 0 else len(buf)
        yield buf[:cut]
        buf = buf[cut:]


class _Filter(object):
    """Applies a TimeWindow to consecutive blocks, carrying the state between them."""

    def __init__(self, window):
        self.window = window
        self.keep = True
        self.at_line_start = True

    def __call__(self, block):
        window = self.window
        pieces = block.split(u"\n")
        out = []
        last = len(pieces) - 1
        for i, line in enumerate(pieces):
            if i == last and not line:
                break
            if self.at_line_start:
                when = window.line_time(line)
                if when is not None:
                    self.keep = window.contains(when)
            if self.keep:
                out.append(line if i == last else line + u"\n")
            self.at_line_start = i != last
        return u"".join(out)


def redact_file_detailed(src, dst, redactor, window=None, encoding="utf-8", chunk_size=CHUNK_SIZE):
    """Stream ``src`` through ``redactor`` into ``dst`` (None: only count and hash).

    Returns counts (this file only), lines_read, lines_written, bytes_read, bytes_written and sha256
    (of the redacted text as written, uncompressed). ``.gz`` files are read and written compressed.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise RedactError("unknown encoding %r" % encoding)
    before = dict(redactor.counts)
    digest = hashlib.sha256()
    stats = {"lines_read": 0, "lines_written": 0, "bytes_read": 0, "bytes_written": 0}
    keep = _Filter(window) if window is not None and (window.since or window.until) else None
    out = _open_binary(dst, "wb") if dst is not None else None
    try:
        with _open_binary(src, "rb") as raw_in:
            reader = _CountingReader(raw_in)
            for block in _blocks(reader, encoding, chunk_size):
                stats["lines_read"] += block.count(u"\n")
                if keep is not None:
                    block = keep(block)
                    if not block:
                        continue
                text = redactor.redact_text(block)
                data = text.encode(encoding, "surrogateescape")
                stats["lines_written"] += text.count(u"\n")
                stats["bytes_written"] += len(data)
                digest.update(data)
                if out is not None:
                    out.write(data)
            stats["bytes_read"] = reader.count
    finally:
        if out is not None:
            out.close()
    stats["counts"] = dict((k, redactor.counts[k] - before.get(k, 0)) for k in redactor.counts)
    stats["sha256"] = digest.hexdigest()
    return stats


def redact_file(src, dst, redactor, window=None, encoding="utf-8"):
    """Stream ``src`` line by line into ``dst`` redacted; returns the counts for this file by kind."""
    return redact_file_detailed(src, dst, redactor, window=window, encoding=encoding)["counts"]


class _CountingReader(object):
    def __init__(self, stream):
        self.stream = stream
        self.count = 0

    def read(self, size):
        data = self.stream.read(size)
        self.count += len(data)
        return data


def _file_sha256(path):
    digest = hashlib.sha256()
    with _open_binary(path, "rb") as fh:
        while True:
            data = fh.read(CHUNK_SIZE)
            if not data:
                break
            digest.update(data)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# the log_redact module's logic


def log_redact_argument_spec():
    """The argument spec of fuhosp.ops.log_redact (kept beside the logic it feeds)."""
    return dict(
        src=dict(type="list", elements="str", required=True),
        dest_dir=dict(type="path", required=True),
        since=dict(type="str"),
        until=dict(type="str"),
        patterns=dict(type="list", elements="str", default=[]),
        name_fields=dict(type="list", elements="str"),
        salt=dict(type="str", no_log=True),
        kinds=dict(type="list", elements="str", choices=list(KINDS), default=list(DEFAULT_KINDS)),
        encoding=dict(type="str", default="utf-8"),
    )


def _is_within(path, directory):
    path = os.path.realpath(path)
    directory = os.path.realpath(directory)
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def expand_sources(items, dest_dir):
    """Absolute paths of the regular files named by ``items`` (paths or globs); (files, warnings)."""
    files, warnings, seen = [], [], set()
    for item in items:
        item = os.path.expanduser(item)
        if not os.path.isabs(item):
            raise RedactError("src %r is not an absolute path; give the full path of the log file or glob" % item)
        if glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                warnings.append("src %s matched no file" % item)
        elif os.path.exists(item):
            matches = [item]
        else:
            warnings.append("src %s does not exist" % item)
            matches = []
        for path in matches:
            path = os.path.abspath(path)
            if not os.path.isfile(path):
                if not glob.has_magic(item):
                    warnings.append("src %s is not a regular file; skipped" % path)
                continue
            if _is_within(path, dest_dir):
                continue        # an earlier bundle's output is never an input
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            files.append(path)
    return files, warnings


def _write_if_changed(final, produce, check_mode):
    """``produce(path_or_None)`` writes a file (or only hashes when None) and returns its stats with
    sha256 of the uncompressed content; keeps the old file when identical. Returns (stats, changed)."""
    old = _content_sha256(final)
    if check_mode:
        stats = produce(None)
        return stats, stats["sha256"] != old
    directory = os.path.dirname(final)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd, tmp = tempfile.mkstemp(prefix=".redact-", suffix=".tmp" + (".gz" if final.endswith(".gz") else ""),
                               dir=directory)
    os.close(fd)
    try:
        os.chmod(tmp, 0o600)
        stats = produce(tmp)
        changed = stats["sha256"] != old
        if changed:
            os.rename(tmp, final)
        return stats, changed
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _content_sha256(path):
    if not os.path.isfile(path):
        return None
    try:
        return _file_sha256(path)
    except (IOError, OSError, EOFError):
        return None


def run_log_redact(params, check_mode=False):
    """Everything fuhosp.ops.log_redact does; ``params`` as validated by the argument spec.

    Returns a dict (changed, counts, files, report, dest_dir, warnings). Raises RedactError.
    """
    dest_dir = os.path.abspath(os.path.expanduser(params["dest_dir"]))
    window = TimeWindow(params.get("since"), params.get("until"))
    encoding = params.get("encoding") or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise RedactError("unknown encoding %r; use a Python codec name such as utf-8 or gb18030" % encoding)
    config = {
        "salt": params.get("salt"),
        "kinds": params.get("kinds") or DEFAULT_KINDS,
        "extra_mrn_patterns": params.get("patterns") or (),
    }
    if params.get("name_fields"):
        config["name_fields"] = params["name_fields"]
    redactor = Redactor(config)
    sources, warnings = expand_sources(params["src"], dest_dir)

    if not check_mode and not os.path.isdir(dest_dir):
        try:
            os.makedirs(dest_dir, 0o700)
        except OSError as exc:
            raise RedactError("cannot create dest_dir %s: %s" % (dest_dir, exc))
    changed = False
    files = []
    for src in sources:
        dest = os.path.join(dest_dir, src.lstrip(os.sep))
        if os.path.exists(dest) and os.path.samefile(src, dest):
            raise RedactError("dest_dir %s would overwrite the source %s; choose another dest_dir" % (dest_dir, src))

        def produce(path, src=src):
            return redact_file_detailed(src, path, redactor, window=window, encoding=encoding)
        try:
            stats, file_changed = _write_if_changed(dest, produce, check_mode)
        except (IOError, OSError, EOFError) as exc:
            warnings.append("src %s could not be redacted (%s); skipped" % (src, exc))
            continue
        changed = changed or file_changed
        entry = {"src": src, "dest": dest, "changed": file_changed}
        entry.update(stats)
        files.append(entry)

    counts = dict((k, sum(f["counts"].get(k, 0) for f in files)) for k in sorted(redactor.counts))
    report = {
        "format": 1,
        "module": "fuhosp.ops.log_redact",
        "dest_dir": dest_dir,
        "window": {"since": params.get("since"), "until": params.get("until")},
        "kinds": sorted(redactor.kinds),
        "mrn_patterns": list(redactor.mrn_patterns),
        "name_fields": list(redactor.name_fields),
        "counts": counts,
        "total": sum(counts.values()),
        "files": [dict((k, f[k]) for k in ("src", "dest", "counts", "lines_read", "lines_written",
                                           "bytes_read", "bytes_written", "sha256")) for f in files],
    }
    report_path = os.path.join(dest_dir, REPORT_NAME)
    text = json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    data = text.encode("utf-8", "surrogateescape")     # a file name that is not UTF-8 stays as it is

    def produce_report(path):
        if path is not None:
            with open(path, "wb") as fh:
                fh.write(data)
        return {"sha256": hashlib.sha256(data).hexdigest()}
    try:
        _stats, report_changed = _write_if_changed(report_path, produce_report, check_mode)
    except (IOError, OSError) as exc:
        raise RedactError("cannot write %s: %s" % (report_path, exc))
    return {
        "changed": changed or report_changed,
        "counts": counts,
        "files": files,
        "report": report_path,
        "dest_dir": dest_dir,
        "warnings": warnings,
    }
