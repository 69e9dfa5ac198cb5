"""Notifications reach a real SMTP server and a real webhook receiver (lab/receivers), with retries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hospops import notify
from hospops.errors import UserError
from hospops.incidents import Incidents
from hospops.notify import NotifyConfig

REPO = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")
TOKEN = "s3cr3t-robot-key-0042"
SMTP_PASSWORD = "mail-pass-9981"


class Receiver:
    def __init__(self, script: str, directory: Path, *extra: str) -> None:
        self.dir = directory
        self.proc = subprocess.Popen([sys.executable, str(REPO / "lab" / "receivers" / script), "--port", "0",
                                      "--dir", str(directory), *extra], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on"), line
        self.port = int(line.rsplit(":", 1)[1])

    def stored(self, suffix: str = ".json", want: int = 1, wait: float = 3.0) -> list[dict]:
        deadline = time.monotonic() + wait
        while True:
            files = sorted(self.dir.glob(f"*{suffix}"))
            if len(files) >= want or time.monotonic() > deadline:
                return [json.loads(p.read_text(encoding="utf-8")) for p in files]
            time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


# `store` (SQLite and PostgreSQL) comes from tests/conftest.py


@pytest.fixture()
def receivers(tmp_path):
    made = []

    def start(script: str, name: str, *extra: str) -> Receiver:
        r = Receiver(script, tmp_path / name, *extra)
        made.append(r)
        return r

    yield start
    for r in made:
        r.stop()


def config(smtp: Receiver, hook: Receiver, dingtalk: Receiver | None = None, json_hook: Receiver | None = None,
           **extra) -> NotifyConfig:
    channels = {
        "mail": {"type": "smtp", "host": "127.0.0.1", "port": smtp.port, "from": "hospops@lab.invalid"},
        "wecom": {"type": "wecom", "url": f"http://127.0.0.1:{hook.port}/cgi-bin/webhook/send?key={TOKEN}"},
    }
    if dingtalk:
        channels["dingtalk"] = {"type": "dingtalk", "secret": "SEC-dingtalk-signing",
                                "url": f"http://127.0.0.1:{dingtalk.port}/robot/send?access_token={TOKEN}"}
    if json_hook:
        channels["hook"] = {"type": "json", "url": f"http://127.0.0.1:{json_hook.port}/events"}
    cfg = {
        "retries": 2, "backoff_seconds": 0.01, "timeout_seconds": 2,
        "channels": channels,
        "contacts": {
            "oncall": {"name": "值班工程师", "email": "oncall@vendor.invalid", "channels": ["mail", "wecom"]},
            "lead": {"name": "项目负责人", "email": "lead@vendor.invalid", "channels": ["mail"], "lang": "en"},
            "hospital": {"name": "信息科", "email": "it@hospital.invalid", "mobile": "13800000000",
                         "channels": ["mail"] + (["dingtalk"] if dingtalk else []) + (["hook"] if json_hook else [])},
        },
        "routes": [
            {"events": ["incident.*", "deadline.*"], "levels": ["L1", "L2"], "to": ["oncall", "hospital"]},
            {"events": ["incident.escalated"], "to": ["lead"]},
            {"events": ["approval.requested"], "to": ["hospital"]},
        ],
        "escalation": ["oncall", "lead"],
        **extra,
    }
    return NotifyConfig.from_config(cfg)


def test_incident_notifications_arrive_in_chinese_with_level_service_and_advice(store, receivers):
    smtp = receivers("smtp_sink.py", "mail")
    hook = receivers("webhook_sink.py", "wecom")
    ding = receivers("webhook_sink.py", "ding")
    cfg = config(smtp, hook, dingtalk=ding)
    now = lambda: datetime(2026, 11, 24, 23, 0, tzinfo=SH)  # noqa: E731
    inc = Incidents(store, now=now, notifier=notify.notifier_for(store, cfg, now=now, sleep=lambda s: None),
                    services={"ih": {"title": {"zh": "互联网医院平台", "en": "Internet hospital platform"}}})
    row = inc.open(service="ih", symptom="payment_failed", level="L1", title="互联网医院平台测试支付失败",
                   actor="probe", source="probe", rule="ih-payment-failed")

    mails = smtp.stored(want=2)
    assert sorted(m["rcpt_to"][0] for m in mails) == ["it@hospital.invalid", "oncall@vendor.invalid"]
    text = mails[0]["text"]
    assert mails[0]["subject"].startswith("【L1 故障】互联网医院平台")
    for words in ("L1", "互联网医院平台", row["id"], "对医院的影响", "扫码付", "医院该如何应对", "备用收费",
                  "2026-11-25 08:00", "接下来"):
        assert words in text, words
    wecom = hook.stored()[0]["body"]
    assert wecom["msgtype"] == "markdown" and "互联网医院平台" in wecom["markdown"]["content"]
    ding_body = ding.stored()[0]
    assert ding_body["body"]["msgtype"] == "markdown" and ding_body["body"]["markdown"]["title"].startswith("【L1")
    assert ding_body["body"]["at"]["atMobiles"] == ["13800000000"]
    assert {"access_token", "timestamp", "sign"} <= set(ding_body["query_keys"])  # DingTalk signing

    audit_rows = store.query("SELECT kind, data FROM audit WHERE kind LIKE 'notify.%'")
    assert [r["kind"] for r in audit_rows] == ["notify.sent"] * 4
    assert all(TOKEN not in r["data"] for r in audit_rows)

    inc.resolve(row["id"], "alice")
    mails = smtp.stored(want=4)
    assert any("已恢复" in m["subject"] for m in mails)


def test_retries_after_receiver_failures_and_failures_are_audited(store, receivers):
    smtp = receivers("smtp_sink.py", "mail", "--fail-first", "1")
    hook = receivers("webhook_sink.py", "wecom", "--fail-first", "2", "--fail-with", "errcode")
    cfg = config(smtp, hook)
    sleeps = []
    ctx = {"id": "CR-1", "level": "L1", "service": "ih", "title": {"zh": "重启互联网医院平台", "en": "Restart ih"},
           "action": "restart", "hosts": ["ih1"], "approve_command": "hospops change approve CR-1"}
    out = notify.send(store, "approval.requested", ctx, config=cfg, sleep=sleeps.append)
    assert [(d.channel, d.status, d.attempts) for d in out] == [("mail", "sent", 2)]
    assert sleeps == [0.01]
    mail = smtp.stored()[0]
    assert "请审批" in mail["subject"] and "hospops change approve CR-1" in mail["text"]

    # the robot refuses twice (errcode), then accepts: 3 attempts with backoff 0.01, 0.02
    sleeps.clear()
    out = notify.send(store, "incident.opened", {"id": "INC-X", "level": "L2", "service": "portal",
                                                 "title": "portal down", "repeat_no": 1, "repeat_threshold": 3},
                      config=cfg, sleep=sleeps.append)
    wecom = [d for d in out if d.channel == "wecom"][0]
    assert (wecom.status, wecom.attempts) == ("sent", 3) and sleeps.count(0.01) and 0.02 in sleeps

    # a dead endpoint: every attempt fails, the failure is recorded and audited without the token
    hook.stop()
    out = notify.send(store, "incident.opened", {"id": "INC-Y", "level": "L2", "service": "portal",
                                                 "title": "portal down"}, config=cfg, sleep=lambda s: None)
    failed = [d for d in out if d.status == "failed"]
    assert [d.channel for d in failed] == ["wecom"] and failed[0].attempts == 3
    row = store.one("SELECT * FROM audit WHERE kind = 'notify.failed'")
    data = json.loads(row["data"])
    assert data["channel"] == "wecom" and data["attempts"] == 3 and "reach" in data["error"]
    assert TOKEN not in row["data"] and TOKEN not in failed[0].error
    assert store.one("SELECT status FROM notifications WHERE subject = 'INC-Y' AND channel = 'wecom'")["status"] == "failed"


def test_routing_by_level_time_of_day_and_unacknowledged_escalation(store, receivers):
    smtp = receivers("smtp_sink.py", "mail")
    hook = receivers("webhook_sink.py", "hook")
    cfg = config(smtp, hook, json_hook=hook, routes=[
        {"events": ["incident.opened"], "levels": ["L1", "L2"], "hours": "off_hours", "to": ["oncall"],
         "channels": ["mail"]},
        {"events": ["incident.opened"], "levels": ["L1"], "services": ["ih"], "to": ["hospital"], "channels": ["hook"]},
    ])
    night = datetime(2026, 11, 24, 23, 0, tzinfo=SH)
    day = datetime(2026, 11, 25, 10, 0, tzinfo=SH)
    assert cfg.recipients("incident.opened", {"level": "L2", "service": "portal"}, night) == [("oncall", "mail")]
    assert cfg.recipients("incident.opened", {"level": "L2", "service": "portal"}, day) == []
    assert cfg.recipients("incident.opened", {"level": "L1", "service": "ih"}, day) == [("hospital", "hook")]
    assert cfg.recipients("incident.opened", {"level": "L3", "service": "ih"}, night) == []
    assert cfg.recipients("incident.unacknowledged", {"level": "L1", "step": 1}, day) == [("lead", "mail")]

    clock = [night]
    inc = Incidents(store, now=lambda: clock[0],
                    notifier=notify.notifier_for(store, cfg, now=lambda: clock[0], sleep=lambda s: None))
    row = inc.open(service="ih", symptom="payment_failed", level="L1", title="pay failed", actor="probe")
    assert hook.stored()[0]["body"]["level"] == "L1"          # the generic JSON webhook carries fields
    clock[0] = night + timedelta(minutes=16)
    assert ("incident.unacknowledged", row["id"]) in inc.check_clocks(ack_after=timedelta(minutes=15))
    mails = smtp.stored(want=2)
    lead_mail = [m for m in mails if m["rcpt_to"] == ["lead@vendor.invalid"]][0]
    assert "Unacknowledged" in lead_mail["subject"]                      # the lead reads English
    inc.ack(row["id"], "alice")
    clock[0] = night + timedelta(minutes=40)
    assert not [e for e in inc.check_clocks(ack_after=timedelta(minutes=15)) if e[0] == "incident.unacknowledged"]


def test_bad_notify_config_is_named():
    with pytest.raises(UserError, match=r"routes\[1\].to: 'nobody'"):
        NotifyConfig.from_config({"contacts": {}, "routes": [{"to": ["nobody"]}]})
    with pytest.raises(UserError, match="channels.x.type"):
        NotifyConfig.from_config({"channels": {"x": {"type": "pager"}}})


def test_english_rendering_and_generic_template():
    subject, text = notify.render("something.else", {"title": {"zh": "维护通知", "en": "Maintenance"},
                                                     "next": {"en": "we will tell you"}}, "en")
    assert subject == "Maintenance" and "we will tell you" in text


def test_third_repeat_notifies_the_responsible_people(store, receivers):
    smtp = receivers("smtp_sink.py", "mail")
    hook = receivers("webhook_sink.py", "wecom")
    cfg = config(smtp, hook)
    clock = [datetime(2026, 11, 2, 10, 0, tzinfo=SH)]
    inc = Incidents(store, now=lambda: clock[0],
                    notifier=notify.notifier_for(store, cfg, now=lambda: clock[0], sleep=lambda s: None))
    for _ in range(3):
        row = inc.open(service="portal", symptom="unavailable", level="L2", title="门户无法访问", actor="probe")
        inc.resolve(row["id"], "alice")
        clock[0] += timedelta(days=2)
    lead = [m for m in smtp.stored(want=13) if m["rcpt_to"] == ["lead@vendor.invalid"]]
    assert len(lead) == 1 and lead[0]["subject"].startswith("[Raised to L1]")
    assert "occurrence 3" in lead[0]["text"] and "7.7.2 F" in lead[0]["text"]
    oncall = [m for m in smtp.stored() if m["rcpt_to"] == ["oncall@vendor.invalid"] and "升级为 L1" in m["subject"]]
    assert len(oncall) == 1 and "第 3 次" in oncall[0]["text"]
