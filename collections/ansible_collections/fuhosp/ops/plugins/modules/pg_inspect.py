#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_inspect
short_description: Inspect a PostgreSQL cluster read-only (size, connections, locks, bloat, indexes, checksums, archiving)
version_added: 0.1.0
description:
  - The database half of the quarterly inspection (contract 5.1, 5.2, 7.4.2 (4)).
  - Reads database sizes, connections against C(max_connections), long transactions, waiting locks,
    B-tree index bloat (an estimate from tuples and key widths), dead tuples per table, unused and duplicate
    indexes, cache hit ratio, data checksum failures (C(pg_stat_database.checksum_failures)) and the WAL
    archiver (C(pg_stat_archiver)) with its lag in segments.
  - Sessions are read-only (C(default_transaction_read_only)) with a statement timeout. No query text of other
    sessions is read, only ages, states and counts.
  - Backup age comes from C(fuhosp.ops.pgbackrest_info) in the inspection role when that module is present.
author:
  - fuhosp.ops contributors (@fuhosp)
options:
  db:
    description: Database to connect to for the cluster-wide views.
    type: str
    default: postgres
    version_added: 0.1.0
  databases:
    description: Databases whose indexes and tables are inspected; all but C(postgres) and templates when empty.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  login_user:
    description: Role to connect as (a superuser or a member of C(pg_monitor)).
    type: str
    default: postgres
    version_added: 0.1.0
  login_password:
    description: Password, when the connection needs one.
    type: str
    version_added: 0.1.0
  login_host:
    description: Host to connect to; empty connects over the local socket.
    type: str
    version_added: 0.1.0
  login_unix_socket:
    description: Directory of the local socket.
    type: str
    version_added: 0.1.0
  port:
    description: Port of the server.
    type: int
    default: 5432
    version_added: 0.1.0
  connect_timeout:
    description: Seconds to wait for a connection.
    type: int
    default: 10
    version_added: 0.1.0
  statement_timeout_ms:
    description: Statement timeout of the inspection's sessions.
    type: int
    default: 30000
    version_added: 0.1.0
  thresholds:
    description:
      - Thresholds overriding the defaults, for example C(connections_warn_pct), C(long_xact_seconds),
        C(index_bloat_pct), C(index_bloat_min_bytes), C(dead_tuple_pct), C(dead_tuple_min),
        C(unused_index_min_bytes), C(cache_hit_min), C(archive_age_warn_seconds), C(archive_lag_segments_warn).
    type: dict
    default: {}
    version_added: 0.1.0
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs it the same way.
  diff_mode:
    support: none
    description: The module reports results, not file changes; there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs on the managed host (Linux with /proc and systemd).
requirements:
  - psycopg2 (or psycopg 3) on the managed host
"""

EXAMPLES = r"""
- name: Inspect the database cluster
  fuhosp.ops.pg_inspect:
    databases: [hospital]
    thresholds: {index_bloat_pct: 30}
  become: true
  become_user: postgres
  register: db_inspection
"""

RETURN = r"""
version:
  description: Server version.
  returned: always
  type: str
connections:
  description: Client connections (total, active, idle in transaction), max_connections and used_pct.
  returned: always
  type: dict
long_transactions:
  description: Sessions whose transaction is older than the threshold (pid, database, user, state, age_seconds).
  returned: always
  type: list
  elements: dict
locks:
  description: Waiting lock requests and blocked sessions.
  returned: always
  type: dict
databases:
  description: Size, cache hit ratio, checksum failures, deadlocks per database.
  returned: always
  type: list
  elements: dict
details:
  description: Per inspected database, indexes (size, bloat estimate, scans) and tables (live and dead tuples).
  returned: always
  type: list
  elements: dict
archiver:
  description: pg_stat_archiver with the lag in WAL segments.
  returned: always
  type: dict
findings:
  description: Problems found, each with code, severity, subject, message, clause, recommendation.
  returned: always
  type: list
  elements: dict
thresholds:
  description: The thresholds used.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.fuhosp.ops.plugins.module_utils import _inspect_pg as pg


def connection_spec():
    return dict(
        db=dict(type="str", default="postgres"),
        login_user=dict(type="str", default="postgres"),
        login_password=dict(type="str", no_log=True),
        login_host=dict(type="str"),
        login_unix_socket=dict(type="str"),
        port=dict(type="int", default=5432),
        connect_timeout=dict(type="int", default=10),
        statement_timeout_ms=dict(type="int", default=30000),
    )


def main():
    spec = connection_spec()
    spec.update(databases=dict(type="list", elements="str", default=[]), thresholds=dict(type="dict", default={}))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if not pg.HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2 (or psycopg 3)"), exception=str(pg.PSYCOPG2_IMPORT_ERROR))
    try:
        result = pg.inspect(module.params)
    except pg.DB_ERROR as exc:
        module.fail_json(msg="PostgreSQL inspection failed: %s" % str(exc).strip())
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
