"""A small world for upgrades: the approval lab's inventory (web=[h1,h2], db=[d1], approvers alice,
bob, carol) with a gateway host, a service table, a releases directory with real tarballs and an
index, app nodes answering /health over HTTP with a version, and a webhook that records what the
hospital is told."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

SH = timezone(timedelta(hours=8))


class _Server:
    """One ThreadingHTTPServer on a free loopback port; ``handle(method, path, body) -> (code, obj)``."""

    def __init__(self, handle) -> None:
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                code, obj = handle(method, self.path, body)
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AppNode:
    """A node of a service: /health answers 200 with its version, or 503 when made unhealthy."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.healthy = True
        self.server = _Server(self._handle)

    def _handle(self, method, path, body):
        if path == "/health":
            if self.healthy:
                return 200, {"status": "ok", "version": self.version}
            return 503, {"status": "error", "reason": "schema 1 < required 2", "version": self.version}
        return 404, {"error": "not found"}


class Webhook:
    """The hospital's JSON webhook: keeps every message it gets."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.server = _Server(self._handle)

    def _handle(self, method, path, body):
        self.messages.append(json.loads(body))
        return 200, {"ok": True}


def _tarball(service: str, version: str) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        data = f"{version}\n".encode()
        info = tarfile.TarInfo(f"hospapp-{service}-{version}/VERSION")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


class UpgradeWorld:
    SCHEMAS = {"1.0.0": 1, "2.0.0": 2, "2.1.0": 3}

    def __init__(self, lab, root: Path) -> None:
        self.lab = lab
        self.inventory = lab.inventory
        self.releases = root / "releases"
        self.sha: dict[str, str] = {}
        entries = []
        for version, schema in self.SCHEMAS.items():
            data = _tarball("ih", version)
            rel = f"ih/hospapp-ih-{version}.tar.gz"
            (self.releases / "ih").mkdir(parents=True, exist_ok=True)
            (self.releases / rel).write_bytes(data)
            self.sha[version] = hashlib.sha256(data).hexdigest()
            entries.append({"service": "ih", "version": version, "file": rel, "sha256": self.sha[version],
                            "size": len(data), "top_dir": f"hospapp-ih-{version}", "schema_required": schema,
                            "fault": None, "note": ""})
        (self.releases / "index.json").write_text(json.dumps({"format": 1, "releases": entries}))
        self.nodes = {"h1": AppNode("1.0.0"), "h2": AppNode("1.0.0")}
        self.webhook = Webhook()
        (self.inventory / "gateways.yml").write_text(
            "all:\n  children:\n    gateways:\n      hosts:\n        gw1: {ansible_connection: local}\n")
        host_vars = self.inventory / "host_vars"
        host_vars.mkdir(exist_ok=True)
        for host, node in self.nodes.items():
            (host_vars / f"{host}.yml").write_text(f"hospops_app_url: {node.server.url}\n")
        (self.inventory / "group_vars" / "all" / "upgrade.yml").write_text(yaml.safe_dump({
            "hospops_services": {
                "ih": {"group": "web", "title": {"zh": "互联网医院平台", "en": "Internet hospital platform"},
                       "payment_probe": True},
                "journey": {"group": "db", "title": {"zh": "患者就诊全流程可视化", "en": "Patient journey"}},
            },
            "hospops_releases_dir": str(self.releases),
            "hospops_probe": {"direct": True, "payment": False, "timeout_seconds": 2},
            "hospops_notify": {
                "retries": 0, "backoff_seconds": 0,
                "channels": {"hook": {"type": "json", "url": self.webhook.server.url + "/hook"}},
                "contacts": {"hospital_it": {"name": "IT", "channels": ["hook"], "lang": "en"}},
                "routes": [{"events": ["upgrade.*"], "to": ["hospital_it"]}],
            },
        }, allow_unicode=True))

    def inv(self):
        from hospops.inventory import load

        return load(self.inventory)

    def plan(self, **over) -> dict:
        start = (datetime.now(SH) + timedelta(hours=1)).replace(microsecond=0)
        plan = {
            "format": 1, "service": "ih", "from_version": "1.0.0", "to_version": "2.0.0",
            "artifacts": [{"file": "ih/hospapp-ih-2.0.0.tar.gz", "sha256": self.sha["2.0.0"]}],
            "migrations": {"forward": True, "schema_from": 1, "schema_to": 2, "backward": "down"},
            "health_checks": {"path": "/health", "timeout_seconds": 40},
            "impact": {"summary": "payments show the channel reference", "downtime": "none (rolling)"},
            "window": {"start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat()},
            "rollback": {"triggers": ["health_check_failed", "migration_failed", "window_closing"],
                         "steps": ["switch nodes back to 1.0.0 one at a time", "run the down migrations"],
                         "restore_point": "auto"},
        }
        plan.update(over)
        return plan

    def write(self, plan: dict, name: str = "plan.yml") -> Path:
        path = self.lab.root / name
        path.write_text(yaml.safe_dump(plan, sort_keys=False, allow_unicode=True))
        return path

    def stop(self) -> None:
        for node in self.nodes.values():
            node.server.stop()
        self.webhook.server.stop()


@pytest.fixture()
def upgrade_world(approval_lab, tmp_path):
    world = UpgradeWorld(approval_lab, tmp_path)
    yield world
    world.stop()
