"""Canary for fuhosp.ops.log_redact: plant fake patient data in realistic logs, redact them end to end,
and grep every byte of the output for the planted values.

Three ways in: the module_utils logic called directly, the module file run as a program with its
arguments in a JSON file (what Ansible does on the host, minus the zip), and ``ansible`` itself with
the collection on ANSIBLE_COLLECTIONS_PATH and the system python3 (standard library only) as the
managed host's interpreter. Each must leave no planted value anywhere in dest_dir (copies and report),
count exactly what was planted, and leave the decoys (numbers that only look like patient data) alone.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "collections"
sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.fuhosp.ops.plugins.module_utils import _redact as R  # noqa: E402

MODULE = COLLECTIONS / "ansible_collections" / "fuhosp" / "ops" / "plugins" / "modules" / "log_redact.py"
VENV_BIN = REPO / ".venv" / "bin"

SURNAMES = "赵钱孙李周吴郑冯陈褚卫蒋沈韩杨朱秦尤许何吕施"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂"
PINYIN = ["Zhang Wei", "Li Na", "Wang Fang", "Liu Yang", "Chen Jie", "Yang Lei", "Huang Min", "Zhou Tao"]
AREAS = ["110105", "310104", "440106", "510107", "420102", "330106", "370102", "610113"]


def _id_check(first17: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights)) % 11]


def _luhn(payload: str) -> str:
    for d in "0123456789":
        digits = payload + d
        total = sum((int(c) * (2 if i % 2 else 1)) - (9 if int(c) * (2 if i % 2 else 1) > 9 else 0)
                    for i, c in enumerate(reversed(digits)))
        if total % 10 == 0:
            return digits
    raise AssertionError


class Plant:
    """Generates unique fake values and remembers what was planted, by kind."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.values: dict[str, set[str]] = {}     # canonical values, by kind
        self.written: set[str] = set()             # the forms they were written in (grouped, +86, ...)
        self.counts: Counter = Counter()           # occurrences planted, by kind
        self.decoys: set[str] = set()              # look-alikes that must survive
        self._seen: dict[str, str] = {}
        self._ordered: dict[str, list[str]] = {}

    def _unique(self, kind: str, make) -> str:
        """A new value of this kind, or now and then one already planted (the same patient again)."""
        ordered = self._ordered.setdefault(kind, [])
        if ordered and self.rng.random() < 0.1:
            return self.rng.choice(ordered)
        while True:
            value = make()
            owner = self._seen.get(value)
            if owner is None:
                self._seen[value] = kind
                self.values.setdefault(kind, set()).add(value)
                ordered.append(value)
                return value
            if owner == kind and self.rng.random() < 0.5:
                return value

    def use(self, kind: str, value: str) -> str:
        self.counts[kind] += 1
        return value

    def shown(self, form: str) -> str:
        self.written.add(form)
        return form

    def id_card(self) -> str:
        def make():
            body = (self.rng.choice(AREAS) + f"{self.rng.randint(1940, 2018)}{self.rng.randint(1, 12):02d}"
                    f"{self.rng.randint(1, 28):02d}{self.rng.randrange(1000):03d}")
            return body + _id_check(body)
        return self.use("id_card", self._unique("id_card", make))

    def phone(self) -> str:
        return self.use("phone", self._unique("phone", lambda: "1" + self.rng.choice("3456789") + "".join(
            self.rng.choice("0123456789") for _ in range(9))))

    def card(self) -> str:
        def make():
            prefix = self.rng.choice(["622202", "621700", "625800", "436742", "518710"])
            length = self.rng.choice([16, 19])
            return _luhn(prefix + "".join(self.rng.choice("0123456789") for _ in range(length - 7)))
        return self.use("bank_card", self._unique("bank_card", make))

    def mrn(self) -> str:
        return self.use("mrn", self._unique("mrn", lambda: str(self.rng.randrange(10 ** 9, 10 ** 10))))

    def name(self) -> str:
        return self.use("name", self._unique("name", lambda: self.rng.choice(SURNAMES) + "".join(
            self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2))))))

    def pinyin(self) -> str:
        return self.use("name", self._unique("name", lambda: self.rng.choice(PINYIN) + self.rng.choice(
            ["", " Jr", " Er"])))

    def email(self) -> str:
        return self.use("email", self._unique("email", lambda: "p%06d.%s@mail.example.cn" % (
            self.rng.randrange(10 ** 6), self.rng.choice(["zhang", "li", "wang"]))))

    def decoy(self, value: str) -> str:
        self.decoys.add(value)
        return value


