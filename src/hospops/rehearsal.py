"""What a rehearsal (a check-and-diff run of a change's playbook) says would change: read from the
run's ansible-runner artifacts (``job_events/*.json``), shortened for approvers to read.

The summary is a plain JSON document that is attached to the change (``changes.attach``)::

    {"kind": "rehearsal", "ok", "run_id", "at", "status", "rc", "playbook",
     "hosts": {host: {"would_change": [{"task", "diff"}], "failed": [{"task", "msg"}], "ok", "skipped"}},
     "failures": [{"host", "task", "msg"}], "stats": <the role's set_stats under stats_key> | null}

Messages and diffs come from this project's roles (configuration files, versions, symlinks); they
are cut short all the same, so a rehearsal can never turn into a dump of a host.
"""

from __future__ import annotations

import difflib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

MAX_DIFF_LINES = 20
MAX_DIFF_CHARS = 1500
MAX_TASKS_PER_HOST = 60
MAX_MESSAGE_CHARS = 600


def events(artifacts_dir: Path | None) -> Iterator[dict[str, Any]]:
    """The run's events in the order they happened (files are named ``<counter>-<uuid>.json``)."""
    if not artifacts_dir:
        return
    folder = Path(artifacts_dir) / "job_events"
    if not folder.is_dir():
        return

    def counter(p: Path) -> int:
        head = p.name.split("-", 1)[0]
        return int(head) if head.isdigit() else 0

    for path in sorted(folder.glob("*.json"), key=counter):
        try:
            yield json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a half-written event of a run that died: the others still tell the story


def set_stats(artifacts_dir: Path | None, key: str) -> dict[str, Any] | None:
    """The ``set_stats`` data a role published under ``key`` (aggregate), or None."""
    for event in events(artifacts_dir):
        if event.get("event") == "playbook_on_stats":
            found = ((event.get("event_data") or {}).get("artifact_data") or {}).get(key)
            return found if isinstance(found, dict) else None
    return None


def summarise(result, *, stats_key: str, playbook: str = "", now: datetime | None = None) -> dict[str, Any]:
    """The rehearsal summary of a finished run (a ``hospops.runner.RunResult``)."""
    hosts: dict[str, dict[str, Any]] = {}
    failures: list[dict[str, str]] = []

    def host(name: str) -> dict[str, Any]:
        return hosts.setdefault(name, {"would_change": [], "failed": [], "ok": 0, "skipped": 0})

    for event in events(result.artifacts_dir):
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind not in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            continue
        name = str(data.get("host", "?"))
        h = host(name)
        task = str(data.get("task", "?"))
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if kind == "runner_on_skipped":
            h["skipped"] += 1
        elif kind == "runner_on_ok":
            h["ok"] += 1
            if res.get("changed") and len(h["would_change"]) < MAX_TASKS_PER_HOST:
                h["would_change"].append({"task": task, "diff": diff_text(res)})
        elif not data.get("ignore_errors"):
            msg = str(res.get("msg", "")).strip()[:MAX_MESSAGE_CHARS]
            h["failed"].append({"task": task, "msg": msg})
            failures.append({"host": name, "task": task, "msg": msg})
    stats = set_stats(result.artifacts_dir, stats_key)
    # a failure the role caught and recorded (its rescue) fails the rehearsal too
    ok = bool(result.ok) and not failures and not (stats or {}).get("failure") \
        and (stats or {}).get("outcome") != "failed"
    return {"kind": "rehearsal", "ok": ok, "run_id": result.run_id,
            "at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
            "status": result.status, "rc": result.rc, "playbook": playbook,
            "hosts": dict(sorted(hosts.items())), "failures": failures, "stats": stats}


def diff_text(res: dict[str, Any]) -> str:
    """A short unified diff of what a task would change (``res.diff``, also per loop item)."""
    diffs: list[Any] = []
    for source in [res, *[r for r in res.get("results") or [] if isinstance(r, dict) and r.get("changed")]]:
        d = source.get("diff")
        diffs += d if isinstance(d, list) else [d] if d else []
    lines: list[str] = []
    for d in diffs:
        if isinstance(d, dict):
            lines += _one_diff(d)
    text = "\n".join(lines[:MAX_DIFF_LINES])
    if len(lines) > MAX_DIFF_LINES:
        text += f"\n... ({len(lines) - MAX_DIFF_LINES} more lines)"
    return text[:MAX_DIFF_CHARS]


def _one_diff(d: dict[str, Any]) -> list[str]:
    if d.get("prepared"):
        return str(d["prepared"]).splitlines()
    if "before" not in d and "after" not in d:
        return []
    before, after = _as_text(d.get("before")), _as_text(d.get("after"))
    return [line.rstrip("\n") for line in difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile=str(d.get("before_header") or "before"), tofile=str(d.get("after_header") or "after"), n=1)]


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):  # e.g. a file's state {"path", "state": "absent"} -> {"state": "link"}
        return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    text = str(value)
    return text if text.endswith("\n") or not text else text + "\n"


def render(summary: dict[str, Any], diff_lines: int = 6) -> list[str]:
    """Lines for people: the verdict, then per host what would change (first lines of each diff)."""
    verdict = "ok" if summary.get("ok") else "FAILED"
    out = [f"rehearsal {verdict}: run {summary.get('run_id')} at {summary.get('at')}"]
    for name, h in (summary.get("hosts") or {}).items():
        changes = h.get("would_change") or []
        out.append(f"  {name}: {len(changes)} task(s) would change" + (f", {len(h['failed'])} FAILED"
                                                                      if h.get("failed") else ""))
        for item in changes:
            out.append(f"    ~ {item['task']}")
            shown = (item.get("diff") or "").splitlines()
            out += [f"        {line}" for line in shown[:diff_lines]]
            if len(shown) > diff_lines:
                out.append(f"        ... ({len(shown) - diff_lines} more lines)")
    for f in summary.get("failures") or []:
        out.append(f"  FAILED {f['host']}: {f['task']}: {f['msg']}")
    return out
