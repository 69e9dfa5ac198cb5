"""The tamper-evident audit log: append-only records, each carrying the hash of the one before.

``verify`` recomputes the chain and names the first record that was edited, deleted or moved.
Records younger than the retention (180 days: Cybersecurity Law art. 21) cannot be pruned.
Callers must never put secrets or patient data in ``data``; ``record`` refuses keys that look
like secrets as a last line of defence.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO, Any, Iterable

from hospops.errors import UserError

RETENTION = timedelta(days=180)
GENESIS = "0" * 64
_SECRET_KEY = re.compile(r"(pass(word|phrase)?|secret|token|private|api_?key)", re.I)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _digest(seq: int, at: str, actor: str, kind: str, subject: str, data: str, prev_hash: str) -> str:
    body = json.dumps([seq, at, actor, kind, subject, data, prev_hash], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _check_no_secrets(data: Any, path: str = "data") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if _SECRET_KEY.search(str(key)) and value not in (None, "", False):
                raise ValueError(f"audit record field {path}.{key} looks like a secret; record a reference instead")
            _check_no_secrets(value, f"{path}.{key}")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _check_no_secrets(value, f"{path}[{i}]")


def record(store, kind: str, subject: str, data: dict[str, Any] | None = None, actor: str = "hospops",
           at: datetime | None = None) -> dict[str, Any]:
    """Append one record to the chain (inside one write transaction) and return it."""
    data = data or {}
    _check_no_secrets(data)
    payload = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    stamp = (at or _now()).astimezone(timezone.utc).isoformat(timespec="microseconds")
    with store.transaction():
        last = store.one("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        if last is None:
            anchor = store.one("SELECT seq, hash FROM audit_anchor ORDER BY id DESC LIMIT 1")
            last = anchor or {"seq": 0, "hash": GENESIS}
        seq = int(last["seq"]) + 1
        digest = _digest(seq, stamp, actor, kind, subject, payload, last["hash"])
        row = {"seq": seq, "at": stamp, "actor": actor, "kind": kind, "subject": subject,
               "data": payload, "prev_hash": last["hash"], "hash": digest}
        store.execute(
            "INSERT INTO audit (seq, at, actor, kind, subject, data, prev_hash, hash)"
            " VALUES (:seq, :at, :actor, :kind, :subject, :data, :prev_hash, :hash)", row)
    return row


@dataclass
class Verdict:
    ok: bool
    records: int
    first_bad: int | None = None
    reason: str = ""


def verify(store) -> Verdict:
    """Walk the chain from its anchor; report the first record that does not fit."""
    anchor = store.one("SELECT seq, hash FROM audit_anchor ORDER BY id DESC LIMIT 1")
    expect_seq, prev = (int(anchor["seq"]) + 1, anchor["hash"]) if anchor else (1, GENESIS)
    count = 0
    for row in store.query("SELECT * FROM audit ORDER BY seq"):
        seq = int(row["seq"])
        if seq != expect_seq:
            return Verdict(False, count, expect_seq, f"record {expect_seq} is missing (next is {seq})")
        if row["prev_hash"] != prev:
            return Verdict(False, count, seq, f"record {seq} does not follow record {seq - 1} (reordered or a record before it changed)")
        digest = _digest(seq, row["at"], row["actor"], row["kind"], row["subject"], row["data"], row["prev_hash"])
        if digest != row["hash"]:
            return Verdict(False, count, seq, f"record {seq} was edited after it was written")
        prev, expect_seq, count = row["hash"], seq + 1, count + 1
    return Verdict(True, count)


def prune(store, before: datetime, now: datetime | None = None) -> int:
    """Delete records older than ``before``; refuses anything inside the retention period."""
    limit = (now or _now()) - RETENTION
    if before > limit:
        raise UserError(
            f"audit records younger than {RETENTION.days} days cannot be pruned (asked for before {before:%Y-%m-%d})",
            f"choose a date on or before {limit:%Y-%m-%d}",
        )
    cutoff = before.astimezone(timezone.utc).isoformat(timespec="microseconds")
    with store.transaction():
        last = store.one("SELECT seq, hash FROM audit WHERE at < :c ORDER BY seq DESC LIMIT 1", {"c": cutoff})
        if not last:
            return 0
        n = store.execute("DELETE FROM audit WHERE seq <= :s", {"s": last["seq"]})
        store.execute("INSERT INTO audit_anchor (seq, hash, pruned_at) VALUES (:s, :h, :at)",
                      {"s": last["seq"], "h": last["hash"], "at": _now().isoformat()})
    record(store, "audit.prune", f"seq<={last['seq']}", {"removed": n, "before": cutoff})
    return n


def export(store, out: IO[str], fmt: str = "jsonl", since: str | None = None) -> int:
    rows: Iterable[dict[str, Any]] = store.query(
        "SELECT * FROM audit WHERE at >= :s ORDER BY seq", {"s": since or ""})
    n = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=["seq", "at", "actor", "kind", "subject", "data", "prev_hash", "hash"])
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
    else:
        for row in rows:
            out.write(json.dumps({**row, "data": json.loads(row["data"])}, ensure_ascii=False) + "\n")
            n += 1
    return n
