"""The application: health, index page, metrics, the service's own API, logs, graceful stop.

Run as ``python3 <release>/bin/hospapp --config /etc/hospapp/<service>.json``.
"""

from __future__ import annotations

import argparse
import html
import itertools
import logging
import os
import random
import signal
import socket
import sys
import threading
import time

from . import db
from .applog import setup_logging
from .config import Config, ConfigError, load_config
from .fakedata import POOL_SIZE, describe, patient_records
from .release import Release, ReleaseError, load_release, release_root
from .services import SERVICE_CLASSES
from .web import Counters, Request, Response, Router, make_server

TITLES = {
    "portal": "统一就诊服务门户",
    "ih": "互联网医院平台",
    "waiting": "数字候诊大厅",
    "journey": "患者就诊全流程可视化",
}


class BrokenBuildError(RuntimeError):
    """Raised by the deliberately broken build (fault "broken") so rollback can be tested."""


class App:
    def __init__(self, config: Config, release: Release, log: logging.Logger) -> None:
        self.config = config
        self.release = release
        self.log = log
        self.application_name = f"hospapp-{config.service}@{config.node}"
        self.patients = patient_records(config.fake_seed, POOL_SIZE)
        self._patient_index = itertools.count()
        self._request_number = itertools.count(1)
        self.started = time.time()
        self.stop_event = threading.Event()
        self.counters = Counters()
        self.router = Router()
        self.router.add("GET", "/", self.index)
        self.router.add("GET", "/health", self.health)
        self.router.add("GET", "/metrics", self.metrics)
        self.service = SERVICE_CLASSES[config.service](self)
        self.service.register(self.router)

    # -- helpers used by the services -------------------------------------------------------------
    def next_patient(self):
        return self.patients[next(self._patient_index) % len(self.patients)]

    def next_request_number(self) -> int:
        return next(self._request_number)

    def transaction(self):
        return db.transaction(self.config.db, self.application_name, self.config.statement_timeout_ms)

    def check_fault(self, what: str) -> None:
        if self.release.fault == "broken":
            raise BrokenBuildError(
                f"{what}: payment channel settings not loaded (merchant_id missing) in build "
                f"{self.release.version}")

    def record_request(self, number: int, req: Request, status: int, ms: float) -> None:
        self.counters.add("requests_total")
        if status >= 500:
            self.counters.add("errors_total")
        elif status >= 400:
            self.counters.add("client_errors_total")
        level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
        parts = [f"req={number} {req.method} {req.path} {status} {ms:.1f}ms client={req.client}"]
        if req.error:
            parts.append(f"error=\"{req.error}\"")
        if req.log_detail:
            parts.append(req.log_detail)
        if req.patient is not None:
            parts.append(describe(req.patient))
        self.log.log(level, " ".join(parts))

    # -- endpoints common to every service -------------------------------------------------------
    def health(self, req: Request) -> Response:
        base = {"service": self.config.service, "version": self.release.version, "node": self.config.node,
                "schema_required": self.release.schema_required}
        try:
            self.check_fault("health check")
        except BrokenBuildError as exc:
            self.log.error("health check failed: %s", exc)
            return Response(500, {**base, "status": "error", "reason": f"internal error: {exc}"})
        try:
            with self.transaction() as cur:
                version = db.schema_version(cur, self.config.service)
                if version is not None:
                    cur.execute(f"SELECT count(*) FROM {self.service.main_table}")  # noqa: S608
                    rows = cur.fetchone()[0]
        except db.DbUnavailable as exc:
            self.log.error("health: database unreachable: %s", exc)
            return Response(503, {**base, "status": "error", "db": "unreachable",
                                  "reason": f"database unreachable: {exc}"})
        except db.SchemaMissing as exc:
            return Response(503, {**base, "status": "error", "db": "ok", "schema": None,
                                  "reason": f"schema incomplete: {exc}"})
        if version is None:
            return Response(503, {**base, "status": "error", "db": "ok", "schema": None,
                                  "reason": "schema not initialised: run hospapp-migrate up"})
        if version < self.release.schema_required:
            self.log.warning("health: schema %s older than required %s", version,
                             self.release.schema_required)
            return Response(503, {**base, "status": "error", "db": "ok", "schema": version,
                                  "reason": f"schema {version} older than required "
                                            f"{self.release.schema_required}: run hospapp-migrate up"})
        return Response(200, {**base, "status": "ok", "db": "ok", "schema": version, "rows": rows,
                              "uptime_s": round(time.time() - self.started, 1)})

    def index(self, req: Request) -> Response:
        title = TITLES[self.config.service]
        esc = html.escape
        body = (
            "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title></head>\n<body>\n<h1>{esc(title)}</h1>\n"
            f"<p>服务 service: <b>{esc(self.config.service)}</b></p>\n"
            f"<p>版本 version: <b class=\"version\">{esc(self.release.version)}</b></p>\n"
            f"<p>节点 node: <b class=\"node\">{esc(self.config.node)}</b></p>\n"
            "<p><a href=\"health\">health</a> · <a href=\"metrics\">metrics</a></p>\n"
            "</body></html>\n"
        )
        return Response(200, body, "text/html; charset=utf-8")

    def metrics(self, req: Request) -> Response:
        values = self.counters.snapshot()
        values["uptime_seconds"] = int(time.time() - self.started)
        if req.query.get("format") == "json":
            return Response(200, {"service": self.config.service, "node": self.config.node,
                                  "version": self.release.version, **values})
        labels = (f'service="{self.config.service}",node="{self.config.node}",'
                  f'version="{self.release.version}"')
        lines = [f"hospapp_info{{{labels}}} 1"]
        for name in sorted(values):
            lines.append(f"hospapp_{name}{{{labels}}} {values[name]}")
        return Response(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4; charset=utf-8")

    # -- background activity log -----------------------------------------------------------------
    def activity_loop(self) -> None:
        interval = self.config.activity_log_interval
        rng = random.Random(f"activity:{self.config.fake_seed}:{self.config.node}")
        while not self.stop_event.wait(interval):
            patient = self.next_patient()
            self.log.info("patient activity: %s %s", describe(patient), self.service.activity(rng))
            if self.release.fault == "broken":
                self.log.error("payment channel settings not loaded (merchant_id missing): "
                               "notifications for %s queued", patient.mrn)


def _notify_systemd(message: str) -> None:
    """sd_notify without libsystemd, so the unit may use Type=notify (ready = listening)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hospapp", description="hospapp stand-in service")
    parser.add_argument("--config", required=True, help="path of the JSON config file")
    parser.add_argument("--check-config", action="store_true", help="validate config and release, then exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        release = load_release(release_root())
    except (ConfigError, ReleaseError) as exc:
        print(f"hospapp: {exc}", file=sys.stderr)
        return 2
    if release.service != config.service:
        print(f"hospapp: this release is for service {release.service!r} but {config.path} says "
              f"{config.service!r}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"hospapp: config ok ({config.service} {release.version} on {config.node})")
        return 0
    os.umask(0o027)  # the log holds (fake) patient data: owner rw, group r, others nothing
    try:
        log = setup_logging(config.service, config.node, config.log_file, config.log_level)
    except OSError as exc:
        print(f"hospapp: cannot open log file {config.log_file}: {exc.strerror}", file=sys.stderr)
        return 2
    app = App(config, release, log)
    try:
        server = make_server(app)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.listen_host, config.listen_port, exc.strerror)
        print(f"hospapp: cannot listen on {config.listen_host}:{config.listen_port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    host, port = server.server_address[:2]

    def stop(signum, frame) -> None:  # noqa: ARG001 - signal API
        log.info("received %s, stopping", signal.Signals(signum).name)
        _notify_systemd("STOPPING=1")
        app.stop_event.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if config.activity_log_interval > 0:
        threading.Thread(target=app.activity_loop, name="activity", daemon=True).start()
    log.info("starting hospapp %s %s (schema required %d%s) on %s, listening on %s:%s, pid %d",
             config.service, release.version, release.schema_required,
             f", fault {release.fault}" if release.fault else "", config.node, host, port, os.getpid())
    if release.fault == "broken":
        log.error("startup: payment channel settings not loaded (merchant_id missing); "
                  "health and payments will fail")
    _notify_systemd(f"READY=1\nSTATUS=listening on {host}:{port}\nMAINPID={os.getpid()}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        log.info("stopped after %s requests", app.counters.snapshot()["requests_total"])
    return 0
