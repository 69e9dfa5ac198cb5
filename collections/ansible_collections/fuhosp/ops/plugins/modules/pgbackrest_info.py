#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fuhosp.ops contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pgbackrest_info
short_description: Read the state of pgBackRest backups and PostgreSQL WAL archiving
version_added: 0.1.0
description:
  - Runs C(pgbackrest info --output=json) and a query of C(pg_stat_archiver) and returns structured facts for
    inspections and probes (contract clauses 5.2 and 5.6, full and log backups off-site).
  - Backups, for the stanza, the list of backups and the last full, differential and incremental backup with their
    age in seconds, the repository status and the oldest and newest WAL in the archive.
  - WAL archiving, how far archiving is behind, not only whether it failed. It compares
    C(pg_stat_archiver.last_archived_wal) with the WAL file being written now (C(pg_walfile_name(pg_current_wal_lsn())))
    and counts the C(.ready) files PostgreSQL still waits to archive, in segments, bytes and seconds.
  - Repository space, free and total bytes of the file system holding O(repo_path), when it is given (run the module on
    the repository host for that).
  - Read-only, it changes nothing, also outside check mode. Run it as a user that can read the pgBackRest
    configuration and connect to PostgreSQL (C(postgres) on a database host, the repository user on the repository
    host).
