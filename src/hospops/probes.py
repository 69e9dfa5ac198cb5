"""Probes for `hospops watch`: HTTP health through the gateway and per host, a real test payment on
``ih`` (read back), and database connectivity; results become incidents through the classifier.

* Checks run concurrently (threads), with short timeouts, using only urllib and sockets; each
  reports its latency.
* De-duplication is by fingerprint (``service:symptom``): an open incident with the same
  fingerprint is updated, never doubled, so a flapping service opens one incident. An incident a
  probe opened is resolved only after ``resolve_after`` consecutive good rounds.
* Probe memory (streaks) is in the store (``probe_state``), so a restart loses nothing.

Inventory: ``hospops_services`` and ``hospops_gateway_url`` (the service table), per-host
``hospops_app_url``, ``hospops_db_probe`` and ``hospops_probe`` (group_vars/all/probe.yml).
"""

from __future__ import annotations

import json
import socket
import struct
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

from hospops import audit
from hospops.errors import UserError
from hospops.incidents import Incidents
from hospops.incidents.clock import iso
from hospops.incidents.rules import LEVELS, RuleSet

PROBE_DEFAULTS: dict[str, Any] = {
    "interval_seconds": 30,
    "timeout_seconds": 3.0,
    "slow_ms": 2000,
    "open_after": 1,          # consecutive bad rounds before an incident opens
    "resolve_after": 3,       # consecutive good rounds before a probe-opened incident resolves
    "payment": True,          # make a real test payment on services with payment_probe
    "direct": True,           # probe each host directly too, not only through the gateway
    "threads": 16,
}


@dataclass(frozen=True)
class HttpTarget:
    service: str
    path: str                 # "gateway" or "direct"
    host: str                 # inventory host, or "gateway"
    url: str                  # base URL ending without slash (…/ih or http://host:8000)


@dataclass(frozen=True)
class DbTarget:
    host: str
    port: int
    dbname: str
    user: str
    password: str = field(default="", repr=False)
    timeout: float = 3.0


@dataclass(frozen=True)
class ProbePlan:
    services: Mapping[str, Mapping[str, Any]]
    health: tuple[HttpTarget, ...]
    payment: tuple[HttpTarget, ...]
    db: DbTarget | None
    settings: Mapping[str, Any]

    @classmethod
    def from_inventory(cls, inv) -> "ProbePlan":
        settings = {**PROBE_DEFAULTS, **(inv.var("hospops_probe", None) or {})}
        unknown = set(settings) - set(PROBE_DEFAULTS)
        if unknown:
            raise UserError(f"hospops_probe: unknown key(s) {sorted(unknown)}", f"use only {sorted(PROBE_DEFAULTS)}")
        services = inv.var("hospops_services", None) or {}
        if not services:
            raise UserError(f"inventory {inv.path} declares no hospops_services", "add the service table (services.yml)")
        gateway = str(inv.var("hospops_gateway_url", "") or "").rstrip("/")
        groups = inv.groups
        health, payment = [], []
        for name, svc in services.items():
            targets = []
            if gateway and svc.get("gateway_path"):
                targets.append(HttpTarget(name, "gateway", "gateway", gateway + "/" + str(svc["gateway_path"]).strip("/")))
            if settings["direct"]:
                for host in groups.get(str(svc.get("group", "")), []):
                    url = inv.host_vars(host).get("hospops_app_url")
                    if url:
                        targets.append(HttpTarget(name, "direct", host, str(url).rstrip("/")))
            health += targets
            if svc.get("payment_probe") and settings["payment"]:
                payment += targets
        db = None
        cfg = inv.var("hospops_db_probe", None)
        if cfg:
            db = DbTarget(host=str(cfg.get("host", "127.0.0.1")), port=int(cfg.get("port", 5432)),
                          dbname=str(cfg.get("dbname", "postgres")), user=str(cfg.get("user", "postgres")),
                          password=str(cfg.get("password") or ""), timeout=float(cfg.get("timeout_seconds",
                                                                                              settings["timeout_seconds"])))
        return cls(services=services, health=tuple(health), payment=tuple(payment), db=db, settings=settings)


@dataclass
class CheckResult:
    kind: str                 # health | payment | db
    service: str
    path: str
    host: str
    ok: bool
    status: int | None = None
    latency_ms: float = 0.0
    error: str = ""
    body_status: str | None = None
    version: str = ""


