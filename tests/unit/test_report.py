"""Reports: built from a store with 90 days of synthetic inspection history; HTML has every section,
charts, predictions and the contract clauses; the PDF is produced (WeasyPrint) in zh and en."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from hospops import inspections, reports

NOW = datetime(2026, 12, 20, 2, 0, tzinfo=timezone.utc)


def _result(host: str, day: int, service: str | None) -> dict:
    fill = 40 + day * 0.5 if host == "db" else 30.0               # db's data disk fills half a point a day
    fs = {"mount": "/var/lib/postgresql" if host == "db" else "/", "fstype": "ext4", "device": "/dev/vda",
          "size_bytes": 100 * 2**30, "used_bytes": int(fill * 2**30), "avail_bytes": int((100 - fill) * 2**30),
          "used_pct": fill, "inodes_total": 1000, "inodes_used": 10, "inodes_pct": 1.0}
    findings = []
    if host == "gateway":
        findings.append({"code": "certificate_expiring", "severity": "high", "subject": "/etc/nginx/tls/hospital.pem",
                         "message": "certificate expires in 25 days", "clause": "5.2",
                         "recommendation": "renew the certificate", "value": 25, "threshold": 30})
    if host == "db":
        findings.append({"code": "index_bloat", "severity": "medium", "subject": "hospital.public.ih_payments_order_ref_idx",
                         "message": "index is about 62% bloat", "clause": "5.2", "recommendation": "REINDEX CONCURRENTLY",
                         "value": 62, "threshold": 30})
    res = {"host": host, "at": (NOW - timedelta(days=90 - day)).isoformat(), "service": service, "light": False,
           "os": {"filesystems": [fs], "memory": {"used_pct": 40.0}, "load": {"load15_per_cpu": 0.3},
                  "certificates": ([{"path": "/etc/nginx/tls/hospital.pem", "days_left": 115 - day}] if host == "gateway" else []),
                  "http": ([{"name": service, "latency_ms": 20 + day % 7, "healthy": True}] if service else []),
                  "logs": []},
           "database": ({"databases": [{"datname": "hospital", "size_bytes": 2**30 + day * 20 * 2**20}],
                         "connections": {"used_pct": 12.0}, "archive_mode": "on",
                         "archiver": {"last_archived_time": "2026-12-20T01:59:00+00:00", "failed_count": 0, "lag_segments": 0}}
                        if host == "db" else None),
           "findings": findings}
    return res


@pytest.fixture()
def history(store):
    hosts = {"gateway": None, "portal": "portal", "ih1": "ih", "db": None}
    for day in range(0, 91, 3):
        at = (NOW - timedelta(days=90 - day)).isoformat()
        inspections.record(store, kind="full", run_id=None, actor="test",
                           results={h: _result(h, day, s) for h, s in hosts.items()}, unreachable=[], failed=[],
                           started=at, ended=at)
    return store


def test_quarterly_report_has_every_section(history, tmp_path):
    ctx = reports.build(history, "quarterly", quarter="2026Q4", lang="zh", now=NOW)
    html = reports.render_html(ctx)
    for section in ("总体评估", "各服务对象评分", "发现的问题", "趋势与预测", "维护记录", "备份与恢复演练证据", "服务水平（SLA）摘要"):
        assert section in html, section
    assert "5.1 每季度巡检与评估" in html and "7.4.2(4) 状态报告和故障预测" in html
    assert html.count("<svg") == 2                                 # disk use and database size
    assert "证书即将到期" in html and "索引膨胀" in html
    # the db disk: 85 % now, +0.5 %/day: full in 30 days
    db_disk = next(p for p in ctx["disk_preds"] if p["subject"] == "db:/var/lib/postgresql")
    assert db_disk["days_left"] == "30" and db_disk["per_day"] == "+0.50%"
    assert ctx["db_preds"][0]["per_day"].startswith("20.0 MiB")
    cert = ctx["certs"][0]
    assert cert["days_left"] == "25" and cert["urgent"]
    scores = {r["key"]: r["score"] for r in ctx["scores"]}
    assert scores["portal"] == 100 - 15 - 6                        # shared gateway (high) and db (medium) findings
    assert len([r for r in inspections.runs(history) if r["started_at"] >= "2026-09-30T16:00"]) == ctx["runs"]


def test_english_and_daily(history):
    html = reports.render_html(reports.build(history, "quarterly", quarter="2026Q4", lang="en", now=NOW))
    assert "Quarterly inspection and assessment report" in html and "Failure prediction" in html
    daily = reports.render_html(reports.build(history, "daily", lang="zh", now=NOW))
    assert "每日运行状态报告" in daily and "服务水平" not in daily


def test_empty_store_and_bad_input(store):
    html = reports.render_html(reports.build(store, "quarterly", quarter="2026Q3", now=NOW))
    assert "本报告期内没有巡检记录" in html
    from hospops.errors import UserError

    with pytest.raises(UserError):
        reports.quarter_bounds("2026Q5", NOW)
    assert reports.quarter_bounds(None, datetime(2027, 1, 2, tzinfo=timezone.utc))[0] == "2026Q4"
    assert reports.quarter_bounds(None, datetime(2027, 2, 2, tzinfo=timezone.utc))[0] == "2027Q1"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pdf_is_produced(history, tmp_path, lang):
    pytest.importorskip("weasyprint")
    paths = reports.generate("quarterly", quarter="2026Q4", lang=lang, out_dir=tmp_path, store=history,
                             inventory=None, now=NOW)
    pdf = paths[1]
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
        assert ("季度巡检" if lang == "zh" else "Quarterly inspection") in text
    assert history.one("SELECT 1 AS x FROM audit WHERE kind = 'report.generated'")
