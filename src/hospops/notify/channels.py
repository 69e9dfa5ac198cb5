"""Delivery channels: SMTP email, WeCom and DingTalk group robots (markdown), a generic JSON webhook.

Each ``deliver`` raises ``DeliveryError`` with a message that carries no secret (no webhook URL or
token, no password); the caller retries and records the outcome.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Mapping

from hospops.errors import UserError

TYPES = ("smtp", "wecom", "dingtalk", "json")


class DeliveryError(Exception):
    pass


@dataclass(frozen=True)
class Message:
    event: str
    subject: str
    text: str                      # markdown
    lang: str
    fields: Mapping[str, Any] = field(default_factory=dict)   # level, service, id ... for the JSON webhook


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    config: Mapping[str, Any]
    timeout: float = 5.0

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any], timeout: float) -> "Channel":
        fix = "correct hospops_notify.channels in the inventory (group_vars/all/notify.yml)"
        if not isinstance(cfg, Mapping):
            raise UserError(f"hospops_notify.channels.{name}: expected a mapping", fix)
        kind = cfg.get("type")
        if kind not in TYPES:
            raise UserError(f"hospops_notify.channels.{name}.type: {kind!r} is not one of {', '.join(TYPES)}", fix)
        need = ("host",) if kind == "smtp" else ("url",)
        for key in need:
            if not cfg.get(key):
                raise UserError(f"hospops_notify.channels.{name}.{key} is missing", fix)
        return cls(name, kind, dict(cfg), float(cfg.get("timeout", timeout)))

    def secrets(self) -> list[str]:
        """Values that must never appear in a record or log (scrubbed from error texts)."""
        out = [str(self.config.get(k)) for k in ("url", "password", "secret", "token") if self.config.get(k)]
        url = self.config.get("url")
        if url:
            parts = urllib.parse.urlsplit(str(url))
            out += [v for _, v in urllib.parse.parse_qsl(parts.query) if v]
        return out

    def deliver(self, message: Message, to: list[Mapping[str, Any]]) -> str:
        if self.type == "smtp":
            return self._smtp(message, to)
        return self._webhook(message, to)

    # -- email ----------------------------------------------------------------------------------
    def _smtp(self, message: Message, to: list[Mapping[str, Any]]) -> str:
        rcpt = [str(c["email"]) for c in to if c.get("email")]
        if not rcpt:
            raise DeliveryError("no recipient has an email address")
        cfg = self.config
        msg = EmailMessage()
        msg["Subject"] = message.subject
        msg["From"] = str(cfg.get("from", "hospops@localhost"))
        msg["To"] = ", ".join(rcpt)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="hospops")
        msg["X-Hospops-Event"] = message.event
        msg.set_content(message.text, charset="utf-8")
        try:
            if cfg.get("ssl"):
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(str(cfg["host"]), int(cfg.get("port", 465)),
                                                       timeout=self.timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(str(cfg["host"]), int(cfg.get("port", 25)), timeout=self.timeout)
            with smtp:
                if cfg.get("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.get("username"):
                    smtp.login(str(cfg["username"]), str(cfg.get("password", "")))
                refused = smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc}") from exc
        if refused:
            raise DeliveryError(f"SMTP refused {len(refused)} recipient(s)")
        return f"accepted for {len(rcpt)} recipient(s)"

    # -- webhooks -------------------------------------------------------------------------------
    def payload(self, message: Message, to: list[Mapping[str, Any]]) -> dict[str, Any]:
        mobiles = [str(c["mobile"]) for c in to if c.get("mobile")]
        if self.type == "wecom":
            # WeCom group robot: {"msgtype": "markdown", "markdown": {"content": ...}} (max 4096 bytes)
            content = message.text
            if mobiles:
                content += "\n" + " ".join(f"<@{m}>" for m in mobiles)
            return {"msgtype": "markdown", "markdown": {"content": _clip(content, 4000)}}
        if self.type == "dingtalk":
            # DingTalk custom robot: markdown with title and text; @ by mobile number
            text = message.text + ("\n\n" + " ".join(f"@{m}" for m in mobiles) if mobiles else "")
            return {"msgtype": "markdown", "markdown": {"title": message.subject, "text": text},
                    "at": {"atMobiles": mobiles, "isAtAll": False}}
        return {"event": message.event, "subject": message.subject, "text": message.text, "lang": message.lang,
                "to": [str(c.get("name", "")) for c in to], **{k: v for k, v in message.fields.items()}}

    def _url(self) -> str:
        url = str(self.config["url"])
        secret = self.config.get("secret")
        if self.type == "dingtalk" and secret:
            # DingTalk "加签": timestamp in ms and HMAC-SHA256(secret, "ts\nsecret"), base64, url-encoded
            ts = str(int(time.time() * 1000))
            digest = hmac.new(str(secret).encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
            sign = urllib.parse.quote_plus(base64.b64encode(digest))
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={sign}"
        return url

    def _webhook(self, message: Message, to: list[Mapping[str, Any]]) -> str:
        body = json.dumps(self.payload(message, to), ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(self._url(), data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read(65536)
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"cannot reach the webhook: {reason}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"HTTP {status}")
        if self.type in ("wecom", "dingtalk"):
            try:
                answer = json.loads(raw.decode("utf-8") or "{}")
            except ValueError:
                raise DeliveryError("robot answered with something that is not JSON") from None
            if answer.get("errcode", 0) != 0:
                raise DeliveryError(f"robot refused: errcode {answer.get('errcode')} {answer.get('errmsg', '')}")
        return f"HTTP {status}"


def _clip(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


def scrub(text: str, secrets: list[str]) -> str:
    for s in sorted(set(secrets), key=len, reverse=True):
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text
