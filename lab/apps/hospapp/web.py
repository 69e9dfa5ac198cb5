"""The HTTP layer: a ThreadingHTTPServer, a tiny router, JSON helpers, counters, access log lines."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qs, urlsplit

from .db import DbUnavailable, SchemaMissing

if TYPE_CHECKING:
    from .app import App
    from .fakedata import PatientRecord

MAX_BODY = 64 * 1024


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    client: str
    raw_body: bytes
    params: dict[str, str] = field(default_factory=dict)
    patient: PatientRecord | None = None
    log_detail: str = ""
    error: str = ""

    def json(self) -> dict[str, Any]:
        if not self.raw_body:
            raise HttpError(400, "a JSON object body is required")
        try:
            body = json.loads(self.raw_body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(400, f"body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise HttpError(400, "body must be a JSON object")
        return body


@dataclass
class Response:
    status: int
    body: Any  # dict/list -> JSON, str -> as is
    content_type: str = "application/json; charset=utf-8"

    def encode(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return (json.dumps(self.body, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        return str(self.body).encode("utf-8")


Handler = Callable[[Request], Response]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        for m, rx, handler in self._routes:
            match = rx.match(path)
            if match:
                if m == method:
                    return handler, match.groupdict()
                allowed = True
        if allowed:
            raise HttpError(405, f"method {method} not allowed on {path}")
        raise HttpError(404, f"no such endpoint: {path}")


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, int] = {"requests_total": 0, "client_errors_total": 0, "errors_total": 0}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.values[name] = self.values.get(name, 0) + n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)


def make_server(app: App) -> ThreadingHTTPServer:
    class RequestHandler(BaseHTTPRequestHandler):
        server_version = f"hospapp/{app.release.version}"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_HEAD(self) -> None:  # noqa: N802
            self._handle("HEAD")

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - our own access log instead
            pass

        def _handle(self, method: str) -> None:
            started = time.monotonic()
            number = app.next_request_number()
            url = urlsplit(self.path)
            req = Request(method=method, path=url.path, client=self.client_address[0], raw_body=b"",
                          query={k: v[-1] for k, v in parse_qs(url.query).items()})
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    raise HttpError(413, f"body larger than {MAX_BODY} bytes")
                req.raw_body = self.rfile.read(length) if length > 0 else b""
                handler, req.params = app.router.resolve("GET" if method == "HEAD" else method, req.path)
                if req.path.startswith("/api/"):
                    req.patient = app.next_patient()
                resp = handler(req)
            except HttpError as exc:
                resp = Response(exc.status, {"error": exc.message})
            except DbUnavailable as exc:
                resp = Response(503, {"error": "database unavailable", "reason": str(exc)})
            except SchemaMissing as exc:
                resp = Response(503, {"error": "database schema missing: run hospapp-migrate up",
                                      "reason": str(exc)})
            except Exception as exc:  # noqa: BLE001 - an unexpected failure is a 500, logged with its trace
                app.log.exception("req=%d %s %s failed: %s: %s", number, method, req.path,
                                  type(exc).__name__, exc)
                resp = Response(500, {"error": "internal error", "reason": f"{type(exc).__name__}: {exc}"})
            if resp.status >= 400 and isinstance(resp.body, dict):
                req.error = ": ".join(str(resp.body[k]) for k in ("error", "reason") if resp.body.get(k))
            payload = resp.encode()
            try:
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Hospapp-Node", app.config.node)
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(payload)
            except OSError:
                pass  # the client went away; nothing to tell it
            app.record_request(number, req, resp.status, (time.monotonic() - started) * 1000)

    server = ThreadingHTTPServer((app.config.listen_host, app.config.listen_port), RequestHandler)
    server.daemon_threads = True
    return server
