"""Probes against real local HTTP servers (started here): an ih host that fails then recovers opens
exactly one L1 payment incident and resolves it; a flapping service opens one incident."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hospops.incidents import Incidents
from hospops.probes import PROBE_DEFAULTS, DbTarget, HttpTarget, ProbePlan, Watcher, check_db
from hospops.store import open_store

SH = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parents[2]


class FakeApp:
    """A stand-in app on a real socket: GET /health, POST /api/payments, GET /api/payments/<id>."""

    def __init__(self, port: int = 0, prefix: str = "") -> None:
        self.payments: dict[str, dict] = {}
        self.fail_payments = False
        self.health_status = 200
        self.prefix = prefix
        app = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path = self.path.removeprefix(app.prefix)
                if path == "/health":
                    self._send(app.health_status, {"status": "ok" if app.health_status == 200 else "error"})
                elif path.startswith("/api/payments/") and path.rsplit("/", 1)[1] in app.payments:
                    self._send(200, app.payments[path.rsplit("/", 1)[1]])
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if app.fail_payments:
                    self._send(500, {"error": "payment backend down"})
                    return
                pid = str(len(app.payments) + 1)
                app.payments[pid] = {"id": pid, "status": "recorded", **body}
                self._send(201, {"id": pid, "status": "recorded"})

        self.server = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 25, 10, 0, tzinfo=SH)

    def __call__(self):
        return self.t

    def tick(self):
        self.t += timedelta(seconds=30)


# `store` (SQLite and PostgreSQL) comes from tests/conftest.py


def plan_for(gateway: FakeApp, ih1: FakeApp, ih2: FakeApp, **settings) -> ProbePlan:
    gw = HttpTarget("ih", "gateway", "gateway", f"http://127.0.0.1:{gateway.port}/ih")
    direct = [HttpTarget("ih", "direct", h, f"http://127.0.0.1:{a.port}") for h, a in (("ih1", ih1), ("ih2", ih2))]
    return ProbePlan(services={"ih": {"group": "svc_ih", "payment_probe": True}}, health=(gw, *direct),
                     payment=(gw, *direct), db=None,
                     settings={**PROBE_DEFAULTS, "timeout_seconds": 1.0, "resolve_after": 2, **settings})


def test_ih_host_down_then_back_opens_one_l1_and_resolves_it(store):
    gateway, ih1, ih2 = FakeApp(prefix="/ih"), FakeApp(), FakeApp()
    try:
        clock = Clock()
        sent = []
        inc = Incidents(store, now=clock, notifier=lambda e, c: sent.append((e, c["id"])))
        watcher = Watcher(store, inc, plan_for(gateway, ih1, ih2))
        first = watcher.round()
        assert first.problems == [] and all(r.ok for r in first.results) and len(first.results) == 6
        assert all(r.latency_ms > 0 for r in first.results)

        port = ih1.port
        ih1.stop()                                     # the fault: ih1 refuses connections
        for _ in range(3):
            clock.tick()
            report = watcher.round()
            assert "ih:payment_failed" in report.problems
        l1 = store.query("SELECT * FROM incidents")
        assert [(r["level"], r["fingerprint"], r["status"]) for r in l1] == [("L1", "ih:payment_failed", "open")]
        assert l1[0]["seen_count"] == 3 and "ih1" in l1[0]["summary"]
        assert json.loads(l1[0]["detail"])["payment"]["failed_hosts"] == ["ih1"]

        ih1 = FakeApp(port=port)                       # recovery on the same address
        clock.tick()
        assert watcher.round().resolved == []          # one good round is not enough
        clock.tick()
        assert watcher.round().resolved == [l1[0]["id"]]
        row = inc.get(l1[0]["id"])
        assert row["status"] == "resolved" and "2 consecutive good" in inc.timeline(row["id"])[-1]["note"]
        assert sent == [("incident.opened", row["id"]), ("incident.recovered", row["id"])]
        assert store.one("SELECT COUNT(*) AS n FROM incidents")["n"] == 1
    finally:
        for app in (gateway, ih1, ih2):
            app.stop()


def test_a_flapping_payment_backend_opens_one_incident_and_state_survives_a_restart(store, store_url):
    gateway, ih1, ih2 = FakeApp(prefix="/ih"), FakeApp(), FakeApp()
    try:
        clock = Clock()
        plan = plan_for(gateway, ih1, ih2, resolve_after=3)
        for n in range(8):                             # bad, good, bad, good ...
            ih2.fail_payments = n % 2 == 0
            clock.tick()
            # a new store connection and watcher every round: as if `hospops watch` restarted
            s = open_store(store_url)
            Watcher(s, Incidents(s, now=clock), plan).round()
            s.close()
        rows = store.query("SELECT * FROM incidents")
        assert len(rows) == 1 and rows[0]["status"] == "open" and rows[0]["seen_count"] == 4
        ih2.fail_payments = False
        inc = Incidents(store, now=clock)
        for _ in range(3):
            clock.tick()
            Watcher(store, inc, plan).round()
        assert inc.get(rows[0]["id"])["status"] == "resolved"
        kinds = [r["kind"] for r in store.query("SELECT kind FROM audit")]
        assert kinds.count("incident.open") == 1
        assert kinds.count("probe.round") == 5          # the 4 bad rounds and the one that resolved
    finally:
        for app in (gateway, ih1, ih2):
            app.stop()


def test_portal_down_through_the_gateway_is_l2_and_a_dead_host_behind_it_is_l3(store):
    gateway, portal1, portal2 = FakeApp(prefix="/portal"), FakeApp(), FakeApp()
    try:
        plan = ProbePlan(services={"portal": {}},
                         health=(HttpTarget("portal", "gateway", "gateway", f"http://127.0.0.1:{gateway.port}/portal"),
                                 HttpTarget("portal", "direct", "p1", f"http://127.0.0.1:{portal1.port}"),
                                 HttpTarget("portal", "direct", "p2", f"http://127.0.0.1:{portal2.port}")),
                         payment=(), db=None, settings={**PROBE_DEFAULTS, "timeout_seconds": 1.0})
        inc = Incidents(store, now=Clock())
        portal2.health_status = 503
        assert Watcher(store, inc, plan).round().problems == ["portal:errors"]
        gateway.health_status = 503
        report = Watcher(store, inc, plan).round()
        assert report.problems == ["portal:errors", "portal:unavailable"]
        levels = sorted((r["fingerprint"], r["level"]) for r in store.query("SELECT * FROM incidents"))
        assert levels == [("portal:errors", "L3"), ("portal:unavailable", "L2")]
    finally:
        for app in (gateway, portal1, portal2):
            app.stop()


def test_database_handshake_probe():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        with conn:
            length = struct.unpack("!I", conn.recv(4))[0]
            conn.recv(length - 4)
            conn.sendall(b"R" + struct.pack("!II", 12, 5) + b"salt")   # AuthenticationMD5Password

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    ok = check_db(DbTarget("127.0.0.1", port, "hospital", "hospops_probe", timeout=1))
    t.join(2)
    srv.close()
    assert ok.ok and ok.kind == "db" and ok.latency_ms >= 0
    down = check_db(DbTarget("127.0.0.1", port, "hospital", "hospops_probe", timeout=1))
    assert not down.ok and "Refused" in down.error


def test_watch_once_cli_with_an_inventory(tmp_path, monkeypatch):
    gateway, ih1 = FakeApp(prefix="/ih"), FakeApp()
    ih1.fail_payments = True
    inv = tmp_path / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    svc_ih:\n      hosts:\n        ih1: {hospops_app_url: 'http://127.0.0.1:%d'}\n" % ih1.port)
    (inv / "group_vars" / "all" / "main.yml").write_text(
        "hospops_gateway_url: http://127.0.0.1:%d\nhospops_services:\n  ih: {group: svc_ih, gateway_path: /ih/,"
        " payment_probe: true}\nhospops_probe: {timeout_seconds: 1}\n" % gateway.port)
    env = {**__import__("os").environ, "HOSPOPS_HOME": str(tmp_path / "home"), "HOSPOPS_INVENTORY": str(inv)}
    try:
        runs = [subprocess.run([sys.executable, "-m", "hospops", "watch", "--once", "--no-notify"], env=env,
                               capture_output=True, text=True, timeout=60) for _ in range(2)]
        assert [r.returncode for r in runs] == [1, 1], runs[0].stderr
        assert "opened: INC-" in runs[0].stdout and "FAIL payment ih" in runs[0].stdout
        assert "updated: INC-" in runs[1].stdout and "opened" not in runs[1].stdout
        listed = subprocess.run([sys.executable, "-m", "hospops", "incident", "--no-notify", "list", "--json"],
                                env=env, capture_output=True, text=True, timeout=60)
        rows = json.loads(listed.stdout)
        assert [(r["level"], r["fingerprint"]) for r in rows] == [("L1", "ih:payment_failed")]
    finally:
        gateway.stop()
        ih1.stop()
