#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: pg_maintain
short_description: Rebuild bloated indexes concurrently and vacuum tables with many dead tuples
version_added: 0.1.0
description:
  - Index and storage maintenance of contract 5.2 (索引维护, 存储空间维护).
  - Decides first, with the same estimates as M(fuhosp.ops.pg_inspect), then runs C(VACUUM (ANALYZE)) on tables
    whose dead tuples are over the threshold and C(REINDEX INDEX CONCURRENTLY) on B-tree indexes whose estimated
    bloat is over the threshold (and whose size is over a minimum). Neither blocks reads or writes of the services.
  - Returns each action with the bytes before and after and what it freed. A second run finds nothing to do.
author:
  - fuhosp.ops contributors (@fuhosp)
options:
  db:
    description: Database to connect to for the list of databases.
    type: str
    default: postgres
    version_added: 0.1.0
  databases:
    description: Databases to maintain; all but C(postgres) and templates when empty.
    type: list
    elements: str
    default: []
    version_added: 0.1.0
  login_user:
    description: Role to connect as (the owner of the objects or a superuser).
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
    description: Statement timeout of the maintenance sessions (0 for none).
    type: int
    default: 0
    version_added: 0.1.0
  vacuum:
    description: Vacuum tables over the dead-tuple threshold.
    type: bool
    default: true
    version_added: 0.1.0
  reindex:
    description: Rebuild indexes over the bloat threshold.
    type: bool
    default: true
    version_added: 0.1.0
  thresholds:
    description: Thresholds overriding the defaults (C(index_bloat_pct), C(index_bloat_min_bytes), C(dead_tuple_pct), C(dead_tuple_min)).
    type: dict
    default: {}
    version_added: 0.1.0
attributes:
  check_mode:
    support: full
    description: Reports the actions it would take and their current sizes, and runs none of them.
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
- name: Maintain indexes and tables
  fuhosp.ops.pg_maintain:
    databases: [hospital]
    thresholds: {index_bloat_pct: 30, dead_tuple_pct: 20}
  become: true
  become_user: postgres
  register: db_maintenance
"""

RETURN = r"""
actions:
  description: What was done (or would be, in check mode), with before_bytes, after_bytes, freed_bytes and seconds.
  returned: always
  type: list
  elements: dict
  sample: [{database: hospital, action: reindex, object: public.orders_ref_idx, before_bytes: 2269184, after_bytes: 245760, freed_bytes: 2023424}]
queries:
  description: The statements run (or that would be run).
  returned: always
  type: list
  elements: str
freed_bytes:
  description: Bytes freed by all actions.
  returned: always
  type: int
thresholds:
  description: The thresholds used.
  returned: always
  type: dict
check_mode:
  description: Whether the module ran in check mode (nothing was done).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.fuhosp.ops.plugins.module_utils import _inspect_pg as pg
from ansible_collections.fuhosp.ops.plugins.module_utils._inspect_pgmaint import maintain


def main():
    module = AnsibleModule(
        argument_spec=dict(
            db=dict(type="str", default="postgres"),
            databases=dict(type="list", elements="str", default=[]),
            login_user=dict(type="str", default="postgres"),
            login_password=dict(type="str", no_log=True),
            login_host=dict(type="str"),
            login_unix_socket=dict(type="str"),
            port=dict(type="int", default=5432),
            connect_timeout=dict(type="int", default=10),
            statement_timeout_ms=dict(type="int", default=0),
            vacuum=dict(type="bool", default=True),
            reindex=dict(type="bool", default=True),
            thresholds=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    if not pg.HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2 (or psycopg 3)"), exception=str(pg.PSYCOPG2_IMPORT_ERROR))
    try:
        result = maintain(module.params, module.check_mode)
    except pg.DB_ERROR as exc:
        module.fail_json(msg="PostgreSQL maintenance failed: %s" % str(exc).strip())
    module.exit_json(check_mode=module.check_mode, **result)


if __name__ == "__main__":
    main()
