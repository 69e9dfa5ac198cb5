# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only PostgreSQL checks for fuhosp.ops.pg_inspect, and the bloat estimate fuhosp.ops.pg_maintain acts on.

Sessions are read-only (``default_transaction_read_only``) with a statement timeout; no query text of
other sessions is ever read (it may hold patient data), only ages, states and counts.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

from ansible_collections.fuhosp.ops.plugins.module_utils._inspect_common import finding, level

# psycopg2 (Debian's python3-psycopg2 on the hosts) or, failing that, psycopg 3
DRIVER = None
DB_ERROR = Exception
dict_row = None
PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
    import psycopg2.extras
    DRIVER = "psycopg2"
    DB_ERROR = psycopg2.Error
except ImportError as exc:  # pragma: no cover - depends on the host
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = exc
    try:
        import psycopg
        from psycopg.rows import dict_row
        DRIVER = "psycopg"
        DB_ERROR = psycopg.Error
    except ImportError:
        psycopg = None
HAS_PSYCOPG2 = DRIVER is not None

DEFAULT_THRESHOLDS = {
    "connections_warn_pct": 80, "connections_crit_pct": 95, "long_xact_seconds": 300,
    "index_bloat_pct": 30, "index_bloat_min_bytes": 1048576, "dead_tuple_pct": 20, "dead_tuple_min": 10000,
    "unused_index_min_bytes": 1048576, "cache_hit_min": 0.95, "cache_hit_min_blocks": 10000,
    "archive_age_warn_seconds": 3600, "archive_lag_segments_warn": 16, "backup_age_warn_hours": 26,
}

PAGE = 8192
_PAGE_USABLE = PAGE - 24 - 16  # page header, btree special space


def connect(params, dbname, read_only=True):
    options = "-c statement_timeout=%d" % int(params.get("statement_timeout_ms") or 30000)
    if read_only:
        options += " -c default_transaction_read_only=on"
    kwargs = {"dbname": dbname, "user": params.get("login_user") or "postgres", "port": params.get("port") or 5432,
              "connect_timeout": params.get("connect_timeout") or 10,
              "options": options,
              "application_name": "fuhosp.ops inspection"}
    host = params.get("login_host") or params.get("login_unix_socket")
    if host:
        kwargs["host"] = host
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    if DRIVER == "psycopg2":
        conn = psycopg2.connect(**kwargs)
        conn.autocommit = True
        return conn
    return psycopg.connect(autocommit=True, **kwargs)


def rows(conn, sql, args=None):
    cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) if DRIVER == "psycopg2" else conn.cursor(row_factory=dict_row)
    try:
        if args is None:
            cur.execute(sql.replace("%%", "%"))
        else:
            cur.execute(sql, args)
        return [dict(r) for r in cur.fetchall()]
    finally:
        cur.close()


def _num(value):
    if value is None:
        return None
    if isinstance(value, float) or hasattr(value, "as_integer_ratio"):
        return float(value)
    return value


def _clean(row):
    out = {}
    for key, value in row.items():
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif value is not None and not isinstance(value, (int, str, bool, list, dict)):
            value = _num(value)
        out[key] = value
    return out


CLUSTER_SQL = {
    "settings": "SELECT name, setting FROM pg_settings WHERE name IN ('max_connections', 'data_checksums', 'archive_mode',"
                " 'archive_command', 'server_version', 'superuser_reserved_connections', 'wal_segment_size', 'data_directory')",
    "connections": "SELECT count(*) AS total, count(*) FILTER (WHERE state = 'active') AS active,"
                   " count(*) FILTER (WHERE state LIKE 'idle in transaction%%') AS idle_in_transaction"
                   " FROM pg_stat_activity WHERE backend_type = 'client backend'",
    "long_xacts": "SELECT pid, datname, usename, state, extract(epoch FROM now() - xact_start)::bigint AS age_seconds,"
                  " wait_event_type FROM pg_stat_activity WHERE xact_start IS NOT NULL AND backend_type = 'client backend'"
                  " AND pid <> pg_backend_pid() AND now() - xact_start > make_interval(secs => %(secs)s)"
                  " ORDER BY xact_start",
    "locks": "SELECT count(*) AS waiting, count(DISTINCT pid) AS waiting_sessions FROM pg_locks WHERE NOT granted",
    "blocked": "SELECT pid, datname, pg_blocking_pids(pid) AS blocked_by, extract(epoch FROM now() - query_start)::bigint"
               " AS waiting_seconds FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0",
    "databases": "SELECT d.datname, pg_database_size(d.oid) AS size_bytes, s.numbackends, s.xact_commit, s.xact_rollback,"
                 " s.blks_read, s.blks_hit, s.deadlocks, s.temp_bytes, s.checksum_failures, s.checksum_last_failure,"
                 " s.stats_reset FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid"
                 " WHERE NOT d.datistemplate AND d.datallowconn ORDER BY d.datname",
    "archiver": "SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal,"
                " last_failed_time, extract(epoch FROM now() - last_archived_time)::bigint AS last_archived_age_seconds,"
                " pg_walfile_name(pg_current_wal_lsn()) AS current_wal FROM pg_stat_archiver",
}

