#!/usr/bin/env python3
"""Benchmark: patient-data redaction engine vs a naive baseline, measured in the same run.

    .venv/bin/python bench/bench_redact.py            # ~50 MB of generated log text, 3 rounds
    .venv/bin/python bench/bench_redact.py --mb 10 --rounds 5

The engine (fuhosp.ops module_utils/_redact.py) redacts 1 MiB blocks of whole lines with one combined
regex per pass. The baseline does the obvious thing: for every line, every detector regex on its own
with re.sub (same validators, same tokens). Both are checked to give the same output; rounds alternate
(engine, baseline, engine, ...) so that load on the machine hits both alike. Prints medians and the ratio.

Throughput is MB of UTF-8 input per second of this process's CPU time (time.process_time): one core's
speed, and less thrown off than wall-clock time when other work shares the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collections"))

from ansible_collections.fuhosp.ops.plugins.module_utils import _redact as R  # noqa: E402

TOKEN = re.compile(r"\[[A-Z-]+:[0-9a-f]{8}\]")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚"


def fake_id(rng: random.Random) -> str:
    area = rng.choice(["110105", "310104", "440106", "510107", "420102", "330106"])
    birth = f"{rng.randint(1940, 2015)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = area + birth + f"{rng.randrange(1000):03d}"
    return body + R.id_card_check_char(body)


def fake_card(rng: random.Random) -> str:
    body = "6222" + "".join(rng.choice("0123456789") for _ in range(11))
    return body + R.luhn_check_digit(body)


def fake_phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def fake_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def generate(size: int, seed: int = 7) -> str:
    """Log text of about ``size`` characters; about 4% of lines carry patient data."""
    rng = random.Random(seed)
    out, total = [], 0
    sec = 0
    while total < size:
        sec += rng.random() * 0.05
        ts = f"2026-11-25 {int(sec // 3600) % 24:02d}:{int(sec // 60) % 60:02d}:{int(sec) % 60:02d},{rng.randrange(1000):03d}"
        trace = "%032x" % rng.getrandbits(128)
        order = f"{rng.randint(2020, 2026)}{rng.randrange(10**13, 10**14)}"
        k = rng.random()
        if k < 0.30:
            line = (f"{ts} INFO  [http-nio-8080-exec-{rng.randint(1, 200)}] c.f.ih.pay.PayController - "
                    f"order {order} paid amount={rng.randint(1, 900)}.{rng.randrange(100):02d} trace={trace}")
        elif k < 0.50:
            line = (f"10.20.{rng.randint(0, 255)}.{rng.randint(1, 254)} - - [25/Nov/2026:17:{rng.randrange(60):02d}:"
                    f"{rng.randrange(60):02d} +0800] \"GET /api/v1/queue?dept={rng.randint(100, 400)}&page="
                    f"{rng.randint(1, 9)} HTTP/1.1\" 200 {rng.randint(100, 90000)} \"-\" \"Mozilla/5.0 (Linux; Android 13)\"")
        elif k < 0.62:
            line = (f"{ts} INFO  [exec-{rng.randint(1, 99)}] c.f.portal.Registration - 患者挂号成功 科室=内科 "
                    f"医生=D{rng.randint(100, 999)} 时段=上午 号序={rng.randint(1, 80)}")
        elif k < 0.72:
            line = (f"{ts} WARN  [sched-{rng.randint(1, 8)}] c.f.waiting.QueueScreen - screen {rng.randint(1, 40)} "
                    f"stale for {rng.randint(1000, 99999)} ms, last refresh {ts[:19]}")
        elif k < 0.80:
            line = (f"{ts[:19]}.{rng.randrange(1000):03d} CST [{rng.randint(1000, 99999)}] LOG:  duration: "
                    f"{rng.random() * 900:.3f} ms  statement: SELECT * FROM visit WHERE dept_id = {rng.randint(1, 400)}")
        elif k < 0.88:
            line = (f"\tat com.fuhosp.journey.sync.SyncJob.run(SyncJob.java:{rng.randint(10, 900)}) "
                    f"~[journey-{rng.randint(1, 9)}.{rng.randint(0, 20)}.jar:na]")
        elif k < 0.96:
            line = (f"{ts} ERROR [exec-{rng.randint(1, 99)}] c.f.journey.Sync - sync failed: connection reset by "
                    f"peer (retry {rng.randint(1, 5)}/5) request_id={trace[:16]}")
        else:
            pii = rng.randrange(6)
            if pii == 0:
                line = f'{ts} DEBUG [exec-1] c.f.ih.Api - request {{"patient_name": "{fake_name(rng)}", "phone": "{fake_phone(rng)}", "dept": "201"}}'
            elif pii == 1:
                line = f"{ts} INFO  [exec-2] c.f.ih.Identity - 实名认证 患者：{fake_name(rng)} 身份证号 {fake_id(rng)} 结果=通过"
            elif pii == 2:
                line = f"{ts} INFO  [exec-3] c.f.ih.pay.Refund - refund to card {fake_card(rng)} order {order}"
            elif pii == 3:
                line = f"{ts} INFO  [exec-4] c.f.portal.Record - 病案号：{rng.randrange(10**7, 10**9)} 住院号 {rng.randrange(10**6, 10**8)} MRN{rng.randrange(10**6, 10**9)}"
            elif pii == 4:
                line = f"{ts} INFO  [exec-5] c.f.waiting.Call - call name={fake_name(rng)} tel +86 {fake_phone(rng)} room 3"
            else:
                line = f"{ts} WARN  [exec-6] c.f.ih.Notify - sms to {fake_phone(rng)} failed, 就诊人：{fake_name(rng)}"
        out.append(line + "\n")
        total += len(line) + 1
    return "".join(out)


class NaiveRedactor:
    """The baseline: one regex per detector, applied one after another to every line."""

    def __init__(self, salt: bytes):
        self.key = salt
        self.counts: dict[str, int] = {}
        self.detectors = [
            (re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"), self._id),
            (re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d{9}(?!\d)"), self._phone),
            (re.compile(r"(?<![\dA-Za-z.])\d{13,19}(?![\dA-Za-z])"), self._card),
            (re.compile(r"(?<!\d)\d{4}(?:[ -]\d{4}){3}(?:[ -]\d{1,3})?(?!\d)"), self._card),
        ]
        for pattern in R.DEFAULT_MRN_PATTERNS:
            self.detectors.append((re.compile(pattern), self._kind("mrn")))
        for field in R.DEFAULT_NAME_FIELDS:
            for text, _groups in R._name_branches(field):
                self.detectors.append((re.compile(text), self._kind("name")))

    def token(self, kind: str, value: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        digest = hmac.new(self.key, (kind + "\x00" + value).encode("utf-8", "surrogateescape"), hashlib.sha256)
        return f"[{R.TOKEN_LABELS[kind]}:{digest.hexdigest()[:8]}]"

    def _id(self, m: re.Match) -> str:
        v = m.group(0)
        return self.token("id_card", v.upper()) if R.id_card_valid(v) else v

    def _phone(self, m: re.Match) -> str:
        return self.token("phone", re.sub(r"\D", "", m.group(0))[-11:])

    def _card(self, m: re.Match) -> str:
        d = re.sub(r"\D", "", m.group(0))
        if len(d) != 18 and d[0] in "234569" and R.luhn_ok(d):
            return self.token("bank_card", d)
        return m.group(0)

    def _kind(self, kind: str):
        def sub(m: re.Match) -> str:
            if TOKEN.search(m.group(0)) or any(t.start() < m.start() < t.end() for t in TOKEN.finditer(m.string)):
                return m.group(0)  # an earlier detector got there first
            for g in range(1, (m.re.groups or 0) + 1):
                if m.start(g) != -1:
                    s, e = m.span(g)
                    return m.string[m.start():s] + self.token(kind, R._normalise(kind, m.group(g))) + m.string[e:m.end()]
            return self.token(kind, R._normalise(kind, m.group(0)))
        return sub

    def redact_line(self, line: str) -> str:
        for rx, fn in self.detectors:
            line = rx.sub(fn, line)
        return line


def run_engine(text: str, salt: bytes) -> tuple[float, str, dict]:
    r = R.Redactor({"salt": salt})
    out = []
    t0 = time.process_time()
    step = R.CHUNK_SIZE
    start = 0
    while start < len(text):
        end = text.find("\n", start + step)
        end = len(text) if end == -1 else end + 1
        out.append(r.redact_text(text[start:end]))
        start = end
    return time.process_time() - t0, "".join(out), dict(r.counts)


def run_naive(lines: list[str], salt: bytes) -> tuple[float, str, dict]:
    r = NaiveRedactor(salt)
    t0 = time.process_time()
    out = [r.redact_line(line) for line in lines]
    return time.process_time() - t0, "".join(out), r.counts


def run_file(path: str, salt: bytes) -> float:
    r = R.Redactor({"salt": salt})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.process_time()
        R.redact_file(path, os.path.join(tmp, "out.log"), r)
        return time.process_time() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0, help="size of the generated log text (MB)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per contender (median reported)")
    args = ap.parse_args()

    text = generate(int(args.mb * 1e6))
    size_mb = len(text.encode("utf-8")) / 1e6
    lines = text.splitlines(keepends=True)
    salt = os.urandom(32)
    print(f"generated {size_mb:.1f} MB, {len(lines)} lines; python {sys.version.split()[0]}; "
          f"possessive number regex: {R._POSSESSIVE}")

    engine, naive, files = [], [], []
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".log", delete=False) as fh:
        fh.write(text)
        path = fh.name
    try:
        for i in range(args.rounds):
            secs, out_e, counts_e = run_engine(text, salt)
            engine.append(size_mb / secs)
            secs, out_n, counts_n = run_naive(lines, salt)
            naive.append(size_mb / secs)
            files.append(size_mb / run_file(path, salt))
            if i == 0:
                same = out_e == out_n
                print(f"counts: {dict(sorted(counts_e.items()))}; same output as baseline: {same}")
                if not same:
                    print(f"  baseline counts differ: {dict(sorted(counts_n.items()))}")
            print(f"round {i + 1}: engine {engine[-1]:.1f} MB/s, baseline {naive[-1]:.1f} MB/s, "
                  f"redact_file {files[-1]:.1f} MB/s")
    finally:
        os.unlink(path)
    me, mn, mf = statistics.median(engine), statistics.median(naive), statistics.median(files)
    print(f"median engine      {me:7.1f} MB/s  (redact_text, 1 MiB blocks)")
    print(f"median redact_file {mf:7.1f} MB/s  (read, decode, redact, encode, hash, write)")
    print(f"median baseline    {mn:7.1f} MB/s  (per line, one re.sub per detector)")
    print(f"ratio engine/baseline {me / mn:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