# -- the checks ------------------------------------------------------------------------------
def _http(method: str, url: str, timeout: float, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", "User-Agent": "hospops-probe/1",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(65536) if exc.fp else b""
    try:
        parsed = json.loads(raw.decode("utf-8")) if raw else None
    except ValueError:
        parsed = None
    return status, parsed


def _error(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{type(reason).__name__}: {reason}"[:200]


def check_health(t: HttpTarget, timeout: float) -> CheckResult:
    start = time.monotonic()
    try:
        status, body = _http("GET", f"{t.url}/health", timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return CheckResult("health", t.service, t.path, t.host, False, None,
                           round((time.monotonic() - start) * 1000, 1), _error(exc))
    ms = round((time.monotonic() - start) * 1000, 1)
    body_status = body.get("status") if isinstance(body, dict) else None
    ok = status == 200
    err = "" if ok else f"HTTP {status}" + (f" {body.get('reason') or body.get('db') or ''}".rstrip()
                                              if isinstance(body, dict) else "")
    version = str(body.get("version", "")) if isinstance(body, dict) else ""
    return CheckResult("health", t.service, t.path, t.host, ok, status, ms, err, body_status, version)


def check_payment(t: HttpTarget, timeout: float) -> CheckResult:
    """A real 1-fen test payment (flagged probe), then read it back."""
    start = time.monotonic()
    order = f"probe-{uuid.uuid4().hex[:12]}"
    try:
        status, body = _http("POST", f"{t.url}/api/payments", timeout,
                             {"amount_fen": 1, "method": "scan", "order_ref": order, "probe": True})
        if status != 201 or not isinstance(body, dict) or body.get("status") != "recorded" or not body.get("id"):
            return CheckResult("payment", t.service, t.path, t.host, False, status,
                               round((time.monotonic() - start) * 1000, 1), f"payment not recorded: HTTP {status}")
        status2, back = _http("GET", f"{t.url}/api/payments/{body['id']}", timeout)
        ok = status2 == 200 and isinstance(back, dict) and str(back.get("id")) == str(body["id"])
        err = "" if ok else f"payment {body['id']} not readable back: HTTP {status2}"
        return CheckResult("payment", t.service, t.path, t.host, ok, status2,
                           round((time.monotonic() - start) * 1000, 1), err)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return CheckResult("payment", t.service, t.path, t.host, False, None,
                           round((time.monotonic() - start) * 1000, 1), _error(exc))


def check_db(t: DbTarget) -> CheckResult:
    """TCP connect plus the PostgreSQL startup handshake; with a password (and psycopg), a full login
    and ``SELECT 1``. A server that answers the startup message with an authentication request is up."""
    start = time.monotonic()

    def done(ok: bool, err: str = "") -> CheckResult:
        return CheckResult("db", "db", "direct", f"{t.host}:{t.port}", ok, None,
                           round((time.monotonic() - start) * 1000, 1), err[:200])

    if t.password:
        try:
            import psycopg
        except ImportError:
            psycopg = None
        if psycopg is not None:
            try:
                with psycopg.connect(host=t.host, port=t.port, dbname=t.dbname, user=t.user, password=t.password,
                                     connect_timeout=max(1, int(t.timeout)), application_name="hospops-probe") as c:
                    c.execute("SELECT 1")
                return done(True)
            except Exception as exc:  # noqa: BLE001 - any failure is the probe's answer
                return done(False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    try:
        with socket.create_connection((t.host, t.port), timeout=t.timeout) as sock:
            sock.settimeout(t.timeout)
            params = b"user\0" + t.user.encode() + b"\0database\0" + t.dbname.encode() + b"\0" \
                     b"application_name\0hospops-probe\0\0"
            sock.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
            head = _recv(sock, 5)
            kind, length = head[:1], struct.unpack("!I", head[1:5])[0]
            payload = _recv(sock, min(length - 4, 4096))
            if kind == b"R":
                try:  # be polite: terminate
                    sock.sendall(b"X" + struct.pack("!I", 4))
                except OSError:
                    pass
                return done(True)
            if kind == b"E":
                fields = dict((p[:1].decode(), p[1:].decode("utf-8", "replace")) for p in payload.split(b"\0") if p)
                return done(False, f"server refused: {fields.get('C', '')} {fields.get('M', '')}".strip())
            return done(False, f"unexpected answer {kind!r} to the startup message")
    except (OSError, struct.error) as exc:
        return done(False, _error(exc))


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed during the startup handshake")
        buf += chunk
    return buf


def run_checks(plan: ProbePlan) -> list[CheckResult]:
    timeout = float(plan.settings["timeout_seconds"])
    jobs: list[Callable[[], CheckResult]] = [lambda t=t: check_health(t, timeout) for t in plan.health]
    jobs += [lambda t=t: check_payment(t, timeout) for t in plan.payment]
    if plan.db:
        jobs.append(lambda: check_db(plan.db))
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(int(plan.settings["threads"]), len(jobs))) as pool:
        return list(pool.map(lambda job: job(), jobs))


def service_views(plan: ProbePlan, results: list[CheckResult]) -> list[dict[str, Any]]:
    """One view per service object (and one for the database), the input of the classifier."""
    slow_ms = float(plan.settings["slow_ms"])
    views = []
    for name, svc in plan.services.items():
        mine = [r for r in results if r.service == name]
        health = [r for r in mine if r.kind == "health"]
        gw = next((r for r in health if r.path == "gateway"), None)
        hosts = [r for r in health if r.path == "direct"]
        pays = [r for r in mine if r.kind == "payment"]
        view: dict[str, Any] = {
            "source": "probe", "service": name,
            "gateway": _short(gw) if gw else None,
            "hosts": [_short(r) for r in hosts],
            "hosts_ok": sum(r.ok for r in hosts), "hosts_total": len(hosts),
            "payment": ({"ok": all(p.ok for p in pays), "failed_hosts": [p.host for p in pays if not p.ok],
                         "error": "; ".join(f"{p.host}: {p.error}" for p in pays if not p.ok),
                         "checks": [_short(p) for p in pays]} if pays else None),
            "db": None,
            "slow": any(r.ok and r.latency_ms > slow_ms for r in mine),
        }
        if gw is None and not hosts:
            continue
        views.append(view)
    dbs = [r for r in results if r.kind == "db"]
    if dbs:
        views.append({"source": "probe", "service": "db", "gateway": None, "hosts": [], "hosts_ok": 0,
                      "hosts_total": 0, "payment": None, "db": _short(dbs[0]), "slow": False})
    return views


def _short(r: CheckResult) -> dict[str, Any]:
    d = asdict(r)
    d.pop("kind")
    return d


# -- the watcher -----------------------------------------------------------------------------
@dataclass
class RoundReport:
    at: datetime
    results: list[CheckResult]
    opened: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)      # fingerprints bad this round
    clock_events: list[tuple[str, str]] = field(default_factory=list)


class Watcher:
    def __init__(self, store, incidents: Incidents, plan: ProbePlan, rules: RuleSet | None = None,
                 checks: Callable[[ProbePlan], list[CheckResult]] = run_checks, ack_after=None) -> None:
        self.store = store
        self.incidents = incidents
        self.plan = plan
        self.rules = rules or incidents.rules
        self.checks = checks
        self.ack_after = ack_after

    def round(self) -> RoundReport:
        results = self.checks(self.plan)
        now = self.incidents.now()
        report = RoundReport(now, results)
        open_after = int(self.plan.settings["open_after"])
        resolve_after = int(self.plan.settings["resolve_after"])
        bad: dict[str, tuple[Any, dict[str, Any]]] = {}   # fingerprint -> (match, view)
        primary: set[str] = set()
        for view in service_views(self.plan, results):
            matches = self.rules.classify(view)
            for i, m in enumerate(matches):
                bad[m.fingerprint] = (m, view)
                if i == 0:
                    primary.add(m.fingerprint)
        report.problems = sorted(bad)
        # streaks for every fingerprint seen bad now or remembered
        known = {r["fingerprint"]: r for r in self.store.query("SELECT * FROM probe_state")}
        for fp in set(known) | set(bad):
            is_bad = fp in bad
            prev = known.get(fp)
            bad_streak = (int(prev["bad_streak"]) + 1 if prev else 1) if is_bad else 0
            good_streak = 0 if is_bad else (int(prev["good_streak"]) + 1 if prev else 1)
            detail = json.dumps(bad[fp][1] if is_bad else {}, ensure_ascii=False, default=str)
            with self.store.transaction():
                if prev:
                    self.store.execute("UPDATE probe_state SET bad_streak = :b, good_streak = :g, last_at = :at,"
                                       " last_ok = :ok, last_detail = :d WHERE fingerprint = :fp",
                                       {"b": bad_streak, "g": good_streak, "at": iso(now), "ok": int(not is_bad),
                                        "d": detail, "fp": fp})
                else:
                    self.store.execute("INSERT INTO probe_state (fingerprint, bad_streak, good_streak, last_at,"
                                       " last_ok, last_detail) VALUES (:fp, :b, :g, :at, :ok, :d)",
                                       {"b": bad_streak, "g": good_streak, "at": iso(now), "ok": int(not is_bad),
                                        "d": detail, "fp": fp})
            existing = self.incidents.open_by_fingerprint(fp)
            if is_bad:
                match, view = bad[fp]
                if existing:
                    self.incidents.observe(match, view, actor="probe", summary=_summary(view, match))
                    report.updated.append(existing["id"])
                elif fp in primary and bad_streak >= open_after and not self._service_has_worse(match, view):
                    row, created = self.incidents.observe(match, view, actor="probe", summary=_summary(view, match))
                    (report.opened if created else report.updated).append(row["id"])
            elif existing and existing["source"] == "probe" and good_streak >= resolve_after:
                self.incidents.resolve(existing["id"], "probe", f"{good_streak} consecutive good probe rounds")
                report.resolved.append(existing["id"])
        report.clock_events = self.incidents.check_clocks(ack_after=self.ack_after)
        failed = sum(not r.ok for r in results)
        if failed or report.opened or report.resolved:  # quiet rounds are not audited (2880 a day at 30 s)
            audit.record(self.store, "probe.round", "watch",
                         {"checks": len(results), "failed": failed, "problems": report.problems,
                          "failed_checks": [f"{r.kind}:{r.service}:{r.host}" for r in results if not r.ok],
                          "opened": report.opened, "resolved": report.resolved}, actor="probe", at=now)
        return report

    def _service_has_worse(self, match, view) -> bool:
        """An open incident of the same service with a more severe level covers this symptom."""
        rows = self.incidents.list(status="open", service=str(view.get("service")))
        return any(LEVELS.index(r["level"]) < LEVELS.index(match.level) for r in rows)


def _summary(view: Mapping[str, Any], match) -> str:
    parts = []
    gw = view.get("gateway")
    if gw and not gw.get("ok"):
        parts.append(f"gateway: {gw.get('error') or gw.get('status')}")
    for h in view.get("hosts") or []:
        if not h.get("ok"):
            parts.append(f"{h['host']}: {h.get('error') or h.get('status')}")
    pay = view.get("payment")
    if pay and not pay.get("ok"):
        parts.append(f"payment failed on {', '.join(pay['failed_hosts'])}")
    db = view.get("db")
    if db and not db.get("ok"):
        parts.append(f"database: {db.get('error')}")
    return "; ".join(parts)[:500] or match.rule.text("title")


def format_round(report: RoundReport) -> str:
    lines = [f"probe round {report.at.isoformat(timespec='seconds')}: {len(report.results)} checks, "
             f"{sum(not r.ok for r in report.results)} failed"]
    for r in sorted(report.results, key=lambda r: (r.service, r.kind, r.path, r.host)):
        mark = "ok  " if r.ok else "FAIL"
        lines.append(f"  {mark} {r.kind:<7} {r.service:<8} {r.path:<7} {r.host:<16} {r.latency_ms:>7.1f} ms"
                     + (f"  {r.error}" if r.error else ""))
    for label, ids in (("opened", report.opened), ("updated", report.updated), ("resolved", report.resolved)):
        if ids:
            lines.append(f"  {label}: {', '.join(sorted(set(ids)))}")
    for event, ident in report.clock_events:
        lines.append(f"  {event}: {ident}")
    return "\n".join(lines)


__all__ = ["ProbePlan", "Watcher", "run_checks", "service_views", "check_db", "check_health", "check_payment",
           "format_round"]
