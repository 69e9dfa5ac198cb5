"""fuhosp.ops patient-data redaction engine (plugins/module_utils/_redact.py) and the redact filter.

Table-driven: each row is (text in, what must disappear or stay, kind counted). Check digits and Luhn
digits are computed here independently of the engine, so a wrong validator in the engine fails.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.fuhosp.ops.plugins.module_utils import _redact as R  # noqa: E402
from ansible_collections.fuhosp.ops.plugins.module_utils._redact import (  # noqa: E402
    RedactError,
    Redactor,
    TimeWindow,
    redact_file,
    redact_file_detailed,
    run_log_redact,
)

TOKEN = re.compile(r"\[(ID-CARD|PHONE|BANK-CARD|MRN|NAME|EMAIL):[0-9a-f]{8}\]")


# ---- independent generators -------------------------------------------------------------------


def id_check(first17: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # ISO 7064 MOD 11-2 weights, derived, not copied
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights)) % 11]


def make_id(area: str = "110105", birth: str = "19900307", seq: str = "123") -> str:
    body = area + birth + seq
    return body + id_check(body)


def bad_check(number: str) -> str:
    """The same number with a wrong check character."""
    good = number[-1]
    return number[:-1] + ("1" if good != "1" else "2")


def luhn_complete(payload: str) -> str:
    for d in "0123456789":
        digits = payload + d
        total = 0
        for i, c in enumerate(reversed(digits)):
            n = int(c) * (2 if i % 2 else 1)
            total += n - 9 if n > 9 else n
        if total % 10 == 0:
            return digits
    raise AssertionError


def luhn_broken(payload: str) -> str:
    good = luhn_complete(payload)
    return good[:-1] + str((int(good[-1]) + 1) % 10)


VALID_ID = make_id()                               # 110105199003071234-like, checksum computed
VALID_ID_X = next(i for i in (make_id("440106", "19851120", f"{s:03d}") for s in range(200)) if i.endswith("X"))
CARD16 = luhn_complete("622202123456789")
CARD19 = luhn_complete("621700001234567890")
CARD_VISA = luhn_complete("411111111111111")


def redactor(**config) -> Redactor:
    config.setdefault("salt", "unit-test-salt")
    return Redactor(config)


def kinds_of(text: str) -> list[str]:
    return [m.group(1) for m in TOKEN.finditer(text)]


# ---- checks of the generators themselves (a broken generator would make every row vacuous) ----


def test_generators_match_published_examples():
    # GB 11643-1999 appendix example and the widely published 11010519491231002X
    assert make_id("110102", "19491231", "002")[-1] == "X" or id_check("11010519491231002") == "X"
    assert id_check("11010519491231002") == "X"
    assert luhn_complete("411111111111111") == "4111111111111111"   # the classic Visa test number
    assert R.id_card_valid("11010519491231002X") and not R.id_card_valid("110105194912310021")
    assert R.luhn_ok("4111111111111111") and not R.luhn_ok("4111111111111112")


# ---- ID cards ---------------------------------------------------------------------------------

ID_ROWS = [
    # (text, value that must vanish or None, values that must stay, expected kinds)
    (f"身份证号：{VALID_ID}，已核验", VALID_ID, [], ["ID-CARD"]),
    (f"idcard={VALID_ID_X} ok", VALID_ID_X, [], ["ID-CARD"]),
    (f"lower x {VALID_ID_X.lower()}", VALID_ID_X.lower(), [], ["ID-CARD"]),
    (f"glued to letters id{VALID_ID}end", VALID_ID, [], ["ID-CARD"]),
    (f"bad checksum {bad_check(VALID_ID)}", None, [bad_check(VALID_ID)], []),
    ("order number 202611251234567890 paid", None, ["202611251234567890"], []),
    ("nanosecond-ish 170000000000000000 ts", None, ["170000000000000000"], []),
    # right checksum but impossible birth dates / unknown province: not an ID
    (f"month 13 {make_id('110105', '19901307')}", None, [make_id("110105", "19901307")], []),
    (f"feb 30 {make_id('110105', '19900230')}", None, [make_id("110105", "19900230")], []),
    (f"future {make_id('110105', '20990101')}", None, [make_id("110105", "20990101")], []),
    (f"province 00 {make_id('000105', '19900307')}", None, [make_id("000105", "19900307")], []),
    # inside a longer digit run: not an ID (digit boundaries)
    (f"run 9{VALID_ID}9", None, [f"9{VALID_ID}9"], []),
    (f"leap day {make_id('320102', '20000229')}", make_id("320102", "20000229"), [], ["ID-CARD"]),
]


@pytest.mark.parametrize("text,gone,kept,kinds", ID_ROWS, ids=[r[0][:24] for r in ID_ROWS])
def test_id_cards(text, gone, kept, kinds):
    out = redactor().redact_line(text)
    if gone:
        assert gone not in out
    for value in kept:
        assert value in out
    assert kinds_of(out) == kinds
    assert out.startswith(text[:2])          # the Chinese/ASCII context around the value is kept


def test_old_15_digit_id_only_when_enabled():
    old = "110105900307123"
    assert redactor().redact_line(f"old {old}") == f"old {old}"
    assert kinds_of(redactor(id15=True).redact_line(f"old {old}")) == ["ID-CARD"]


# ---- phones -----------------------------------------------------------------------------------

PHONE_ROWS = [
    ("手机13812345678。", True),
    ("tel:19912345678", True),
    ("+8613812345678", True),
    ("+86 13812345678", True),
    ("86-13812345678", True),
    ("+86 138 1234 5678", True),
    ("tel:+13812345678", True),
    ("138-1234-5678", True),
    ("电话：15012345678，地址略", True),
    ("12812345678", False),                  # 12x is not a mobile prefix
    ("10012345678", False),
    ("013812345678", False),                 # inside a longer digit run
    ("138123456789", False),
    ("1381234567", False),                   # 10 digits
    ("price 3.13812345678", False),          # fraction of a decimal number
]


@pytest.mark.parametrize("text,redacted", PHONE_ROWS, ids=[r[0] for r in PHONE_ROWS])
def test_phones(text, redacted):
    r = redactor()
    out = r.redact_line(text)
    assert (kinds_of(out) == ["PHONE"]) is redacted, out
    assert ("13812345678" in out.replace(" ", "").replace("-", "")) is ("13812345678" in text.replace(" ", "").replace("-", "") and not redacted)


def test_phone_forms_share_one_token():
    r = redactor()
    outs = {r.redact_line(t) for t in ("13812345678", "+8613812345678", "+86 138 1234 5678", "138-1234-5678")}
    assert len(outs) == 1
    assert r.counts["phone"] == 4


# ---- bank cards -------------------------------------------------------------------------------

CARD_ROWS = [
    (f"卡号{CARD16}", True),
    (f"card {CARD19} refund", True),
    (f"visa {CARD_VISA}", True),
    (f"grouped {CARD16[:4]} {CARD16[4:8]} {CARD16[8:12]} {CARD16[12:]}", True),
    (f"dashes {CARD19[:4]}-{CARD19[4:8]}-{CARD19[8:12]}-{CARD19[12:16]}-{CARD19[16:]}", True),
    (f"luhn fails {luhn_broken('622202123456789')}", False),
    (f"luhn fails 19 {luhn_broken('621700001234567890')}", False),
    ("epoch ms 1700000000005", False),                      # starts with 1: not a card network
    (f"trace=ab{CARD16}cd", False),                          # digits inside a hex id
    (f"too long {CARD16}12345", False),
]


@pytest.mark.parametrize("text,redacted", CARD_ROWS, ids=[r[0][:22] for r in CARD_ROWS])
def test_bank_cards(text, redacted):
    out = redactor().redact_line(text)
    assert (kinds_of(out) == ["BANK-CARD"]) is redacted, out
    if redacted:
        assert not re.search(r"\d{4}[ -]?\d{4}[ -]?\d{4}", out)
    else:
        assert out == text


def test_contiguous_18_digit_luhn_valid_number_is_not_a_card():
    number = luhn_complete("62220212345678901")          # 18 digits, Luhn-valid, not an ID
    assert len(number) == 18
    assert redactor().redact_line(f"order {number}") == f"order {number}"


def test_rejected_grouped_candidate_still_finds_the_phone_inside():
    assert kinds_of(redactor().redact_line("12 13812345678")) == ["PHONE"]
    assert "13812345678" not in redactor().redact_line("room 5 13812345678")


# ---- medical record numbers ------------------------------------------------------------------

MRN_ROWS = [
    ("MRN12345678 admitted", "[MRN:", "12345678", True),
    ("MRN: 1234567890", "[MRN:", "1234567890", True),
    ("病案号：20261125 出院", "病案号：[MRN:", "20261125", True),
    ("病案号 123456", "病案号 [MRN:", "123456", True),
    ("住院号:987654321", "住院号:[MRN:", "987654321", True),
    ("MRN123 too short", None, "MRN123", False),
    ("病案号：12345 too short", None, "12345", False),
]


@pytest.mark.parametrize("text,prefix,value,redacted", MRN_ROWS, ids=[r[0] for r in MRN_ROWS])
def test_mrn_defaults(text, prefix, value, redacted):
    out = redactor().redact_line(text)
    assert (value not in out) is redacted
    if prefix:
        assert out.startswith(prefix)


def test_mrn_extra_patterns_with_and_without_group():
    r = redactor(extra_mrn_patterns=[r"VISIT-\d{8}", r"cardNo=(\d{6,12})", r"(?i)hn:(\d{7})"])
    out = r.redact_line("VISIT-20261125 cardNo=88776655 HN:1234567 hn:7654321")
    assert "20261125" not in out and "88776655" not in out and "1234567" not in out and "7654321" not in out
    assert out.startswith("[MRN:") and "cardNo=[MRN:" in out and "HN:[MRN:" in out and "hn:[MRN:" in out
    assert r.counts["mrn"] == 4


def test_same_mrn_digits_give_one_token_whatever_the_label():
    r = redactor()
    a, b = r.redact_line("MRN12345678"), r.redact_line("病案号：12345678")
    assert TOKEN.search(a).group(0) == TOKEN.search(b).group(0)


@pytest.mark.parametrize("pattern,fragment", [
    (r"(a)\1\d+", "back-reference"),
    (r"(?P<x>a)(?P=x)", "back-reference"),
    (r"MRN[", "not a valid regular expression"),
    (r"\d*", "empty string"),
    ("", "non-empty"),
])
def test_bad_patterns_fail_with_a_reason(pattern, fragment):
    with pytest.raises(RedactError, match=fragment):
        redactor(extra_mrn_patterns=[pattern])


def test_pattern_crossing_a_line_end_is_applied_per_line():
    r = redactor(extra_mrn_patterns=[r"卡号\s*\d{6}"])
    block = "卡号\n123456 next\n卡号 654321\n"
    assert r.redact_text(block) == "".join(redactor(extra_mrn_patterns=[r"卡号\s*\d{6}"]).redact_line(l)
                                           for l in block.splitlines(keepends=True))
    assert block.count("\n") == r.redact_text(block).count("\n")


# ---- names -----------------------------------------------------------------------------------

NAME_ROWS = [
    ("患者：张三 已挂号", "张三", "患者："),
    ("患者: 欧阳娜娜，女", "欧阳娜娜", "患者: "),
    ("患者张三就诊", "张三", "患者"),
    ("姓名=李四&age=30", "李四", "姓名="),
    ("就诊人：王五", "王五", "就诊人："),
    ('{"patient_name": "赵六", "age": 3}', "赵六", '{"patient_name": "'),
    ('{"patientName":"Zhang San"}', "Zhang San", '{"patientName":"'),
    ('{"name": "\\u5f20\\u4e09"}', "\\u5f20\\u4e09", '{"name": "'),
    ("name=Li Wei&dept=201", "Li Wei", "name="),
    ("Name: wangwu; age 30", "wangwu", "Name: "),
    ("NAME='孙七'", "孙七", "NAME='"),
    ("<patientName>周八</patientName>", "周八", "<patientName>"),
    ("患者姓名：吴九", "吴九", "患者姓名："),
    ("患者 Yang Lei Jr（门诊）", "Yang Lei Jr", "患者 "),
]


@pytest.mark.parametrize("text,value,label", NAME_ROWS, ids=[r[0][:20] for r in NAME_ROWS])
def test_names_value_replaced_label_kept(text, value, label):
    r = redactor()
    out = r.redact_line(text)
    assert value not in out
    assert out.startswith(label + "[NAME:"), out
    assert r.counts["name"] == 1


@pytest.mark.parametrize("text", [
    "患者挂号成功 科室=内科",
    "患者信息查询 took 12 ms",
    "患者不存在",
    "hostname=app01 username=alice",       # other words that end in "name"
    "name=null",
    '{"name": null}',
])
def test_names_not_invented(text):
    r = redactor()
    assert r.redact_line(text) == text
    assert r.counts["name"] == 0


def test_name_fields_configurable():
    r = redactor(name_fields=["联系人", "contact"])
    out = r.redact_line("联系人：张三 contact=Li Si 患者：王五")
    assert "张三" not in out and "Li Si" not in out
    assert "王五" in out                     # 患者 is not in this list
    assert r.counts["name"] == 2


def test_json_escaped_and_plain_name_share_a_token():
    r = redactor()
    a = r.redact_line('{"patient_name": "\\u5f20\\u4e09"}')
    b = r.redact_line("患者：张三")
    assert TOKEN.search(a).group(0) == TOKEN.search(b).group(0)


# ---- e-mail ---------------------------------------------------------------------------------


def test_email_only_when_asked():
    text = "notify zhang.san+ih@hospital.example.cn; ssh root@app01 failed"
    assert redactor().redact_line(text) == text
    out = redactor(kinds=list(R.KINDS)).redact_line(text)
    assert "zhang.san" not in out and kinds_of(out) == ["EMAIL"] and "root@app01" in out


# ---- tokens ---------------------------------------------------------------------------------


def test_tokens_stable_within_a_redactor_and_different_across_salts():
    line = f"患者：张三 {VALID_ID} 13812345678 {CARD16} MRN12345678"
    a1, a2 = redactor(salt="bundle-a"), redactor(salt="bundle-a")
    b = redactor(salt="bundle-b")
    first = a1.redact_line(line)
    assert first == a1.redact_line(line) == a2.redact_line(line)       # stable, deterministic for a salt
    other = b.redact_line(line)
    assert set(TOKEN.findall(first)) == set(TOKEN.findall(other))       # same kinds...
    assert not set(re.findall(r":([0-9a-f]{8})\]", first)) & set(re.findall(r":([0-9a-f]{8})\]", other))
    assert kinds_of(first) == ["NAME", "ID-CARD", "PHONE", "BANK-CARD", "MRN"]
    assert a1.counts == {"id_card": 2, "phone": 2, "bank_card": 2, "mrn": 2, "name": 2}


def test_random_salt_by_default_and_never_shown():
    a, b = Redactor(), Redactor()
    assert a.redact_line("13812345678") != b.redact_line("13812345678")
    r = Redactor({"salt": "s3cret-salt"})
    assert "s3cret" not in repr(r) and "s3cret" not in str(vars(r).get("counts"))


def test_different_values_different_tokens():
    r = redactor()
    assert r.redact_line("13812345678") != r.redact_line("13812345679")


def test_unknown_setting_and_kind_rejected():
    with pytest.raises(RedactError, match="unknown redaction setting"):
        Redactor({"salts": "x"})
    with pytest.raises(RedactError, match="unknown redaction kind"):
        Redactor({"kinds": ["passport"]})


def test_kinds_subset():
    r = redactor(kinds=["phone"])
    out = r.redact_line(f"患者：张三 {VALID_ID} 13812345678")
    assert kinds_of(out) == ["PHONE"] and VALID_ID in out and "张三" in out


# ---- engine properties -------------------------------------------------------------------------


def _soup(rng: random.Random, n: int) -> str:
    parts = []
    for _ in range(n):
        k = rng.random()
        if k < 0.2:
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 22))))
        elif k < 0.3:
            parts.append(make_id(rng.choice(["110105", "440106"]), f"19{rng.randint(50, 99)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}",
                                 f"{rng.randrange(1000):03d}"))
        elif k < 0.4:
            parts.append(luhn_complete("62" + "".join(rng.choice("0123456789") for _ in range(13))))
        elif k < 0.5:
            parts.append(rng.choice(["+86 ", "86-", "", "+"]) + "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9)))
        else:
            parts.append(rng.choice([" ", "-", ".", "x", "患者：张三", "\n", "  ", "a", "X", ":", "=", "+"]))
    return "".join(parts)


def test_possessive_and_portable_number_regexes_agree():
    """The fast regex (Python 3.11+) and the one older managed hosts use must find the same candidates."""
    fast, portable = re.compile(R._NUMBER_RX_POSSESSIVE), re.compile(R._NUMBER_RX)
    rng = random.Random(1125)
    for _ in range(300):
        text = _soup(rng, 60)
        assert [m.span() for m in fast.finditer(text)] == [m.span() for m in portable.finditer(text)], text


def test_block_equals_line_by_line():
    rng = random.Random(7)
    text = _soup(rng, 5000)
    lines = text.splitlines(keepends=True)
    a, b = redactor(), redactor()
    assert a.redact_text(text) == "".join(b.redact_line(line) for line in lines)
    assert a.counts == b.counts and sum(a.counts.values()) > 100


def test_module_utils_syntax_fits_python_36_hosts():
    """Managed hosts may have an old python3: no syntax newer than 3.6 in the engine."""
    import ast
    source = Path(R.__file__).read_text(encoding="utf-8")
    ast.parse(source, feature_version=(3, 6))
    assert "__future__ import annotations" not in source and "dataclass" not in source
    assert not re.search(r"^(?:import|from) (?!__future__|codecs|datetime|glob|gzip|hashlib|hmac|json|os|re|sys|tempfile)\w",
                         source, re.M), "the engine imports only the standard library"


def test_redact_line_wants_text():
    with pytest.raises(TypeError):
        redactor().redact_line(b"13812345678")


# ---- files ------------------------------------------------------------------------------------


def test_redact_file_streams_invalid_bytes_and_chinese(tmp_path):
    src = tmp_path / "app.log"
    raw = ("2026-11-25 08:00:00 患者：张三 手机13812345678 ✓\n").encode() + b"bad \xff\xfe bytes " + \
        f"{VALID_ID}\n".encode() + "末行无换行 病案号：12345678".encode("utf-8")[:-1] + b"\xe4\xb8"
    src.write_bytes(raw)
    dst = tmp_path / "out.log"
    counts = redact_file(str(src), str(dst), redactor())
    out = dst.read_bytes()
    assert b"\xff\xfe" in out and out.endswith(b"\xe4\xb8")        # invalid bytes copied through
    assert "张三".encode() not in out and b"13812345678" not in out and VALID_ID.encode() not in out
    assert "✓".encode() in out
    assert counts == {"id_card": 1, "phone": 1, "bank_card": 0, "mrn": 1, "name": 1}


def test_redact_file_gzip_and_tiny_chunks(tmp_path):
    src = tmp_path / "app.log.1.gz"
    lines = [f"2026-11-25 08:00:{i % 60:02d} refund card {CARD16} 患者：张三\n" for i in range(500)]
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.writelines(lines)
    dst = tmp_path / "copy.log.1.gz"
    stats = redact_file_detailed(str(src), str(dst), redactor(), chunk_size=7)   # blocks cut mid-character
    text = gzip.decompress(dst.read_bytes()).decode()
    assert CARD16 not in text and "张三" not in text
    assert stats["counts"]["bank_card"] == 500 and stats["counts"]["name"] == 500
    assert stats["lines_read"] == stats["lines_written"] == 500


def test_very_long_line_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "MAX_LINE", 1000)
    src = tmp_path / "long.log"
    src.write_text(("x " * 3000) + " 13812345678 " + ("y " * 3000))
    dst = tmp_path / "out.log"
    counts = redact_file(str(src), str(dst), redactor())
    assert "13812345678" not in dst.read_text() and counts["phone"] == 1


# ---- time window -------------------------------------------------------------------------------

WINDOW_LOG = """\
header without time
2026-11-25 07:59:59,999 INFO before 13800000001
\tat stack.of.before
2026-11-25T08:00:00+08:00 INFO start 13800000002
\tat stack.of.start 患者：张三
2026/11/25 08:30:00 [error] nginx 13800000003
[2026-11-25 09:00:00.123] java 13800000004
Nov 25 09:15:00 host sshd[1]: 13800000005
2026-11-25 09:30:01 INFO after 13800000006
\tat stack.of.after
"""


@pytest.fixture()
def shanghai(monkeypatch):
    """The managed host's local time zone: UTC+8, as in the hospital."""
    import time
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_time_window_keeps_lines_and_their_continuations(tmp_path, shanghai):
    src = tmp_path / "w.log"
    src.write_text(WINDOW_LOG)
    window = TimeWindow("2026-11-25T00:00:00Z", "2026-11-25 09:30")   # 08:00 to 09:30 local
    dst = tmp_path / "o.log"
    stats = redact_file_detailed(str(src), str(dst), redactor(), window=window)
    out = dst.read_text()
    assert "header without time" in out                       # before any timestamp: kept
    assert "before" not in out and "stack.of.before" not in out
    assert "stack.of.start" in out and "nginx" in out and "java" in out and "sshd" in out
    assert "after" not in out
    assert stats["counts"]["phone"] == 4 and stats["counts"]["name"] == 1
    assert stats["lines_read"] == 10 and stats["lines_written"] == 6