options:
  stanza:
    description: The pgBackRest stanza.
    type: str
    default: hospital
    version_added: 0.1.0
  config:
    description: pgBackRest configuration file (default, pgBackRest's own, C(/etc/pgbackrest/pgbackrest.conf)).
    type: path
    version_added: 0.1.0
  pgbackrest_bin:
    description: The pgBackRest executable.
    type: path
    default: pgbackrest
    version_added: 0.1.0
  query_info:
    description: Run C(pgbackrest info) and return RV(backup).
    type: bool
    default: true
    version_added: 0.1.0
  query_archiver:
    description: Query PostgreSQL's archiver statistics on this host with C(psql) and return RV(archiver).
    type: bool
    default: true
    version_added: 0.1.0
  psql_bin:
    description: The C(psql) executable.
    type: path
    default: psql
    version_added: 0.1.0
  db:
    description: Database to connect to for the archiver query.
    type: str
    default: postgres
    version_added: 0.1.0
  port:
    description: PostgreSQL port.
    type: int
    default: 5432
    version_added: 0.1.0
  host:
    description: PostgreSQL host or socket directory (default, the local socket).
    type: str
    version_added: 0.1.0
  repo_path:
    description: A path on this host inside the repository; its file system's free space is returned as RV(repo).
    type: path
    version_added: 0.1.0
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same commands in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs on the database or repository host (POSIX, Python 3.6 or later), no Python library needed.
notes:
  - The logic and its table-driven unit tests are in C(plugins/module_utils/_pgbackrest.py) and
    C(tests/unit/test_pgbackrest_info.py) of the repository.
  - The archiver query needs PostgreSQL 12 or later and the C(pg_monitor) role or superuser (for C(pg_ls_archive_statusdir)).
  - Tested with pgBackRest 2.45 and PostgreSQL 15.
seealso:
  - name: pgBackRest command reference, info
    description: The JSON printed by C(pgbackrest info --output=json).
    link: https://pgbackrest.org/command.html#command-info
  - name: PostgreSQL, pg_stat_archiver
    description: The archiver statistics view.
    link: https://www.postgresql.org/docs/15/monitoring-stats.html#MONITORING-PG-STAT-ARCHIVER-VIEW
author:
  - fuhosp.ops contributors (@fuhosp)
'''

EXAMPLES = r'''
- name: Read backups and WAL archiving on the database host
  fuhosp.ops.pgbackrest_info:
    stanza: hospital
  become: true
  become_user: postgres
  register: backups

- name: Alert when the last full backup is older than eight days or archiving is more than two segments behind
  ansible.builtin.assert:
    that:
      - backups.backup.last_full_age_seconds < 8 * 86400
      - backups.archiver.lag_segments is not none and backups.archiver.lag_segments <= 2

- name: Free space of the repository, on the repository host
  fuhosp.ops.pgbackrest_info:
    query_archiver: false
    repo_path: /var/lib/pgbackrest
  become: true
  become_user: pgbackrest
  register: repo
'''

RETURN = r'''
backup:
  description: The stanza's backups, from C(pgbackrest info).
  returned: when O(query_info=true)
  type: dict
  contains:
    ok:
      description: The stanza status code is 0 (C(ok)).
      type: bool
    status:
      description: Status code and message of the stanza, and whether a backup is running.
      type: dict
    cipher:
      description: Repository cipher (C(aes-256-cbc) or C(none)).
      type: str
    backup_count:
      description: Number of backups in the repository.
      type: int
    backups:
      description: Every backup, oldest first, with C(label), C(type), C(prior), C(start), C(stop) (epoch seconds),
        C(age_seconds), C(size), C(repo_size), C(lsn_start), C(lsn_stop), C(wal_start), C(wal_stop).
      type: list
      elements: dict
    last_backup:
      description: The newest backup of any type, or null.
      type: dict
    last_full:
      description: The newest full backup, or null.
      type: dict
    last_diff:
      description: The newest differential backup, or null.
      type: dict
    last_incr:
      description: The newest incremental backup, or null.
      type: dict
    last_full_age_seconds:
      description: Seconds since the newest full backup ended, or null when there is none.
      type: int
    last_diff_age_seconds:
      description: Seconds since the newest differential backup ended, or null when there is none.
      type: int
    archive:
      description: WAL ranges in the archive per database id (C(id), C(min), C(max)).
      type: list
      elements: dict
  sample:
    ok: true
    cipher: aes-256-cbc
    backup_count: 3
    last_full_age_seconds: 3600
    last_full: {label: 20261125-101500F, type: full, age_seconds: 3600}
archiver:
  description: WAL archiving on this PostgreSQL host.
  returned: when O(query_archiver=true)
  type: dict
  contains:
    archive_mode:
      description: The C(archive_mode) setting.
      type: str
    failing:
      description: The last archive attempt failed (the last failure is newer than the last success).
      type: bool
    failed_count:
      description: Failed archive attempts since the statistics were reset.
      type: int
    last_archived_wal:
      description: The last WAL file archived.
      type: str
    last_archived_time:
      description: When it was archived (ISO 8601).
      type: str
    current_wal:
      description: The WAL file being written now (null on a standby).
      type: str
    ready_count:
      description: WAL files PostgreSQL waits to archive (C(.ready) files).
      type: int
    lag_segments:
      description: Completed WAL segments between the last archived one and the current one; null when it cannot be
        told (nothing archived yet, or a timeline change).
      type: int
    lag_bytes:
      description: RV(archiver.lag_segments) times the WAL segment size.
      type: int
    seconds_since_last_archive:
      description: Seconds since the last successful archive.
      type: float
    lag_seconds:
      description: 0 when no WAL waits to be archived, else the seconds since the last successful archive (how old the
        oldest WAL at risk is, at most).
      type: float
  sample:
    archive_mode: "on"
    failing: false
    last_archived_wal: 00000001000000000000000A
    current_wal: 00000001000000000000000B
    ready_count: 0
    lag_segments: 0
    lag_seconds: 0.0
repo:
  description: Space on the file system holding O(repo_path).
  returned: when O(repo_path) is given
  type: dict
  contains:
    path:
      description: The path asked about.
      type: str
    free_bytes:
      description: Bytes available to unprivileged users.
      type: int
    total_bytes:
      description: Size of the file system.
      type: int
    used_percent:
      description: Percentage used.
      type: float
commands:
  description: The commands run, as argument lists.
  returned: always
  type: list
  elements: list
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fuhosp.ops.plugins.module_utils._pgbackrest import CommandError, collect


def main():
    module = AnsibleModule(
        argument_spec=dict(
            stanza=dict(type='str', default='hospital'),
            config=dict(type='path'),
            pgbackrest_bin=dict(type='path', default='pgbackrest'),
            query_info=dict(type='bool', default=True),
            query_archiver=dict(type='bool', default=True),
            psql_bin=dict(type='path', default='psql'),
            db=dict(type='str', default='postgres'),
            port=dict(type='int', default=5432),
            host=dict(type='str'),
            repo_path=dict(type='path'),
        ),
        supports_check_mode=True,
    )

    def run(argv):
        return module.run_command(argv, environ_update={'LC_ALL': 'C'})

    try:
        facts, commands = collect(run, module.params)
    except CommandError as exc:
        module.fail_json(msg=exc.msg, cmd=exc.argv, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr)
    except OSError as exc:
        module.fail_json(msg='cannot read the repository path: %s' % exc)
    module.exit_json(changed=False, commands=commands, **facts)


if __name__ == '__main__':
    main()
