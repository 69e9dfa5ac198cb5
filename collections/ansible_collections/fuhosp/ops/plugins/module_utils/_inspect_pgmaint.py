# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Index and table maintenance for fuhosp.ops.pg_maintain (contract 5.2: 索引维护, 存储空间维护).

Decide first (the same estimates pg_inspect reports), then act only when not in check mode:
``VACUUM (ANALYZE)`` tables whose dead tuples are over the threshold, then ``REINDEX INDEX
CONCURRENTLY`` indexes whose estimated bloat is over the threshold. Sizes are read before and after.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.fuhosp.ops.plugins.module_utils import _inspect_pg as pg


def _ident(*parts):
    return ".".join('"%s"' % p.replace('"', '""') for p in parts)


def plan(conn, th, do_vacuum=True, do_reindex=True):
    actions = []
    if do_vacuum:
        for t in pg.table_report(conn, th):
            if t["needs_vacuum"]:
                actions.append({"action": "vacuum", "object": "%s.%s" % (t["schema"], t["table"]),
                                "query": "VACUUM (ANALYZE) %s" % _ident(t["schema"], t["table"]),
                                "size_query": "SELECT pg_table_size(%s::regclass) AS bytes",
                                "regclass": _ident(t["schema"], t["table"]),
                                "reason": "%d dead tuples (%.1f%%)" % (t["n_dead_tup"], t["dead_pct"]),
                                "before_bytes": t["bytes"]})
    if do_reindex:
        for ix in pg.index_report(conn, th):
            if ix["bloated"] and ix["is_valid"]:
                actions.append({"action": "reindex", "object": "%s.%s" % (ix["schema"], ix["index"]),
                                "query": "REINDEX INDEX CONCURRENTLY %s" % _ident(ix["schema"], ix["index"]),
                                "size_query": "SELECT pg_relation_size(%s::regclass) AS bytes",
                                "regclass": _ident(ix["schema"], ix["index"]),
                                "reason": "estimated bloat %.1f%% (%d bytes)" % (ix["bloat_pct"], ix["bloat_bytes"]),
                                "before_bytes": ix["bytes"]})
    return actions


def maintain(params, check_mode):
    th = dict(pg.DEFAULT_THRESHOLDS)
    th.update(dict((k, v) for k, v in (params.get("thresholds") or {}).items() if v is not None))
    conn = pg.connect(params, params.get("db") or "postgres")
    try:
        names = [r["datname"] for r in pg.rows(conn, "SELECT datname FROM pg_database WHERE NOT datistemplate"
                                                     " AND datallowconn AND datname <> 'postgres' ORDER BY datname")]
    finally:
        conn.close()
    wanted = params.get("databases") or names
    done, queries = [], []
    for dbname in [n for n in names if n in wanted]:
        conn = pg.connect(params, dbname, read_only=False)
        try:
            # vacuum first, then plan the rebuilds on the statistics vacuum refreshed (an index of a table
            # full of dead tuples only shows its bloat once vacuum has counted the live ones)
            vacuums = plan(conn, th, params.get("vacuum", True), False)
            for act in vacuums:
                done.append(_do(conn, dbname, act, check_mode))
                queries.append(act["query"])
            for act in plan(conn, th, False, params.get("reindex", True)):
                done.append(_do(conn, dbname, act, check_mode))
                queries.append(act["query"])
        finally:
            conn.close()
    freed = sum(a["freed_bytes"] or 0 for a in done)
    return {"changed": bool(done), "actions": done, "queries": queries, "freed_bytes": freed, "thresholds": th}


def _do(conn, dbname, act, check_mode):
    item = {"database": dbname, "action": act["action"], "object": act["object"], "reason": act["reason"],
            "before_bytes": act["before_bytes"], "after_bytes": None, "freed_bytes": None, "seconds": None}
    if not check_mode:
        started = time.time()
        pg.rows_exec(conn, act["query"])
        item["seconds"] = round(time.time() - started, 2)
        item["after_bytes"] = pg.rows(conn, act["size_query"], (act["regclass"],))[0]["bytes"]
        item["freed_bytes"] = act["before_bytes"] - item["after_bytes"]
    return item
