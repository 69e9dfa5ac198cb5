"""Import the change gate's decisions (``<ledger>/decisions.jsonl``) into the audit chain.

The gate runs inside ansible-playbook and may run without the orchestrator (by hand, or on AWX),
so it appends to a plain file; the orchestrator copies new lines into the hash-chained audit log
after every run and on ``hospops audit verify``. The position read so far is kept per ledger in
the store (with the file's identity, so a replaced file is read from its start).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from hospops import audit
from hospops.paths import hospops_home


def default_dir() -> Path:
    return hospops_home() / "gate"


def import_decisions(store, ledger_dir: Path | str | None = None) -> int:
    """Record every decision line not yet imported; return how many were imported."""
    ledger = Path(ledger_dir or default_dir())
    path = ledger / "decisions.jsonl"
    if not path.exists():
        return 0
    key = str(path.resolve())
    imported = 0
    with store.transaction():
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            file_id = f"{st.st_dev}:{st.st_ino}"
            row = store.one("SELECT file_id, byte_offset FROM gate_ledger_offsets WHERE ledger = :k", {"k": key})
            offset = int(row["byte_offset"]) if row and row["file_id"] == file_id and int(row["byte_offset"]) <= st.st_size else 0
            if row and offset == 0 and int(row["byte_offset"]):
                audit.record(store, "gate.ledger_replaced", key, {"previous_offset": int(row["byte_offset"])})
            handle.seek(offset)
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # a line still being written: next time
                offset += len(raw)
                _record(store, raw, key)
                imported += 1
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if row:
            store.execute("UPDATE gate_ledger_offsets SET file_id = :f, byte_offset = :o, updated_at = :at WHERE ledger = :k",
                          {"f": file_id, "o": offset, "at": now, "k": key})
        else:
            store.execute("INSERT INTO gate_ledger_offsets (ledger, file_id, byte_offset, updated_at) VALUES (:k, :f, :o, :at)",
                          {"k": key, "f": file_id, "o": offset, "at": now})
    return imported


def _record(store, raw: bytes, ledger: str) -> None:
    try:
        decision = json.loads(raw)
    except ValueError:
        audit.record(store, "gate.ledger_unreadable", ledger, {"line_bytes": len(raw)})
        return
    subject = str(decision.get("change_id") or "no-ticket")
    kind = "gate.pass" if decision.get("decision") == "pass" else "gate.refuse"
    data = {k: v for k, v in decision.items() if k not in ("user",)}
    audit.record(store, kind, subject, data, actor=str(decision.get("user") or "ansible-playbook"))


def mark_finished(nonce: str, run_id: str, status: str, ledger_dir: Path | str | None = None) -> bool:
    """Record in the gate's claim that the hospops run holding it ended, so it is never resumed.

    Only a run whose claim names it is marked (a refused run leaves the claim of the run that has it)."""
    import fcntl

    path = Path(ledger_dir or default_dir()) / "nonces" / f"{nonce}.json"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "r", encoding="utf-8") as handle:
            claim = json.load(handle)
        if claim.get("hospops_run_id") != run_id:
            return False
        claim["finished"] = {"status": status, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(claim, sort_keys=True).encode("utf-8"))
        os.fsync(fd)
        return True
    finally:
        os.close(fd)