def _filler(p: Plant, ts: str) -> str:
    rng = p.rng
    trace = "%032x" % rng.getrandbits(128)
    choice = rng.randrange(8)
    if choice == 0:
        order = f"{rng.randint(2024, 2026)}{rng.randrange(10 ** 13, 10 ** 14)}"
        return f"{ts} INFO  [exec-{rng.randint(1, 99)}] c.f.ih.pay - order {p.decoy(order)} paid trace={trace}"
    if choice == 1:
        body = rng.choice(AREAS) + f"{rng.randint(1950, 2010)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}{rng.randrange(1000):03d}"
        wrong = body + ("1" if _id_check(body) != "1" else "2")
        return f"{ts} WARN  [exec-{rng.randint(1, 99)}] c.f.ih.Identity - 证件号校验失败 ref={p.decoy(wrong)}"
    if choice == 2:
        good = _luhn("6222" + "".join(rng.choice("0123456789") for _ in range(11)))
        bad = good[:-1] + str((int(good[-1]) + 3) % 10)
        return f"{ts} INFO  [exec-2] c.f.ih.pay - voucher {p.decoy(bad)} not a card"
    if choice == 3:
        return f"{ts} INFO  [exec-3] c.f.portal - 患者挂号成功 科室=内科 医生=D{rng.randint(100, 999)} ts={p.decoy(str(rng.randrange(1700000000000, 1800000000000)))}"
    if choice == 4:
        return (f"10.1.{rng.randint(0, 255)}.{rng.randint(1, 254)} - - [25/Nov/2026:08:{rng.randrange(60):02d}:"
                f"{rng.randrange(60):02d} +0800] \"GET /api/queue?dept={rng.randint(100, 400)} HTTP/1.1\" 200 {rng.randint(100, 9999)}")
    if choice == 5:
        return f"\tat com.fuhosp.journey.SyncJob.run(SyncJob.java:{rng.randint(10, 900)}) hostname=app{rng.randint(1, 9):02d}"
    if choice == 6:
        return f"{ts} DEBUG [sched-1] c.f.waiting - 候诊队列刷新 size={rng.randint(0, 80)} took {rng.random() * 90:.3f} ms"
    return f"{ts} ERROR [exec-9] c.f.journey - sync failed: connection reset (retry {rng.randint(1, 5)}/5) req={trace[:16]}"