INDEX_SQL = """
SELECT n.nspname AS schema, c.relname AS index, t.relname AS table, pg_relation_size(c.oid) AS bytes,
       c.reltuples::bigint AS reltuples, am.amname AS method, i.indisunique AS is_unique, i.indisprimary AS is_primary,
       i.indisvalid AS is_valid, COALESCE(ps.idx_scan, 0) AS idx_scan,
       (SELECT sum(COALESCE(s.avg_width, CASE WHEN a.attlen > 0 THEN a.attlen END))
          FROM pg_attribute a LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = t.relname
           AND s.attname = a.attname
         WHERE a.attrelid = t.oid AND a.attnum = ANY (i.indkey)) AS key_width,
       (SELECT count(*) FROM unnest(i.indkey) k WHERE k = 0) AS expression_columns,
       (SELECT count(*) FROM pg_attribute a LEFT JOIN pg_stats s ON s.schemaname = n.nspname
           AND s.tablename = t.relname AND s.attname = a.attname
         WHERE a.attrelid = t.oid AND a.attnum = ANY (i.indkey) AND s.avg_width IS NULL AND a.attlen < 0) AS unknown_width,
       COALESCE((SELECT substring(o FROM 'fillfactor=([0-9]+)')::int FROM unnest(c.reloptions) o
                  WHERE o LIKE 'fillfactor=%%'), 90) AS fillfactor,
       i.indrelid::bigint AS table_oid, i.indkey::text AS indkey, i.indclass::text AS indclass,
       COALESCE(pg_get_expr(i.indexprs, i.indrelid), '') AS exprs, COALESCE(pg_get_expr(i.indpred, i.indrelid), '') AS pred
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_am am ON am.oid = c.relam
  LEFT JOIN pg_stat_user_indexes ps ON ps.indexrelid = i.indexrelid
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
 ORDER BY n.nspname, c.relname
"""

TABLE_SQL = """
SELECT schemaname AS schema, relname AS table, n_live_tup, n_dead_tup, pg_table_size(relid) AS bytes,
       pg_total_relation_size(relid) AS total_bytes, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze
  FROM pg_stat_user_tables ORDER BY schemaname, relname
"""


def estimate_index_bloat(ix):
    """Estimate (ideal_bytes, bloat_bytes, bloat_pct) of a B-tree from its tuples and key width.

    ideal leaf pages = tuples * (MAXALIGN(8 + key width) + 4 line pointer) / (usable page * fillfactor),
    plus the meta page and about one inner page per 300 leaves. Returns (None, None, None) when the
    estimate is not possible (not a B-tree, expression keys, never analysed, width unknown)."""
    if ix.get("method") != "btree" or ix.get("expression_columns") or ix.get("unknown_width"):
        return None, None, None
    tuples = ix.get("reltuples")
    width = ix.get("key_width")
    if tuples is None or tuples < 0 or width is None:
        return None, None, None
    tuple_bytes = int(math.ceil((8 + float(width)) / 8.0) * 8) + 4
    per_page = max(1.0, _PAGE_USABLE * (ix.get("fillfactor") or 90) / 100.0 / tuple_bytes)
    leaves = int(math.ceil(float(tuples) / per_page)) if tuples else 1
    ideal = (leaves + 1 + int(math.ceil(leaves / 300.0))) * PAGE
    actual = ix.get("bytes") or 0
    bloat = max(0, actual - ideal)
    pct = round(100.0 * bloat / actual, 1) if actual else 0.0
    return ideal, bloat, pct


def index_report(conn, th):
    found = rows(conn, INDEX_SQL)
    out = []
    for ix in found:
        ideal, bloat, pct = estimate_index_bloat(ix)
        item = _clean(ix)
        item.update({"ideal_bytes": ideal, "bloat_bytes": bloat, "bloat_pct": pct,
                     "bloated": bool(pct is not None and pct >= th["index_bloat_pct"]
                                     and ix["bytes"] >= th["index_bloat_min_bytes"])})
        out.append(item)
    return out


