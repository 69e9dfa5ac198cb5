"""Backup faults, injected for real.

Against the running lab (db, backup): cut the off-site host off the network while WAL is being archived;
PostgreSQL keeps serving, WAL queues, and after reconnecting the archive catches up with no gap.

Against a pair of throwaway containers of this module (a database host and a repository host whose repository
is a 128 MiB tmpfs), set up by the real fuhosp.ops.pg_backup role: a byte flipped in a repository file makes
`verify` fail naming the file; filling the repository during a backup fails it with a clear error while the
earlier backup still verifies; and PITR brings back rows written before the target and none after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LAB_HOME = os.environ.get("HOSPOPS_HOME") or str(Path.home() / ".local" / "state" / "hospops")
NET = "hospops-lab"


def sh(*argv: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} failed rc={proc.returncode}: {proc.stdout}\n{proc.stderr}")
    return proc


def pexec(container: str, *argv: str, user: str | None = None, timeout: float = 120,
          check: bool = False) -> subprocess.CompletedProcess:
    return sh("podman", "exec", *(["--user", user] if user else []), container, *argv, timeout=timeout, check=check)


def psql(container: str, sql: str, db: str = "hospital", timeout: float = 30) -> str:
    return pexec(container, "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql, user="postgres",
                 timeout=timeout, check=True).stdout.strip()


def running(container: str) -> bool:
    p = sh("podman", "inspect", "-f", "{{.State.Running}}", container)
    return p.returncode == 0 and p.stdout.strip() == "true"


def ansible_env() -> dict[str, str]:
    return {**os.environ, "HOSPOPS_HOME": LAB_HOME, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"), "PATH": f"{BIN}:{os.environ['PATH']}"}


def module_facts(inventory: str, host: str, args: str, user: str = "postgres") -> dict:
    """Run fuhosp.ops.pgbackrest_info ad hoc and return its result."""
    env = {**ansible_env(), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "json"}
    p = subprocess.run([str(BIN / "ansible"), host, "-i", inventory, "-b", "--become-user", user,
                        "-m", "fuhosp.ops.pgbackrest_info", "-a", args], capture_output=True, text=True,
                       timeout=120, env=env, cwd=REPO)
    doc = json.loads(p.stdout[p.stdout.index("{"):])
    return doc["plays"][0]["tasks"][0]["hosts"][host]


# ---------------------------------------------------------------------------------------------------- the lab
@pytest.fixture(scope="module")
def lab():
    if not (running("hospops-db") and running("hospops-backup")):
        pytest.skip("the lab is not up (hospops-db, hospops-backup): run `hospops lab up`")
    info = pexec("hospops-backup", "pgbackrest", "--stanza=hospital", "--output=json", "info", user="pgbackrest")
    if info.returncode != 0 or json.loads(info.stdout)[0]["status"]["code"] != 0:
        p = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventories/lab", "playbooks/backup_setup.yml"],
                           cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout[-3000:]
    return str(REPO / "inventories" / "lab")


def _archived_segments(container: str) -> list[str]:
    out = pexec(container, "bash", "-c", "ls /var/lib/pgbackrest/archive/hospital/*/*/ | grep -E '^[0-9A-F]{24}-'",
                check=True).stdout
    return sorted({line[:24] for line in out.split()})


def _no_gap(names: list[str]) -> list[str]:
    """Segment names missing between the first and the last archived one (on the newest timeline)."""
    tli = max(n[:8] for n in names)
    segs = sorted(int(n[8:16], 16) * 256 + int(n[16:], 16) for n in names if n[:8] == tli)
    return [f"{tli}{s // 256:08X}{s % 256:08X}" for s in range(segs[0], segs[-1] + 1) if s not in set(segs)]


def test_backup_host_cut_off_wal_queues_then_catches_up_without_gap(lab):
    psql("hospops-db", "CREATE TABLE IF NOT EXISTS fault_rows (id bigserial PRIMARY KEY, note text, at timestamptz DEFAULT now())")
    pexec("hospops-db", "pgbackrest", "--stanza=hospital", "check", user="postgres", check=True)
    before = module_facts(lab, "db", "stanza=hospital")["archiver"]
    assert before["lag_segments"] == 0 and before["ready_count"] == 0, before
    sh("podman", "network", "disconnect", NET, "hospops-backup", check=True)
    try:
        for i in range(3):                         # three full segments that cannot be archived
            t0 = time.monotonic()
            psql("hospops-db", f"INSERT INTO fault_rows (note) VALUES ('cut {i}'); SELECT pg_switch_wal()")
            assert time.monotonic() - t0 < 5, "PostgreSQL stalled while the backup host was away"
        deadline = time.monotonic() + 60
        while True:
            cut = module_facts(lab, "db", "stanza=hospital query_info=false")["archiver"]
            if cut["ready_count"] >= 2 and (cut["lag_segments"] or 0) >= 2:
                break
            assert time.monotonic() < deadline, f"no WAL queued while cut off: {cut}"
            time.sleep(3)
        assert psql("hospops-db", "SELECT count(*) FROM fault_rows WHERE note LIKE 'cut %'") != "0"
        assert cut["lag_seconds"] is not None and cut["lag_seconds"] > 0
    finally:
        sh("podman", "network", "connect", "--alias", "backup", NET, "hospops-backup", check=True)
    psql("hospops-db", "INSERT INTO fault_rows (note) VALUES ('back'); SELECT pg_switch_wal()")   # wakes the archiver
    deadline = time.monotonic() + 150
    while True:
        after = module_facts(lab, "db", "stanza=hospital query_info=false")["archiver"]
        if after["ready_count"] == 0 and after["lag_segments"] == 0:
            break
        assert time.monotonic() < deadline, f"the archive did not catch up: {after}"
        time.sleep(5)
    pexec("hospops-db", "pgbackrest", "--stanza=hospital", "check", user="postgres", check=True)
    assert _no_gap(_archived_segments("hospops-backup")) == []
    # Ansible still reaches the backup host through its published port
    assert sh("ssh", "-p", "42217", "-i", f"{LAB_HOME}/lab/ssh/id_ed25519", "-o", "BatchMode=yes",
              "-o", f"UserKnownHostsFile={LAB_HOME}/lab/ssh/known_hosts",
              "root@127.0.0.1", "true", timeout=30).returncode == 0


# ------------------------------------------------------------------------- a pair with a small repository
PAIR_DB, PAIR_REPO = "hospops-bkfault-db", "hospops-bkfault-repo"
PLAYBOOK = textwrap.dedent("""\
    - name: A database host with a cluster
      hosts: pair_db
      gather_facts: false
      tasks:
        - name: Create the cluster
          ansible.builtin.command:
            argv: [pg_createcluster, --locale, C.UTF-8, "15", main, --start, --, --data-checksums]
            creates: /etc/postgresql/15/main/postgresql.conf
        - name: Set up backups
          ansible.builtin.include_role:
            name: fuhosp.ops.pg_backup
          vars:
            pg_backup_repo_host: pair_repo
            pg_backup_repo_address: %(repo)s
            pg_backup_db_address: %(db)s
            pg_backup_cipher_pass: FaultTestOnlyPassphrase0123456789
            pg_backup_schedule: {}
            pg_backup_archive_timeout: 10
        - name: Database and a first full backup
          ansible.builtin.shell: createdb hospital && pgbackrest --stanza=hospital --log-level-console=warn check
          become: true
          become_user: postgres
          changed_when: true
        - name: Full backup
          ansible.builtin.include_role:
            name: fuhosp.ops.pg_backup
            tasks_from: backup
          vars:
            pg_backup_repo_host: pair_repo
            pg_backup_type: full
    """) % {"repo": PAIR_REPO, "db": PAIR_DB}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if sh("podman", "image", "exists", "localhost/hospops-lab:bookworm").returncode != 0:
        pytest.skip("the lab image localhost/hospops-lab:bookworm is not built: run `hospops lab up`")
    if sh("podman", "network", "exists", NET).returncode != 0:
        pytest.skip("the lab network is not up: run `hospops lab up`")
    work = tmp_path_factory.mktemp("pair")
    for name in (PAIR_DB, PAIR_REPO):
        sh("podman", "rm", "-f", name)
    try:
        sh("podman", "run", "-d", "--name", PAIR_DB, "--hostname", PAIR_DB, "--network", NET, "--systemd=always",
           "localhost/hospops-lab:bookworm", "/sbin/init", check=True)
        sh("podman", "run", "-d", "--name", PAIR_REPO, "--hostname", PAIR_REPO, "--network", NET, "--systemd=always",
           "--mount", "type=tmpfs,destination=/var/lib/pgbackrest,tmpfs-size=128m,tmpfs-mode=0750",
           "localhost/hospops-lab:bookworm", "/sbin/init", check=True)
        for name in (PAIR_DB, PAIR_REPO):
            pexec(name, "systemctl", "is-system-running", "--wait", timeout=60)
        (work / "inventory.yml").write_text(json.dumps({"all": {"hosts": {
            "pair_db": {"ansible_connection": "containers.podman.podman", "ansible_host": PAIR_DB},
            "pair_repo": {"ansible_connection": "containers.podman.podman", "ansible_host": PAIR_REPO}}}}))
        (work / "setup.yml").write_text(PLAYBOOK)
        p = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(work / "inventory.yml"), str(work / "setup.yml")],
                           cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stdout[-4000:]
        yield str(work / "inventory.yml")
    finally:
        for name in (PAIR_DB, PAIR_REPO):
            sh("podman", "rm", "-f", name)


def pair_backrest(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return pexec(PAIR_REPO, "pgbackrest", "--stanza=hospital", *args, user="pgbackrest", timeout=timeout)


def pair_labels() -> list[str]:
    info = json.loads(pair_backrest("--output=json", "info").stdout)
    return [b["label"] for b in info[0]["backup"]]


def _verified(p: subprocess.CompletedProcess) -> bool:
    """pgBackRest 2.45 verify prints a report only when something is wrong, and exits 0 either way."""
    return p.returncode == 0 and "status: error" not in p.stdout and "invalid" not in p.stdout


def test_flipped_byte_fails_verify_naming_the_file(pair):
    assert _verified(pair_backrest("verify"))
    label = pair_labels()[-1]
    target = pexec(PAIR_REPO, "bash", "-c",
                   f"ls -S /var/lib/pgbackrest/backup/hospital/{label}/pg_data/base/*/* | head -1", check=True).stdout.strip()
    flip = ("import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); i=len(b)//2; orig=b[i]; b[i]^=0xFF;"
            " open(p,'wb').write(b); print(i, orig)")
    pos, orig = pexec(PAIR_REPO, "python3", "-c", flip, target, check=True).stdout.split()
    try:
        bad = pair_backrest("verify")
        out = bad.stdout + bad.stderr
        # pgBackRest 2.45 exits 0 here; its report (which pg_backup's verify entry point reads) says error
        assert "status: error" in out and f"backup: {label}, status: invalid" in out, out
        rel = target.split("/backup/hospital/", 1)[1]
        assert f"invalid checksum '{rel}'" in out, out
    finally:
        put = "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[int(sys.argv[2])]=int(sys.argv[3]); open(p,'wb').write(b)"
        pexec(PAIR_REPO, "python3", "-c", put, target, pos, orig, check=True)
    assert _verified(pair_backrest("verify"))


def test_pitr_rows_before_target_present_after_absent(pair):
    psql(PAIR_DB, "CREATE TABLE IF NOT EXISTS pitr (id serial, phase text)")
    psql(PAIR_DB, "INSERT INTO pitr (phase) VALUES ('before')")
    time.sleep(1.2)
    target = psql(PAIR_DB, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1.2)
    psql(PAIR_DB, "INSERT INTO pitr (phase) VALUES ('after')")
    pexec(PAIR_DB, "pgbackrest", "--stanza=hospital", "check", user="postgres", check=True)
    restore = ["pgbackrest", "--stanza=hospital", "--pg1-path=/var/tmp/pitr", "--type=time", f"--target={target}",
               "--target-action=promote", "restore"]
    pexec(PAIR_DB, *restore, user="postgres", check=True, timeout=300)
    start = ("set -e; : > /var/tmp/pitr/postgresql.conf; cp /etc/postgresql/15/main/pg_hba.conf /var/tmp/pitr/;"
             " /usr/lib/postgresql/15/bin/pg_ctl -D /var/tmp/pitr -w -t 60 -l /var/tmp/pitr.log"
             " -o '-c port=5499 -c unix_socket_directories=/tmp -c archive_mode=off' start")
    pexec(PAIR_DB, "bash", "-c", start, user="postgres", check=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            p = pexec(PAIR_DB, "psql", "-X", "-At", "-h", "/tmp", "-p", "5499", "-d", "hospital", "-c",
                      "SELECT pg_is_in_recovery(), string_agg(phase, ',' ORDER BY id) FROM pitr", user="postgres")
            if p.returncode == 0 and p.stdout.startswith("f|"):
                break
            assert time.monotonic() < deadline, p.stdout + p.stderr
            time.sleep(1)
        assert p.stdout.strip() == "f|before"
    finally:
        pexec(PAIR_DB, "bash", "-c", "/usr/lib/postgresql/15/bin/pg_ctl -D /var/tmp/pitr -m fast stop; rm -rf /var/tmp/pitr",
              user="postgres")


def test_repository_full_fails_backup_clearly_earlier_backup_verifies(pair):
    good = pair_labels()
    assert good
    space = module_facts(pair, "pair_repo", "query_info=false query_archiver=false repo_path=/var/lib/pgbackrest",
                         user="pgbackrest")["repo"]
    assert space["total_bytes"] <= 128 * 1024 * 1024
    # 80 MiB of incompressible rows: their WAL still fits in the repository, a second copy in a backup does not
    psql(PAIR_DB, "CREATE TABLE IF NOT EXISTS ballast (b bytea)")
    psql(PAIR_DB, "ALTER TABLE ballast ALTER COLUMN b SET STORAGE EXTERNAL")
    psql(PAIR_DB, "INSERT INTO ballast SELECT decode(string_agg(md5(random()::text || g || r), ''), 'hex')"
                  " FROM generate_series(1, 1280) r, generate_series(1, 4096) g GROUP BY r", timeout=300)
    pexec(PAIR_DB, "pgbackrest", "--stanza=hospital", "check", user="postgres", check=True, timeout=300)
    full = pair_backrest("--type=full", "backup", timeout=600)
    assert full.returncode != 0, "a backup larger than the repository succeeded"
    text = full.stdout + full.stderr
    assert "No space left on device" in text or "ENOSPC" in text, text
    print("backup failed with:", [line for line in text.splitlines() if "ERROR" in line][:3])
    assert pair_labels() == good, "the failed backup was listed as good"
    for label in good:
        v = pair_backrest(f"--set={label}", "verify")
        assert _verified(v), v.stdout + v.stderr
