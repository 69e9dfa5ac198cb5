#!/usr/bin/env python3
"""A real SMTP server for the lab and tests: stores each message as .eml and .json in a directory.

Standard library only (smtpd is gone from Python 3.12): socketserver with one thread per connection.
Usage: python smtp_sink.py --port 42325 --dir DIR [--host 127.0.0.1] [--fail-first N]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import socketserver
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path


class _State:
    def __init__(self, directory: Path, fail_first: int) -> None:
        self.directory = directory
        self.fail_left = fail_first
        self.count = len(list(directory.glob("*.eml")))
        self.lock = threading.Lock()

    def store(self, mail_from: str, rcpt: list[str], data: bytes) -> int:
        with self.lock:
            self.count += 1
            n = self.count
        base = self.directory / f"{n:04d}"
        base.with_suffix(".eml").write_bytes(data)
        msg = email.message_from_bytes(data, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        record = {"n": n, "received_at": datetime.now(timezone.utc).isoformat(), "mail_from": mail_from,
                  "rcpt_to": rcpt, "subject": str(msg.get("Subject", "")), "headers": dict(msg.items()),
                  "text": body.get_content() if body is not None else ""}
        tmp = base.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.rename(base.with_suffix(".json"))
        return n

    def should_fail(self) -> bool:
        with self.lock:
            if self.fail_left > 0:
                self.fail_left -= 1
                return True
            return False


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode("ascii"))
        self.wfile.flush()

    def handle(self) -> None:
        state: _State = self.server.state  # type: ignore[attr-defined]
        self.reply("220 hospops-lab-smtp ESMTP ready")
        mail_from, rcpt = "", []
        while True:
            raw = self.rfile.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.wfile.write(b"250-hospops-lab-smtp\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n")
                self.wfile.flush()
            elif verb == "HELO":
                self.reply("250 hospops-lab-smtp")
            elif verb == "MAIL":
                mail_from, rcpt = _addr(arg), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(_addr(arg))
                self.reply("250 OK")
            elif verb == "DATA":
                if not rcpt:
                    self.reply("503 need RCPT first")
                    continue
                self.reply("354 end with <CRLF>.<CRLF>")
                chunks = []
                while True:
                    part = self.rfile.readline(1 << 20)
                    if not part or part in (b".\r\n", b".\n"):
                        break
                    chunks.append(part[1:] if part.startswith(b"..") else part)
                if state.should_fail():
                    self.reply("451 4.3.0 temporary failure (lab: --fail-first)")
                else:
                    n = state.store(mail_from, rcpt, b"".join(chunks))
                    self.reply(f"250 OK stored as {n:04d}")
                mail_from, rcpt = "", []
            elif verb == "RSET":
                mail_from, rcpt = "", []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


def _addr(arg: str) -> str:
    value = arg.split(":", 1)[1] if ":" in arg else arg
    return value.strip().split(" ")[0].strip("<>")


class SmtpSink(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, host: str, port: int, directory: Path, fail_first: int = 0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.state = _State(directory, fail_first)
        super().__init__((host, port), _Handler)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="lab SMTP sink: stores messages as .eml/.json")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=42325, help="0 picks a free port")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--fail-first", type=int, default=0, help="answer 451 to the first N messages")
    args = p.parse_args(argv)
    server = SmtpSink(args.host, args.port, args.dir, args.fail_first)
    print(f"listening on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
