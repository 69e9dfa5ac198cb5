#!/usr/bin/env python3
"""A real HTTP webhook receiver for the lab and tests, answering like WeCom / DingTalk robots.

Each POST body is stored as NNNN.json in a directory ({path, headers, body}); the answer is
{"errcode":0,"errmsg":"ok"}. --fail-first N refuses the first N POSTs (HTTP 500, or with
--fail-with errcode an HTTP 200 carrying a robot error code) to test retries.
Usage: python webhook_sink.py --port 42326 --dir DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(BaseHTTPRequestHandler):
    server_version = "hospops-lab-webhook/1"

    def log_message(self, fmt, *args) -> None:  # quiet: the stored files are the log
        pass

    def _answer(self, status: int, obj) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        srv: WebhookSink = self.server  # type: ignore[assignment]
        if self.path.startswith("/messages"):
            items = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(srv.directory.glob("*.json"))]
            self._answer(200, items)
        else:
            self._answer(200, {"status": "ok", "stored": len(list(srv.directory.glob("*.json")))})

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        srv: WebhookSink = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with srv.lock:
            srv.seen += 1
            fail = srv.fail_left > 0
            if fail:
                srv.fail_left -= 1
        if fail:
            if srv.fail_with == "errcode":
                self._answer(200, {"errcode": 93000, "errmsg": "lab: --fail-first (robot error)"})
            else:
                self._answer(500, {"errcode": -1, "errmsg": "lab: --fail-first"})
            return
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            self._answer(400, {"errcode": 40001, "errmsg": "body is not JSON"})
            return
        with srv.lock:
            srv.count += 1
            n = srv.count
        parts = urllib.parse.urlsplit(self.path)
        record = {"n": n, "received_at": datetime.now(timezone.utc).isoformat(), "path": parts.path,
                  "query_keys": sorted(k for k, _ in urllib.parse.parse_qsl(parts.query)),
                  "headers": {k: v for k, v in self.headers.items()}, "body": body}
        tmp = srv.directory / f"{n:04d}.json.tmp"
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.rename(srv.directory / f"{n:04d}.json")
        self._answer(200, {"errcode": 0, "errmsg": "ok"})


class WebhookSink(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, directory: Path, fail_first: int = 0, fail_with: str = "http") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.fail_left = fail_first
        self.fail_with = fail_with
        self.seen = 0
        self.count = len(list(directory.glob("*.json")))
        self.lock = threading.Lock()
        super().__init__((host, port), _Handler)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="lab webhook sink: stores POST bodies, answers like WeCom/DingTalk")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=42326, help="0 picks a free port")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--fail-first", type=int, default=0, help="refuse the first N POSTs")
    p.add_argument("--fail-with", choices=["http", "errcode"], default="http")
    args = p.parse_args(argv)
    server = WebhookSink(args.host, args.port, args.dir, args.fail_first, args.fail_with)
    print(f"listening on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
