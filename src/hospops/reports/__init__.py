"""The reports the hospital's IT office reads: ``quarterly`` (contract 5.1 assessment, 7.4.2 (4) status
and failure prediction) and ``daily``. HTML with inline SVG charts, and PDF (WeasyPrint); Chinese by
default, English with ``lang="en"``.

``build()`` gathers the context from the store (inspections, findings, metric history, maintenance,
backup/drill tables when they exist, the SLA module when importable); ``render_html()`` fills
``templates/report/report.html.j2``; ``generate()`` writes both files and records it in the audit log.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hospops import audit, inspections, predict
from hospops.errors import UserError
from hospops.paths import hospops_home
from hospops.reports import i18n, svg

TZ = ZoneInfo("Asia/Shanghai")
SHARED_GROUPS = ("gateways", "databases", "backup_hosts")


def quarter_bounds(quarter: str | None, now: datetime, tz: ZoneInfo = TZ) -> tuple[str, datetime, datetime]:
    """'2026Q4' -> (label, start, end) in ``tz``. Default: the current quarter, or the previous one during
    the first 15 days of a quarter (when the quarterly report is written)."""
    if quarter:
        m = re.fullmatch(r"(\d{4})[Qq]([1-4])", quarter.strip())
        if not m:
            raise UserError(f"--quarter {quarter!r} is not YYYYQn", "e.g. --quarter 2026Q4")
        year, q = int(m.group(1)), int(m.group(2))
    else:
        local = now.astimezone(tz) - timedelta(days=15)
        year, q = local.year, (local.month - 1) // 3 + 1
    start = datetime(year, 3 * (q - 1) + 1, 1, tzinfo=tz)
    end = datetime(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1, tzinfo=tz)
    return f"{year}Q{q}", start, end


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _services(inv) -> tuple[dict[str, dict[str, Any]], list[str]]:
    if inv is None:
        return {}, []
    try:
        services = inv.var("hospops_services", None) or {}
        groups = inv.groups
    except Exception:  # noqa: BLE001 - a report without the inventory still renders
        return {}, []
    shared = sorted({h for g in SHARED_GROUPS for h in groups.get(g, [])})
    return {k: {"title": v.get("title") or {}, "hosts": groups.get(v.get("group", ""), [])} for k, v in services.items()}, shared


def _num(v: Any) -> str:
    try:
        return f"{float(v):g}"
    except (TypeError, ValueError):
        return str(v)


def _grade(score: int) -> str:
    return "a" if score >= 90 else "b" if score >= 75 else "c" if score >= 50 else "d"


PREFERRED_COLUMNS = {
    "drills": ["started_at", "status", "backup_type", "backup_stop", "target", "rto_seconds", "rpo_seconds", "scratch_host"],
}


def _table_rows(store, table: str, limit: int = 12, since: str | None = None) -> tuple[list[str], list[list[str]]] | None:
    try:
        rows = store.query(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names only
    except Exception:  # noqa: BLE001 - the table belongs to other work and may not exist yet
        return None
    if since:
        rows = [r for r in rows if str(r.get("started_at") or r.get("at") or "9") >= since]
    if not rows:
        return list(), []
    cols = [c for c in PREFERRED_COLUMNS.get(table, []) if c in rows[0]] or \
        [c for c in rows[0].keys() if not any(s in c for s in ("key", "secret", "password", "token"))][:7]
    return cols, [[str(r.get(c, ""))[:40] for c in cols] for r in rows[-limit:]]


def _sla(store, start: datetime, end: datetime, services: list[str]) -> list[tuple[str, list[str], list[list[str]]]] | None:
    try:
        from hospops import sla
        from hospops.incidents.clock import SlaPolicy

        policy = SlaPolicy()
        out = []
        month = start.replace(day=1)
        while month < end:
            report = sla.build(store, month.strftime("%Y-%m"), policy, services=services)
            title, header, rows = sla.tables(report, policy)[0]
            out.append((f"{month:%Y-%m} {title}", header, rows))
            month = (month + timedelta(days=32)).replace(day=1)
        return out
    except Exception:  # noqa: BLE001 - the SLA section is optional
        return None


def build(store, kind: str = "quarterly", *, quarter: str | None = None, lang: str = "zh", inventory=None,
          now: datetime | None = None) -> dict[str, Any]:
    if kind not in ("quarterly", "daily"):
        raise UserError(f"unknown report {kind!r}", "use quarterly or daily")
    if lang not in i18n.STRINGS:
        raise UserError(f"unknown language {lang!r}", "use --lang zh or --lang en")
    t = i18n.STRINGS[lang]
    now = now or datetime.now(timezone.utc)
    if kind == "quarterly":
        label, start, end = quarter_bounds(quarter, now)
        history_start = start - timedelta(days=92)
    else:
        end = now
        start = now - timedelta(days=1)
        label = now.astimezone(TZ).strftime("%Y-%m-%d")
        history_start = now - timedelta(days=30)
    until = min(end, now + timedelta(seconds=1))
    runs = inspections.runs(store, since=_iso(start), until=_iso(until))
    latest = runs[-1] if runs else inspections.latest(store, until=_iso(until))
    found = inspections.findings(store, latest["id"]) if latest else []
    results = inspections.results(store, latest["id"]) if latest else {}
    services, shared = _services(inventory)
    if not services:  # no inventory: group by the service each host reported
        for host, res in results.items():
            if res.get("service"):
                services.setdefault(res["service"], {"title": {}, "hosts": []})["hosts"].append(host)
        shared = sorted(h for h, res in results.items() if not res.get("service"))
    sev_rank = {s: i for i, s in enumerate(inspections.SEVERITY_ORDER)}
    rows = []
    for f in sorted(found, key=lambda f: (sev_rank.get(f["severity"], 9), f["host"], f["code"])):
        zh = i18n.FINDINGS_ZH.get(f["code"])
        detail = f["message"]
        if lang == "zh":
            detail = str(f["subject"]) + (f"：{_num(f['value'])}（阈值 {_num(f['threshold'])}）"
                                          if f.get("value") is not None and f.get("threshold") is not None
                                          else f"：{_num(f['value'])}" if f.get("value") is not None else "")
        rows.append({**f, "severity_label": t[f["severity"]], "detail": detail,
                     "title": (zh[0] if zh and lang == "zh" else f["code"].replace("_", " ")),
                     "advice": (zh[1] if zh and lang == "zh" else f["recommendation"]),
                     "clause_label": i18n.CLAUSES.get(f["clause"], {}).get(lang, f["clause"])})
    score_rows = []
    for key, svc in services.items():
        hosts = set(svc["hosts"]) | set(shared)
        mine = [f for f in found if f["host"] in hosts]
        sc = inspections.score(mine)
        score_rows.append({"key": key, "title": svc["title"].get(lang) or key, "hosts": ", ".join(sorted(svc["hosts"])),
                           "score": sc, "grade": t["grade_" + _grade(sc)], "grade_class": _grade(sc),
                           "counts": {s: sum(1 for f in mine if f["severity"] == s) for s in inspections.SEVERITY_ORDER}})
    infra = [f for f in found if f["host"] in shared]
    if shared:
        sc = inspections.score(infra)
        score_rows.append({"key": "infra", "title": t["infra"], "hosts": ", ".join(shared), "score": sc,
                           "grade": t["grade_" + _grade(sc)], "grade_class": _grade(sc),
                           "counts": {s: sum(1 for f in infra if f["severity"] == s) for s in inspections.SEVERITY_ORDER}})
    overall = min([r["score"] for r in score_rows], default=inspections.score(found)) if latest else None

    # trends and predictions over the history window
    hist_until = _iso(until)
    disks = {k: [(_dt(a), v) for a, v in s if a >= _iso(history_start)]
             for k, s in inspections.series(store, "disk_used_pct", until=hist_until).items()}
    disk_preds = []
    for (host, mount), s in disks.items():
        if not s:
            continue
        p = predict.days_until([(a, v) for a, v in s], 100.0, subject=f"{host}:{mount}", now=now)
        if p is None:
            continue
        disk_preds.append({"subject": p.subject, "current": f"{p.current:.1f}%", "per_day": f"{p.slope_per_day:+.2f}%",
                           "days_left": "-" if p.days_left is None else f"{p.days_left:.0f}",
                           "reaches": "-" if p.reaches_at is None else p.reaches_at.astimezone(TZ).strftime("%Y-%m-%d"),
                           "r2": f"{p.r2:.2f}", "advice": predict.advice("disk", p, lang),
                           "sort": p.days_left if p.days_left is not None else 1e9})
    disk_preds.sort(key=lambda r: r["sort"])
    db_series = {k: [(_dt(a), v) for a, v in s if a >= _iso(history_start)]
                 for k, s in inspections.series(store, "db_size_bytes", until=hist_until).items()}
    db_preds = []
    for (host, dbname), s in sorted(db_series.items()):
        g = predict.growth(s, 90, subject=f"{host}:{dbname}")
        if g:
            db_preds.append({"subject": g["subject"], "current": predict._bytes(g["current"]),
                             "per_day": predict._bytes(g["slope_per_day"]), "projected": predict._bytes(g["projected"]),
                             "r2": f"{g['r2']:.2f}", "advice": predict.advice("db", g, lang)})
    certs = []
    for (host, path), s in sorted(inspections.series(store, "cert_days_left", until=hist_until).items()):
        days = s[-1][1]
        certs.append({"subject": f"{host}:{path}", "days_left": f"{days:.0f}",
                      "reaches": (_dt(s[-1][0]) + timedelta(days=days)).astimezone(TZ).strftime("%Y-%m-%d"),
                      "advice": predict.advice("cert", days, lang), "urgent": days <= 30})
    charts = []
    top_disks = sorted(disks.items(), key=lambda kv: -(kv[1][-1][1] if kv[1] else 0))[:5]
    if any(len(s) >= 2 for _, s in top_disks):
        charts.append(svg.line_chart({f"{h}:{m}": s for (h, m), s in top_disks if s}, title=t["disk"], unit="%",
                                     limit=100.0, limit_label=t["limit_full"], y_min=0, y_max=100))
    if any(len(s) >= 2 for s in db_series.values()):
        charts.append(svg.line_chart({f"{h}:{d}": s for (h, d), s in db_series.items() if s}, title=t["db_size"]))

    maint = []
    for m in inspections.maintenance(store, since=_iso(start), until=hist_until):
        import json as _json

        res = _json.loads(m["result"])
        acts = [f"{a['action']} {a['object']}" for a in res.get("actions") or []]
        removed = len(res.get("logs_removed") or []) + len(res.get("tmp_removed") or [])
        maint.append({"at": _dt(m["at"]).astimezone(TZ).strftime("%Y-%m-%d %H:%M"), "host": m["host"], "kind": m["kind"],
                      "actions": "; ".join(acts[:4]) + (f" (+{removed} files)" if removed else "") or "-",
                      "freed": predict._bytes(m["freed_bytes"])})
    archivers = []
    for host, res in results.items():
        db = res.get("database") or {}
        if db:
            arch = db.get("archiver") or {}
            archivers.append({"host": host, "mode": db.get("archive_mode"), "last": arch.get("last_archived_time") or "-",
                              "failed": arch.get("failed_count", 0), "lag": arch.get("lag_segments"),
                              "backup": (res.get("backup") or {}).get("summary", "-") if res.get("backup") else "-"})
    return {
        "lang": lang, "t": t, "kind": kind, "label": label,
        "title": t[f"{kind}_title"], "period": f"{start.astimezone(TZ):%Y-%m-%d} — {(end - timedelta(seconds=1)).astimezone(TZ):%Y-%m-%d}",
        "generated": now.astimezone(TZ).strftime("%Y-%m-%d %H:%M %Z"),
        "clauses": [i18n.CLAUSES[c][lang] for c in ("5.1", "5.2", "7.4.2 (4)", "7.4.2 (5)")],
        "latest": latest, "latest_at": _dt(latest["started_at"]).astimezone(TZ).strftime("%Y-%m-%d %H:%M") if latest else None,
        "runs": len(runs), "overall": overall, "overall_grade": t["grade_" + _grade(overall)] if overall is not None else "-",
        "overall_class": _grade(overall) if overall is not None else "c",
        "scores": score_rows, "findings": rows,
        "counts": {s: sum(1 for f in found if f["severity"] == s) for s in inspections.SEVERITY_ORDER},
        "disk_preds": disk_preds, "db_preds": db_preds, "certs": certs, "charts": charts,
        "maintenance": maint, "archivers": archivers,
        "backups_table": _table_rows(store, "backups", since=_iso(history_start)),
        "drills_table": _table_rows(store, "drills", since=_iso(history_start)),
        "sla": _sla(store, start, end, list(services)) if kind == "quarterly" else None,
    }


def render_html(ctx: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("hospops", "templates/report"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    from markupsafe import Markup

    ctx = {**ctx, "charts": [Markup(c) for c in ctx["charts"]]}
    return env.get_template("report.html.j2").render(**ctx)


def render_pdf(html_text: str, path: Path) -> Path:
    try:
        import weasyprint
    except ImportError as exc:
        raise UserError("the PDF renderer WeasyPrint is not installed",
                        "pip install 'weasyprint>=62' into the hospops environment (./run setup does it)") from exc
    weasyprint.HTML(string=html_text, base_url=str(path.parent)).write_pdf(str(path))
    return path


def generate(kind: str, *, quarter: str | None = None, lang: str = "zh", out_dir: str | Path | None = None,
             store=None, inventory=None, now: datetime | None = None, pdf: bool = True,
             actor: str = "hospops") -> list[Path]:
    from hospops.store import open_store

    store = store or open_store()
    if inventory is None:
        try:
            from hospops import inventory as inventory_mod

            inventory = inventory_mod.load()
        except Exception:  # noqa: BLE001 - reports render without an inventory
            inventory = None
    ctx = build(store, kind, quarter=quarter, lang=lang, inventory=inventory, now=now)
    directory = Path(out_dir) if out_dir else hospops_home() / "reports"
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"hospops-{kind}-{ctx['label']}-{lang}"
    html_path = directory / f"{stem}.html"
    text = render_html(ctx)
    html_path.write_text(text, encoding="utf-8")
    paths = [html_path]
    if pdf:
        paths.append(render_pdf(text, directory / f"{stem}.pdf"))
    audit.record(store, "report.generated", stem,
                 {"kind": kind, "period": ctx["label"], "lang": lang, "files": [p.name for p in paths],
                  "inspection": (ctx["latest"] or {}).get("id"), "findings": ctx["counts"]}, actor=actor)
    return paths


__all__ = ["build", "generate", "quarter_bounds", "render_html", "render_pdf"]