def test_timestamps_with_offsets_are_compared_in_local_time(shanghai):
    a = R.parse_timestamp("2026-11-25T08:00:00+08:00")
    b = R.parse_timestamp("2026-11-25T00:00:00Z")
    c = R.parse_timestamp("2026-11-25T01:00:00+0100")
    assert a == b == c == R.parse_timestamp("2026-11-25 08:00")


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "2026-11-25T25:00", "[2026-11-25 08:00]"])
def test_bad_window_bounds_fail_with_a_reason(bad):
    with pytest.raises(RedactError):
        TimeWindow(since=bad)


def test_since_after_until_rejected():
    with pytest.raises(RedactError, match="swap"):
        TimeWindow("2026-11-26", "2026-11-25")


def test_until_date_alone_means_whole_day():
    w = TimeWindow(until="2026-11-25")
    assert w.contains(R.parse_timestamp("2026-11-25 23:59:59"))
    assert not w.contains(R.parse_timestamp("2026-11-26 00:00:00"))


# ---- the module's logic ------------------------------------------------------------------------


def _params(**kw):
    base = {"src": [], "dest_dir": None, "since": None, "until": None, "patterns": [], "name_fields": None,
            "salt": None, "kinds": list(R.DEFAULT_KINDS), "encoding": "utf-8"}
    base.update(kw)
    return base


