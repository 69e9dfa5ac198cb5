# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only facts about pgBackRest backups and PostgreSQL WAL archiving (for fuhosp.ops.pgbackrest_info).

Everything here is a pure function of command output, except ``collect``, which runs the commands through
a ``run(argv) -> (rc, stdout, stderr)`` callable (the module passes ``AnsibleModule.run_command``), and
``repo_space``, which reads ``os.statvfs``. Standard library only; Python 3.6 or later.

Archive lag: PostgreSQL writes WAL into 16 MiB segment files named ``TTTTTTTTLLLLLLLLSSSSSSSS`` (timeline,
then the segment number split in two hex words). The segment being written now is ``pg_walfile_name
(pg_current_wal_lsn())``; every segment before it should be archived. ``lag_segments`` is the number of
completed segments between the last archived one (``pg_stat_archiver.last_archived_wal``) and the current
one; ``ready_count`` counts the ``.ready`` files PostgreSQL still waits to archive. ``lag_seconds`` is 0
when nothing waits, else the seconds since the last successful archive: how old the oldest WAL at risk is,
at most.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
from datetime import datetime, timezone

WAL_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\..*)?$")
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024

ARCHIVER_QUERY = (
    "SELECT row_to_json(t) FROM (SELECT a.archived_count, a.last_archived_wal, a.last_archived_time,"
    " a.failed_count, a.last_failed_wal, a.last_failed_time,"
    " pg_is_in_recovery() AS in_recovery,"
    " CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS current_wal,"
    " CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,"
    " (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') AS wal_segment_size,"
    " current_setting('archive_mode') AS archive_mode,"
    " current_setting('archive_timeout') AS archive_timeout,"
    " (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') AS ready_count,"
    " now() AS db_now FROM pg_stat_archiver a) t"
)


def info_argv(pgbackrest_bin, stanza, config=None):
    argv = [pgbackrest_bin]
    if config:
        argv.append("--config=" + config)
    argv += ["--stanza=" + stanza, "--output=json", "info"]
    return argv


def psql_argv(psql_bin, db, port=None, host=None):
    argv = [psql_bin, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db]
    if port:
        argv += ["-p", str(port)]
    if host:
        argv += ["-h", host]
    return argv + ["-c", ARCHIVER_QUERY]


def parse_time(value):
    """An ISO 8601 time from PostgreSQL's JSON (``2026-11-25T18:20:00.123+08:00``) as an aware datetime."""
    if not value:
        return None
    text = value.strip()
    m = re.match(r"^(.*[T ]\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d)(:?\d\d)?$", text)
    if not m:
        raise ValueError("not a PostgreSQL time: %r" % value)
    base, frac, tz_h, tz_m = m.groups()
    frac = (frac or ".0")[1:7].ljust(6, "0")
    tz_m = (tz_m or "00").lstrip(":")
    parsed = datetime.strptime(base.replace(" ", "T") + "." + frac + tz_h + tz_m, "%Y-%m-%dT%H:%M:%S.%f%z")
    return parsed


def wal_segment(name, segment_size=DEFAULT_SEGMENT_SIZE):
    """(timeline, absolute segment number) of a WAL file name, or None for a history file or other name.

    A ``.partial`` or ``.backup`` suffix names the segment it belongs to."""
    if not name:
        return None
    m = WAL_NAME.match(name.strip().upper())
    if not m:
        return None
    per_log = 0x100000000 // int(segment_size)
    return int(m.group(1), 16), int(m.group(2), 16) * per_log + int(m.group(3), 16)


def lag_segments(current_wal, last_archived_wal, segment_size=DEFAULT_SEGMENT_SIZE):
    """Completed segments not yet archived: those after the last archived one and before the current one.

    None when it cannot be told (nothing archived yet, a history file last, or a different timeline)."""
    cur = wal_segment(current_wal, segment_size)
    last = wal_segment(last_archived_wal, segment_size)
    if cur is None or last is None:
        return None
    if cur[0] != last[0]:
        return None
    return max(0, cur[1] - last[1] - 1)


def archiver_facts(row, now=None):
    """Facts from the archiver query's JSON row (see ARCHIVER_QUERY)."""
    now = now or datetime.now(timezone.utc)
    seg_size = int(row.get("wal_segment_size") or DEFAULT_SEGMENT_SIZE)
    last_time = parse_time(row.get("last_archived_time"))
    failed_time = parse_time(row.get("last_failed_time"))
    ready = int(row.get("ready_count") or 0)
    lag = lag_segments(row.get("current_wal"), row.get("last_archived_wal"), seg_size)
    since_last = None if last_time is None else max(0.0, round((now - last_time).total_seconds(), 3))
    waiting = bool(ready) or bool(lag)
    if not waiting:
        lag_seconds = 0.0
    else:
        lag_seconds = since_last
    failing = failed_time is not None and (last_time is None or failed_time > last_time)
    return {
        "archive_mode": row.get("archive_mode"),
        "archive_timeout": row.get("archive_timeout"),
        "in_recovery": bool(row.get("in_recovery")),
        "archived_count": int(row.get("archived_count") or 0),
        "failed_count": int(row.get("failed_count") or 0),
        "last_archived_wal": row.get("last_archived_wal"),
        "last_archived_time": last_time.isoformat() if last_time else None,
        "last_failed_wal": row.get("last_failed_wal"),
        "last_failed_time": failed_time.isoformat() if failed_time else None,
        "failing": failing,
        "current_wal": row.get("current_wal"),
        "current_lsn": row.get("current_lsn"),
        "wal_segment_size": seg_size,
        "ready_count": ready,
        "lag_segments": lag,
        "lag_bytes": None if lag is None else lag * seg_size,
        "seconds_since_last_archive": since_last,
        "lag_seconds": lag_seconds,
    }