def _planted(p: Plant, ts: str) -> str:
    k = p.rng.randrange(12)
    if k == 0:
        return f'{ts} DEBUG [exec-1] c.f.ih.Api - request {{"patient_name": "{p.name()}", "phone": "{p.phone()}", "dept": "201"}}'
    if k == 1:
        return f"{ts} INFO  [exec-2] c.f.ih.Identity - 实名认证 患者：{p.name()} 身份证号：{p.id_card()}，结果=通过"
    if k == 2:
        card = p.card()
        shown = p.shown(" ".join(card[i:i + 4] for i in range(0, len(card), 4)) if p.rng.random() < 0.4 else card)
        return f"{ts} INFO  [exec-3] c.f.ih.pay.Refund - refund to card {shown} order {p.decoy(str(p.rng.randrange(10 ** 17, 10 ** 18)))}"
    if k == 3:
        return f"{ts} INFO  [exec-4] c.f.portal.Record - 病案号：{p.mrn()} 住院号 {p.mrn()} MRN{p.mrn()}"
    if k == 4:
        phone = p.phone()
        shown = p.shown(p.rng.choice([phone, "+86 " + phone, "+86" + phone, f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"]))
        return f"{ts} INFO  [exec-5] c.f.waiting.Call - call name={p.pinyin()}&room=3 tel {shown}"
    if k == 5:
        return f"{ts} WARN  [exec-6] c.f.ih.Notify - sms to {p.phone()} failed, 就诊人：{p.name()}"
    if k == 6:
        return f"{ts} INFO  [exec-7] c.f.ih.Visit - VISIT-{p.use('mrn', p._unique('mrn', lambda: str(p.rng.randrange(10 ** 9, 10 ** 10))))} opened"
    if k == 7:
        return f"{ts} INFO  [exec-8] c.f.portal.Mail - report sent to {p.email()}"
    if k == 8:
        return f"{ts} INFO  [exec-9] c.f.ih - 姓名={p.name()} 性别=女 卡号{p.card()}"
    if k == 9:
        return f"<patientName>{p.name()}</patientName><idNo>{p.id_card()}</idNo>"
    if k == 10:
        return f"{ts} INFO  [exec-10] c.f.ih - 联系电话{p.phone()}，证件{p.id_card()}"
    return f"{ts} ERROR [exec-11] c.f.ih - lookup failed for patient 患者{p.name()}（门诊）"


def build_logs(root: Path, seed: int = 20261125) -> Plant:
    p = Plant(seed)
    logs = root / "var" / "log"
    (logs / "ih").mkdir(parents=True)
    (logs / "nginx").mkdir(parents=True)

    def lines(n: int, share: float):
        out = []
        for i in range(n):
            ts = f"2026-11-25 08:{(i // 60) % 60:02d}:{i % 60:02d},{p.rng.randrange(1000):03d}"
            out.append((_planted(p, ts) if p.rng.random() < share else _filler(p, ts)) + "\n")
        return out

    (logs / "ih" / "app.log").write_text("".join(lines(4000, 0.15)), encoding="utf-8")
    with gzip.open(logs / "ih" / "app.log.1.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(lines(1500, 0.2))
    # invalid bytes and a last line without a newline
    raw = "".join(lines(500, 0.2)).encode() + b"broken \xff\xfe\xc3 bytes " + f"{p.phone()}".encode() + b" \xe4\xb8"
    (logs / "nginx" / "error.log").write_bytes(raw)
    return p


def _read_all(directory: Path) -> dict[Path, str]:
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            out[path] = data.decode("utf-8", "surrogateescape")
    return out


def _check_bundle(p: Plant, logs_root: Path, dest: Path, counts: dict) -> None:
    texts = _read_all(dest)
    copies = [path for path in texts if path.name != R.REPORT_NAME]
    assert len(copies) == 3, sorted(texts)
    assert (dest / R.REPORT_NAME) in texts
    everything = "\n".join(texts.values())
    missing = sorted(d for d in p.decoys if d not in everything)
    assert not missing, f"decoys were redacted (false positives): {missing[:10]}"
    rest = everything
    for decoy in sorted(p.decoys, key=len, reverse=True):
        rest = rest.replace(decoy, "#")
    leaks = sorted((kind, value) for kind, values in p.values.items() for value in values if value in rest)
    leaks += sorted(("written", form) for form in p.written if form in rest)
    assert not leaks, f"planted values found in the output: {leaks[:10]}"
    report = json.loads(texts[dest / R.REPORT_NAME])
    expected = {k: p.counts.get(k, 0) for k in ("bank_card", "email", "id_card", "mrn", "name", "phone")}
    assert report["counts"] == expected
    assert counts == expected
    assert sum(sum(f["counts"].values()) for f in report["files"]) == sum(expected.values())
    # the same patient gives the same token across the files of one bundle
    tokens = Counter(t for text in texts.values() for t in re.findall(r"\[[A-Z-]+:[0-9a-f]{8}\]", text))
    assert sum(tokens.values()) == sum(expected.values())
    assert len(tokens) <= sum(len(v) for v in p.values.values())


def _params(logs_root: Path, dest: Path) -> dict:
    return {
        "src": [str(logs_root / "var/log/ih/app.log*"), str(logs_root / "var/log/nginx/*.log")],
        "dest_dir": str(dest),
        "patterns": [r"VISIT-(\d{10})"],
        "kinds": ["id_card", "phone", "bank_card", "mrn", "name", "email"],
        "salt": "canary-salt-not-secret",
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("canary")
    plant = build_logs(root)
    # the generator itself: every planted value is really in the input, the decoys too
    inputs = "\n".join(_read_all(root / "var").values())
    regrouped = {re.sub(r"\D", "", w) for w in plant.written} | {re.sub(r"\D", "", w)[-11:] for w in plant.written}
    for values in list(plant.values.values()) + [plant.decoys]:
        for value in values:
            assert value in inputs or value in regrouped, value
    assert all(form in inputs for form in plant.written)
    assert sum(plant.counts.values()) > 1000 and len(plant.decoys) > 1000
    return root, plant


def test_canary_module_logic(planted, tmp_path):
    root, plant = planted
    dest = tmp_path / "bundle"
    params = {"since": None, "until": None, "name_fields": None, "encoding": "utf-8", **_params(root, dest)}
    result = R.run_log_redact(params)
    assert result["changed"] and not result["warnings"]
    _check_bundle(plant, root, dest, result["counts"])


def test_canary_module_program(planted, tmp_path):
    """The module file as Ansible runs it on a host: arguments in a JSON file, result on stdout."""
    root, plant = planted
    dest = tmp_path / "bundle"
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": _params(root, dest)}))
    env = {**os.environ, "PYTHONPATH": str(COLLECTIONS)}
    proc = subprocess.run([str(VENV_BIN / "python"), str(MODULE), str(args)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["changed"] and "canary-salt" not in proc.stdout
    _check_bundle(plant, root, dest, result["counts"])


@pytest.mark.skipif(not shutil.which("python3", path="/usr/bin"), reason="needs /usr/bin/python3 as the host interpreter")
def test_canary_through_ansible(planted, tmp_path):
    """``ansible localhost -m fuhosp.ops.log_redact``: check mode writes nothing, then the real run."""
    root, plant = planted
    dest = tmp_path / "bundle"
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_LOCALHOST_WARNING": "false",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "true", "ANSIBLE_HOME": str(tmp_path / "ansible-home")}
    base = [str(VENV_BIN / "ansible"), "localhost", "-c", "local", "-e", "ansible_python_interpreter=/usr/bin/python3",
            "-m", "fuhosp.ops.log_redact", "-a", json.dumps(_params(root, dest))]

    def run(*extra):
        proc = subprocess.run(base + list(extra), capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "canary-salt" not in proc.stdout + proc.stderr
        doc = json.loads(proc.stdout)
        return doc["plays"][0]["tasks"][0]["hosts"]["localhost"]

    checked = run("--check")
    assert checked["changed"] and not dest.exists()
    assert checked["counts"] == {k: plant.counts.get(k, 0) for k in sorted(checked["counts"])}

    result = run()
    assert result["changed"]
    _check_bundle(plant, root, dest, result["counts"])

    again = run()                      # same salt, same logs: nothing to change
    assert not again["changed"]