def test_run_check_mode_writes_nothing_then_real_run_then_no_change(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(f"患者：张三 {VALID_ID}\n")
    (logs / "b.log").write_text("nothing here\n")
    dest = tmp_path / "bundle"
    params = _params(src=[str(logs / "*.log"), str(logs / "missing.log")], dest_dir=str(dest), salt="fixed")

    checked = run_log_redact(params, check_mode=True)
    assert checked["changed"] and not dest.exists()
    assert checked["counts"]["id_card"] == 1 and checked["counts"]["name"] == 1
    assert any("missing.log" in w for w in checked["warnings"])

    done = run_log_redact(params)
    assert done["changed"] and done["counts"] == checked["counts"]
    copy = dest / str(logs / "a.log").lstrip("/")
    assert copy.is_file() and VALID_ID not in copy.read_text()
    assert oct(copy.stat().st_mode & 0o777) == "0o600" and oct(dest.stat().st_mode & 0o777) == "0o700"
    report = json.loads((dest / "redaction_report.json").read_text())
    assert report["counts"] == done["counts"] and len(report["files"]) == 2
    assert "fixed" not in (dest / "redaction_report.json").read_text()

    again = run_log_redact(params)
    assert not again["changed"]
    assert not run_log_redact(params, check_mode=True)["changed"]

    (logs / "b.log").write_text("new line 13812345678\n")
    assert run_log_redact(params)["changed"]


def test_run_never_reads_its_own_output_and_wants_absolute_paths(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("13812345678\n")
    params = _params(src=[str(logs / "**")], dest_dir=str(logs / "bundle"))
    first = run_log_redact(params)
    second = run_log_redact(params)
    assert [f["src"] for f in first["files"]] == [f["src"] for f in second["files"]] == [str(logs / "a.log")]
    with pytest.raises(RedactError, match="absolute"):
        run_log_redact(_params(src=["logs/a.log"], dest_dir=str(tmp_path / "x")))


# ---- the filter ------------------------------------------------------------------------------


def test_filter_plugin():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.fuhosp.ops.plugins.filter.redact import FilterModule, redact

    assert "redact" in FilterModule().filters()
    out = redact("患者：张三 手机 13812345678 病案号：12345678")
    assert "张三" not in out and "13812345678" not in out and "12345678" not in out
    assert redact("13812345678") == redact("13812345678")          # same process, same token
    nested = redact({"msg": "tel 13812345678", "n": 13812345678, "ok": True, "items": ["MRN12345678", 3]})
    assert nested["n"].startswith("[PHONE:") and nested["ok"] is True and nested["items"][1] == 3
    assert nested["items"][0].startswith("[MRN:")
    assert redact("tel 13812345678 患者：张三", ["phone"]) .endswith("患者：张三")
    assert "VISIT" not in redact("VISIT-20261125", ["mrn"], [r"VISIT-\d{8}"])
    with pytest.raises(AnsibleFilterError, match="unknown redaction kind"):
        redact("x", ["passport"])
    # with a salt: the same tokens as the engine (and so the log_redact module) with that salt
    assert redact("tel 13812345678", salt="bundle-7") == Redactor({"salt": "bundle-7"}).redact_line("tel 13812345678")
    assert redact("tel 13812345678", salt="bundle-7") != redact("tel 13812345678")


def test_filter_in_a_real_template(tmp_path):
    import subprocess
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"), "ANSIBLE_HOME": str(tmp_path),
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    expr = "{{ '患者：张三 手机 13812345678 身份证 %s' | fuhosp.ops.redact }}" % VALID_ID
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible"), "localhost", "-m", "ansible.builtin.debug",
                           "-a", f"msg={expr}"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "13812345678" not in proc.stdout and VALID_ID not in proc.stdout and "张三" not in proc.stdout
    assert kinds_of(proc.stdout) == ["NAME", "PHONE", "ID-CARD"]