def _backup_summary(backup, now_ts):
    stop = (backup.get("timestamp") or {}).get("stop")
    info = backup.get("info") or {}
    repo = info.get("repository") or {}
    return {
        "label": backup.get("label"),
        "type": backup.get("type"),
        "prior": backup.get("prior"),
        "start": (backup.get("timestamp") or {}).get("start"),
        "stop": stop,
        "age_seconds": None if stop is None else max(0, int(now_ts - stop)),
        "size": info.get("size"),
        "delta": info.get("delta"),
        "repo_size": repo.get("size"),
        "repo_delta": repo.get("delta"),
        "lsn_start": (backup.get("lsn") or {}).get("start"),
        "lsn_stop": (backup.get("lsn") or {}).get("stop"),
        "wal_start": (backup.get("archive") or {}).get("start"),
        "wal_stop": (backup.get("archive") or {}).get("stop"),
        "error": backup.get("error"),
    }


def info_facts(doc, stanza, now=None):
    """Facts from ``pgbackrest info --output=json`` for one stanza.

    Raises ValueError when the output is not what pgBackRest prints."""
    now = now or datetime.now(timezone.utc)
    now_ts = now.timestamp()
    if not isinstance(doc, list):
        raise ValueError("pgbackrest info did not print a JSON list")
    entry = None
    for item in doc:
        if isinstance(item, dict) and item.get("name") == stanza:
            entry = item
            break
    if entry is None:
        raise ValueError("stanza %r is not in the pgbackrest info output" % stanza)
    status = entry.get("status") or {}
    backups = [_backup_summary(b, now_ts) for b in entry.get("backup") or []]
    backups.sort(key=lambda b: (b["stop"] or 0))
    last = {}
    for kind in ("full", "diff", "incr"):
        of_kind = [b for b in backups if b["type"] == kind]
        last[kind] = of_kind[-1] if of_kind else None
    archive = [{"id": a.get("id"), "min": a.get("min"), "max": a.get("max")} for a in entry.get("archive") or []]
    current_db = (entry.get("db") or [{}])[-1]
    return {
        "stanza": stanza,
        "status": {"code": status.get("code"), "message": status.get("message"),
                   "backup_running": bool(((status.get("lock") or {}).get("backup") or {}).get("held"))},
        "ok": status.get("code") == 0,
        "cipher": entry.get("cipher"),
        "pg_version": current_db.get("version"),
        "backup_count": len(backups),
        "backups": backups,
        "last_backup": backups[-1] if backups else None,
        "last_full": last["full"],
        "last_diff": last["diff"],
        "last_incr": last["incr"],
        "last_full_age_seconds": last["full"]["age_seconds"] if last["full"] else None,
        "last_diff_age_seconds": last["diff"]["age_seconds"] if last["diff"] else None,
        "archive": archive,
        "archive_max": archive[-1]["max"] if archive else None,
    }


def repo_space(path):
    """Free and total bytes of the file system holding ``path`` (on this host)."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used_pct = round(100.0 * (total - free) / total, 1) if total else None
    return {"path": path, "total_bytes": total, "free_bytes": free, "used_percent": used_pct}


class CommandError(Exception):
    def __init__(self, msg, argv, rc, stdout, stderr):
        Exception.__init__(self, msg)
        self.msg, self.argv, self.rc, self.stdout, self.stderr = msg, argv, rc, stdout, stderr


def collect(run, params, now=None):
    """Run the read-only commands asked for by ``params`` and return the facts and the commands run."""
    now = now or datetime.now(timezone.utc)
    commands = []
    facts = {}
    if params.get("query_info", True):
        argv = info_argv(params.get("pgbackrest_bin") or "pgbackrest", params["stanza"], params.get("config"))
        commands.append(argv)
        rc, out, err = run(argv)
        if rc != 0:
            raise CommandError("pgbackrest info failed: %s" % (err.strip() or out.strip()), argv, rc, out, err)
        try:
            facts["backup"] = info_facts(json.loads(out), params["stanza"], now)
        except ValueError as exc:
            raise CommandError("cannot read pgbackrest info: %s" % exc, argv, rc, out, err)
    if params.get("query_archiver", True):
        argv = psql_argv(params.get("psql_bin") or "psql", params.get("db") or "postgres", params.get("port"),
                         params.get("host"))
        commands.append(argv)
        rc, out, err = run(argv)
        if rc != 0:
            raise CommandError("the archiver query failed: %s" % (err.strip() or out.strip()), argv, rc, out, err)
        try:
            facts["archiver"] = archiver_facts(json.loads(out.strip().splitlines()[0]), now)
        except (ValueError, IndexError) as exc:
            raise CommandError("cannot read the archiver query output: %s" % exc, argv, rc, out, err)
    if params.get("repo_path"):
        facts["repo"] = repo_space(params["repo_path"])
    return facts, commands