def duplicates(indexes):
    groups = {}
    for ix in indexes:
        key = (ix["schema"], ix["table_oid"], ix["indkey"], ix["indclass"], ix["exprs"], ix["pred"])
        groups.setdefault(key, []).append(ix["index"])
    return [{"schema": k[0], "indexes": sorted(v)} for k, v in groups.items() if len(v) > 1]


def table_report(conn, th):
    out = []
    for t in rows(conn, TABLE_SQL):
        item = _clean(t)
        live, dead = t["n_live_tup"] or 0, t["n_dead_tup"] or 0
        item["dead_pct"] = round(100.0 * dead / (live + dead), 1) if live + dead else 0.0
        item["needs_vacuum"] = dead >= th["dead_tuple_min"] and item["dead_pct"] >= th["dead_tuple_pct"]
        out.append(item)
    return out


def _wal_segment(name, seg_size):
    if not name or len(name) != 24:
        return None
    per_log = 0x100000000 // seg_size
    return int(name[8:16], 16) * per_log + int(name[16:24], 16)


def inspect(params):
    th = dict(DEFAULT_THRESHOLDS)
    th.update(dict((k, v) for k, v in (params.get("thresholds") or {}).items() if v is not None))
    findings = []
    conn = connect(params, params.get("db") or "postgres")
    try:
        settings = dict((r["name"], r["setting"]) for r in rows(conn, CLUSTER_SQL["settings"]))
        conns = _clean(rows(conn, CLUSTER_SQL["connections"])[0])
        long_xacts = [_clean(r) for r in rows(conn, CLUSTER_SQL["long_xacts"], {"secs": th["long_xact_seconds"]})]
        locks = _clean(rows(conn, CLUSTER_SQL["locks"])[0])
        blocked = [_clean(r) for r in rows(conn, CLUSTER_SQL["blocked"])]
        databases = [_clean(r) for r in rows(conn, CLUSTER_SQL["databases"])]
        archiver = _clean(rows(conn, CLUSTER_SQL["archiver"])[0])
    finally:
        conn.close()
    max_conn = int(settings.get("max_connections", "100"))
    conns["max_connections"] = max_conn
    conns["used_pct"] = round(100.0 * conns["total"] / max_conn, 1)
    sev = level(conns["used_pct"], th["connections_warn_pct"], th["connections_crit_pct"])
    if sev:
        findings.append(finding("db_connections_high", sev, "connections", "%d of %d connections in use" % (conns["total"], max_conn),
                                "5.2", "look for connection leaks in the services or add a connection pooler (PgBouncer)",
                                conns["used_pct"], th["connections_warn_pct"]))
    for x in long_xacts:
        findings.append(finding("db_long_transaction", "medium", "pid %s" % x["pid"],
                                "transaction open for %ss on %s (%s)" % (x["age_seconds"], x["datname"], x["state"]), "5.2",
                                "ask the owner of the session (%s) to finish it; it blocks vacuum" % x["usename"],
                                x["age_seconds"], th["long_xact_seconds"]))
    if locks["waiting"]:
        findings.append(finding("db_locks_waiting", "medium", "locks", "%d lock requests waiting" % locks["waiting"], "5.2",
                                "find the blocking session (pg_blocking_pids) and end its transaction", locks["waiting"]))
    if settings.get("data_checksums") != "on":
        findings.append(finding("db_checksums_off", "low", "cluster", "data checksums are off: silent corruption goes unnoticed",
                                "5.2", "enable them with pg_checksums --enable during a planned stop"))
    seg_size = int(settings.get("wal_segment_size") or 16777216)
    if settings.get("archive_mode", "off") != "off":
        cur, last = _wal_segment(archiver.get("current_wal"), seg_size), _wal_segment(archiver.get("last_archived_wal"), seg_size)
        archiver["lag_segments"] = (cur - last - 1) if cur is not None and last is not None else None
        age = archiver.get("last_archived_age_seconds")
        if archiver.get("last_archived_wal") is None or (age is not None and age > th["archive_age_warn_seconds"]):
            findings.append(finding("wal_archive_stale", "high", "archiver",
                                    "no WAL archived for %s seconds" % (age if age is not None else "ever"), "5.2",
                                    "check archive_command and the backup repository; point-in-time recovery depends on it",
                                    age, th["archive_age_warn_seconds"]))
        if (archiver.get("lag_segments") or 0) > th["archive_lag_segments_warn"]:
            findings.append(finding("wal_archive_lag", "high", "archiver", "%d WAL segments not archived" % archiver["lag_segments"],
                                    "5.2", "check archive_command and the space on the backup repository",
                                    archiver["lag_segments"], th["archive_lag_segments_warn"]))
        if archiver.get("failed_count") and (archiver.get("last_failed_time") or "") > (archiver.get("last_archived_time") or ""):
            findings.append(finding("wal_archive_failing", "critical", "archiver", "the last WAL archive attempt failed", "5.2",
                                    "read the PostgreSQL log for archive_command errors and fix the backup repository"))
    else:
        archiver["lag_segments"] = None
        findings.append(finding("wal_archive_off", "high", "archiver", "archive_mode is off: no log (WAL) backups", "5.2",
                                "enable WAL archiving to the off-site backup repository (pgBackRest)"))
    wanted = params.get("databases") or [d["datname"] for d in databases if d["datname"] not in ("postgres",)]
    per_db = []
    for db in databases:
        hit, read = db.get("blks_hit") or 0, db.get("blks_read") or 0
        db["cache_hit_ratio"] = round(float(hit) / (hit + read), 4) if hit + read else None
        if db.get("checksum_failures"):
            findings.append(finding("db_checksum_failures", "critical", db["datname"],
                                    "%d data checksum failures in %s" % (db["checksum_failures"], db["datname"]), "5.2",
                                    "storage is corrupting data: check the disk, restore the damaged relations from backup",
                                    db["checksum_failures"]))
        if db["cache_hit_ratio"] is not None and hit + read >= th["cache_hit_min_blocks"] and db["cache_hit_ratio"] < th["cache_hit_min"]:
            findings.append(finding("db_cache_hit_low", "low", db["datname"],
                                    "cache hit ratio %.3f in %s" % (db["cache_hit_ratio"], db["datname"]), "7.4.2 (5)",
                                    "raise shared_buffers or add memory; look for sequential scans of large tables",
                                    db["cache_hit_ratio"], th["cache_hit_min"]))
        if db["datname"] not in wanted:
            continue
        dconn = connect(params, db["datname"])
        try:
            indexes = index_report(dconn, th)
            tables = table_report(dconn, th)
        finally:
            dconn.close()
        dups = duplicates(indexes)
        for ix in indexes:
            name = "%s.%s.%s" % (db["datname"], ix["schema"], ix["index"])
            if ix["bloated"]:
                findings.append(finding("index_bloat", "medium", name,
                                        "index %s is about %.0f%% bloat (%d of %d bytes)" % (name, ix["bloat_pct"], ix["bloat_bytes"], ix["bytes"]),
                                        "5.2", "rebuild it with REINDEX INDEX CONCURRENTLY (db_maintenance does this in the maintenance window)",
                                        ix["bloat_pct"], th["index_bloat_pct"]))
            if not ix["is_valid"]:
                findings.append(finding("index_invalid", "high", name, "index %s is invalid (a failed concurrent build)" % name,
                                        "5.2", "drop it and build it again"))
            if ix["idx_scan"] == 0 and not ix["is_unique"] and not ix["is_primary"] and ix["bytes"] >= th["unused_index_min_bytes"]:
                findings.append(finding("index_unused", "low", name, "index %s (%d bytes) was never used since the statistics were reset" % (name, ix["bytes"]),
                                        "7.4.2 (5)", "confirm with the developers and drop it; it slows every write", ix["bytes"]))
        for dup in dups:
            findings.append(finding("index_duplicate", "low", "%s.%s" % (db["datname"], ",".join(dup["indexes"])),
                                    "indexes %s in %s are identical" % (", ".join(dup["indexes"]), db["datname"]), "7.4.2 (5)",
                                    "keep one of them and drop the others"))
        for t in tables:
            if t["needs_vacuum"]:
                name = "%s.%s.%s" % (db["datname"], t["schema"], t["table"])
                findings.append(finding("table_dead_tuples", "medium", name,
                                        "%s has %d dead tuples (%.0f%%)" % (name, t["n_dead_tup"], t["dead_pct"]), "5.2",
                                        "VACUUM (ANALYZE) it (db_maintenance); check why autovacuum falls behind",
                                        t["dead_pct"], th["dead_tuple_pct"]))
        internal = ("table_oid", "indkey", "indclass", "exprs", "pred")
        per_db.append({"name": db["datname"], "indexes": [dict((k, v) for k, v in ix.items() if k not in internal) for ix in indexes],
                       "duplicate_indexes": dups, "tables": tables})
    return {
        "version": settings.get("server_version"), "data_checksums": settings.get("data_checksums") == "on",
        "data_directory": settings.get("data_directory"), "archive_mode": settings.get("archive_mode"),
        "connections": conns, "long_transactions": long_xacts, "locks": dict(locks, blocked=blocked),
        "databases": databases, "details": per_db, "archiver": archiver, "findings": findings, "thresholds": th,
    }


def rows_exec(conn, sql):
    """Run one statement that returns no rows (VACUUM and REINDEX CONCURRENTLY need autocommit)."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()
