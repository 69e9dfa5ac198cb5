"""Table-driven units for fuhosp.ops.pgbackrest_info's parsing (plugins/module_utils/_pgbackrest.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

COLLECTION = Path(__file__).resolve().parents[2] / "collections" / "ansible_collections" / "fuhosp" / "ops"
_spec = importlib.util.spec_from_file_location("_pgbackrest", COLLECTION / "plugins" / "module_utils" / "_pgbackrest.py")
pgb = importlib.util.module_from_spec(_spec)
sys.modules["_pgbackrest"] = pgb
_spec.loader.exec_module(pgb)

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)
NOW_TS = int(NOW.timestamp())
MB16 = 16 * 1024 * 1024


@pytest.mark.parametrize("name, size, expected", [
    ("000000010000000000000001", MB16, (1, 1)),
    ("0000000100000001000000FF", MB16, (1, 256 + 255)),
    ("00000002000000030000000A", MB16, (2, 3 * 256 + 10)),
    ("000000010000000000000003.00000028.backup", MB16, (1, 3)),
    ("000000010000000000000005.partial", MB16, (1, 5)),
    ("00000002.history", MB16, None),
    ("", MB16, None),
    (None, MB16, None),
    ("0000000100000001000000FF", 64 * 1024 * 1024, (1, 64 + 255)),
    ("000000010000000000000001", 1024 * 1024 * 1024, (1, 1)),
])
def test_wal_segment(name, size, expected):
    assert pgb.wal_segment(name, size) == expected


@pytest.mark.parametrize("current, last, expected", [
    ("00000001000000000000000B", "00000001000000000000000A", 0),       # caught up: only the current one open
    ("00000001000000000000000B", "000000010000000000000008", 2),       # 9 and A wait
    ("000000010000000100000002", "0000000100000000000000FE", 3),       # across a log boundary: FF, 1/00, 1/01
    ("00000001000000000000000B", None, None),                          # nothing archived yet
    ("00000002000000000000000B", "00000002.history", None),            # a timeline history file last
    ("00000002000000000000000B", "00000001000000000000000A", None),    # different timeline
    ("00000001000000000000000B", "00000001000000000000000B", 0),       # a forced switch archived the current name
    (None, "00000001000000000000000A", None),                          # a standby has no current WAL
])
def test_lag_segments(current, last, expected):
    assert pgb.lag_segments(current, last, MB16) == expected


@pytest.mark.parametrize("text, expected", [
    ("2026-11-25T11:59:30.123456+00:00", datetime(2026, 11, 25, 11, 59, 30, 123456, tzinfo=timezone.utc)),
    ("2026-11-25T19:59:30.5+08:00", datetime(2026, 11, 25, 11, 59, 30, 500000, tzinfo=timezone.utc)),
    ("2026-11-25 11:59:30+00", datetime(2026, 11, 25, 11, 59, 30, tzinfo=timezone.utc)),
    ("2026-11-25T11:59:30.1234567+00:00", datetime(2026, 11, 25, 11, 59, 30, 123456, tzinfo=timezone.utc)),
    (None, None),
    ("", None),
])
def test_parse_time(text, expected):
    assert pgb.parse_time(text) == expected


def test_parse_time_refuses_garbage():
    with pytest.raises(ValueError):
        pgb.parse_time("yesterday")


def _row(**over):
    row = {"archived_count": 10, "last_archived_wal": "00000001000000000000000A",
           "last_archived_time": "2026-11-25T11:59:00+00:00", "failed_count": 0, "last_failed_wal": None,
           "last_failed_time": None, "in_recovery": False, "current_wal": "00000001000000000000000B",
           "current_lsn": "0/B000060", "wal_segment_size": MB16, "archive_mode": "on", "archive_timeout": "1min",
           "ready_count": 0, "db_now": "2026-11-25T12:00:00+00:00"}
    row.update(over)
    return row


@pytest.mark.parametrize("over, expect", [
    # caught up: no lag even though the last archive is a minute old
    ({}, {"lag_segments": 0, "lag_seconds": 0.0, "ready_count": 0, "failing": False,
          "seconds_since_last_archive": 60.0, "lag_bytes": 0}),
    # repository unreachable: three segments wait, the last success was five minutes ago, the last attempt failed
    ({"current_wal": "00000001000000000000000E", "ready_count": 3, "failed_count": 4,
      "last_failed_wal": "00000001000000000000000B", "last_failed_time": "2026-11-25T11:59:50+00:00",
      "last_archived_time": "2026-11-25T11:55:00+00:00"},
     {"lag_segments": 3, "lag_seconds": 300.0, "ready_count": 3, "failing": True, "lag_bytes": 3 * MB16}),
    # an old failure, since recovered
    ({"failed_count": 1, "last_failed_wal": "000000010000000000000005",
      "last_failed_time": "2026-11-25T10:00:00+00:00"}, {"failing": False, "lag_seconds": 0.0}),
    # nothing archived yet: the segment lag cannot be told, the ready files still say something waits
    ({"archived_count": 0, "last_archived_wal": None, "last_archived_time": None, "ready_count": 2},
     {"lag_segments": None, "lag_seconds": None, "ready_count": 2, "seconds_since_last_archive": None}),
    # a standby
    ({"in_recovery": True, "current_wal": None, "current_lsn": None},
     {"in_recovery": True, "lag_segments": None, "lag_seconds": 0.0}),
])
def test_archiver_facts(over, expect):
    facts = pgb.archiver_facts(_row(**over), now=NOW)
    for key, value in expect.items():
        assert facts[key] == value, key


def _backup(label, kind, stop, prior=None):
    return {"archive": {"start": "000000010000000000000004", "stop": "000000010000000000000004"},
            "backrest": {"format": 5, "version": "2.45"}, "database": {"id": 1, "repo-key": 1}, "error": False,
            "info": {"delta": 100, "repository": {"delta": 10, "size": 20}, "size": 200},
            "label": label, "lsn": {"start": "0/4000028", "stop": "0/4000138"}, "prior": prior,
            "reference": None, "timestamp": {"start": stop - 5, "stop": stop}, "type": kind}


def _info(backups, code=0, message="ok", name="hospital"):
    return [{"archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1",
                          "max": "00000001000000000000000A", "min": "000000010000000000000004"}],
             "backup": backups, "cipher": "aes-256-cbc",
             "db": [{"id": 1, "repo-key": 1, "system-id": 7, "version": "15"}], "name": name,
             "repo": [{"cipher": "aes-256-cbc", "key": 1, "status": {"code": code, "message": message}}],
             "status": {"code": code, "lock": {"backup": {"held": False}}, "message": message}}]


FULL = _backup("20261118-010000F", "full", NOW_TS - 7 * 86400)
DIFF = _backup("20261118-010000F_20261124-010000D", "diff", NOW_TS - 11 * 3600, prior=FULL["label"])
INCR = _backup("20261118-010000F_20261125-110000I", "incr", NOW_TS - 3600, prior=DIFF["label"])
FULL2 = _backup("20261125-010000F", "full", NOW_TS - 10 * 3600)


@pytest.mark.parametrize("doc, expect", [
    (_info([FULL, DIFF, INCR]),
     {"ok": True, "backup_count": 3, "last_full_age_seconds": 7 * 86400, "last_diff_age_seconds": 11 * 3600,
      "last_backup.label": INCR["label"], "last_incr.prior": DIFF["label"], "cipher": "aes-256-cbc",
      "archive_max": "00000001000000000000000A", "pg_version": "15"}),
    # listed out of order: sorted by stop time, the newest full wins
    (_info([FULL2, FULL, DIFF]),
     {"backup_count": 3, "last_full.label": FULL2["label"], "last_backup.label": FULL2["label"]}),
    # a stanza with no backup yet
    (_info([], code=2, message="no valid backups"),
     {"ok": False, "backup_count": 0, "last_full": None, "last_full_age_seconds": None, "last_backup": None,
      "status.code": 2}),
])
def test_info_facts(doc, expect):
    facts = pgb.info_facts(doc, "hospital", now=NOW)
    for key, value in expect.items():
        got = facts
        for part in key.split("."):
            got = got[part]
        assert got == value, key


@pytest.mark.parametrize("doc", [{"not": "a list"}, _info([], name="other")])
def test_info_facts_refuses(doc):
    with pytest.raises(ValueError):
        pgb.info_facts(doc, "hospital", now=NOW)


@pytest.mark.parametrize("params, outputs, expect_argv, expect_keys", [
    ({"stanza": "hospital", "query_archiver": False},
     [(0, json.dumps(_info([FULL])), "")],
     [["pgbackrest", "--stanza=hospital", "--output=json", "info"]], {"backup"}),
    ({"stanza": "s1", "config": "/etc/pgb.conf", "pgbackrest_bin": "/usr/bin/pgbackrest", "query_archiver": False},
     [(0, json.dumps(_info([FULL], name="s1")), "")],
     [["/usr/bin/pgbackrest", "--config=/etc/pgb.conf", "--stanza=s1", "--output=json", "info"]], {"backup"}),
    ({"stanza": "hospital", "query_info": False, "db": "hospital", "port": 5433},
     [(0, json.dumps(_row()) + "\n", "")],
     [["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", "hospital", "-p", "5433", "-c", pgb.ARCHIVER_QUERY]],
     {"archiver"}),
])
def test_collect_runs_these_commands(params, outputs, expect_argv, expect_keys):
    seen = []

    def run(argv):
        seen.append(argv)
        return outputs[len(seen) - 1]

    facts, commands = pgb.collect(run, params, now=NOW)
    assert seen == expect_argv == commands
    assert set(facts) == expect_keys


@pytest.mark.parametrize("params, output, message", [
    ({"stanza": "hospital", "query_archiver": False}, (1, "", "ERROR: [055]: unable to load info file"),
     "pgbackrest info failed: ERROR: [055]"),
    ({"stanza": "hospital", "query_archiver": False}, (0, "not json", ""), "cannot read pgbackrest info"),
    ({"stanza": "hospital", "query_info": False}, (2, "", "psql: error: connection refused"),
     "the archiver query failed: psql: error"),
    ({"stanza": "hospital", "query_info": False}, (0, "", ""), "cannot read the archiver query output"),
])
def test_collect_failures_say_what_failed(params, output, message):
    with pytest.raises(pgb.CommandError) as err:
        pgb.collect(lambda argv: output, params, now=NOW)
    assert str(err.value).startswith(message)
    assert err.value.rc == output[0]


def test_repo_space(tmp_path):
    space = pgb.repo_space(str(tmp_path))
    assert space["total_bytes"] >= space["free_bytes"] > 0
    assert 0 <= space["used_percent"] <= 100
