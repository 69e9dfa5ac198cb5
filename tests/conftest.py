"""Shared fixtures.

* Every test gets its own ``HOSPOPS_HOME`` (a temporary directory) and no ``HOSPOPS_STORE_URL``.
* ``pg_server``: a throwaway PostgreSQL 15 server of the test session's own (initdb + postgres from
  /usr/lib/postgresql/15/bin, as the ``postgres`` user when run as root, on a free loopback port),
  stopped and removed at teardown.
* ``store``: parametrised over ``sqlite`` and ``postgresql`` (marked ``pg``); each test gets a fresh,
  migrated database. ``store_url`` gives the URL, for tests that open more connections.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("HOSPOPS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))

# Ansible's collection finder first, before any test module imports ansible_collections.*: a plain
# namespace import followed by the finder (hospops.inventory installs it) breaks later plugin imports.
from hospops._collection import ensure_collection_finder  # noqa: E402

ensure_collection_finder()


@pytest.fixture(autouse=True)
def _hospops_home(tmp_path, monkeypatch):
    home = tmp_path / "hospops-home"
    home.mkdir()
    monkeypatch.setenv("HOSPOPS_HOME", str(home))
    monkeypatch.delenv("HOSPOPS_STORE_URL", raising=False)
    monkeypatch.delenv("HOSPOPS_INVENTORY", raising=False)
    return home


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hospops-pg-"))
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self._n = itertools.count()
        self._db = ""
        self.as_root = os.geteuid() == 0
        self.user = "postgres"

    def _cmd(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self.as_root else list(argv)

    def start(self) -> None:
        data, sock = self.root / "data", self.root / "sock"
        sock.mkdir()
        self.root.chmod(0o700)
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            for p in (self.root, sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        subprocess.run(self._cmd(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", self.user,
                                 "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"),
                       check=True, capture_output=True, text=True)
        self.proc = subprocess.Popen(
            self._cmd(str(PG_BIN / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(sock),
                      "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                      "-c", "full_page_writes=off", "-c", "max_connections=50"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    raise RuntimeError(f"PostgreSQL did not start: {err[-2000:]}")
                time.sleep(0.1)

    def url(self, db: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        """A migrated database with empty tables: one database per session, emptied per test
        (TRUNCATE is much faster than CREATE DATABASE and migrations for every test)."""
        import psycopg

        if not self._db:
            with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                conn.execute('CREATE DATABASE "hospops_test"')
            self._db = self.url("hospops_test")
        from hospops.store import open_store

        open_store(self._db).close()  # migrations added since the last test
        with psycopg.connect(self._db, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")]
            if tables:
                conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
        return self._db

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            # SIGINT = fast shutdown, sent to the postmaster itself (named in its pid file: runuser
            # may stand between us and it), then wait for the process we started.
            try:
                pid = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = self.proc.pid
            os.kill(pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    if not (PG_BIN / "postgres").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN} (apt-get install postgresql-15)")
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture()
def store(store_url):
    from hospops.store import open_store

    s = open_store(store_url)
    yield s
    s.close()


# -- a small world for approvals and the gate: local hosts, approvers with fresh keys, a policy -----

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV") or REPO / ".venv") / "bin"

POLICY_YML = """\
hospops_change_policy:
  timezone: Asia/Shanghai
  default_quorum: 1
  max_window_hours: 72
  actions:
    restart: {classes: [approval, break-glass]}
    upgrade: {classes: [approval], quorum: 2, require_organisations: [hospital-it]}
    collect_logs: {classes: [pre-approved]}
  break_glass: {incident_levels: [L1], approval_due_hours: 24}
"""

PLAY_YML = """\
- name: Restart under a change
  hosts: "{{ gate_hosts | default('web') }}"
  gather_facts: false
  serial: "{{ gate_serial | default(0) }}"
  tasks:
    - name: Verify the hospital's approval for this change
      fuhosp.ops.change_gate:
        action: "{{ gate_action | default('restart') }}"
    - name: Do the change (leave a mark per host)
      ansible.builtin.copy:
        dest: "{{ mark_dir }}/{{ inventory_hostname }}"
        content: "done\\n"
        mode: "0600"
"""


class ApprovalLab:
    """Inventory with local hosts web=[h1,h2], db=[d1] and approvers alice (hospital-it, *),
    bob (department, restart/upgrade), carol (supplier, collect_logs)."""

    APPROVERS = {"alice": ("hospital-it", ["*"]), "bob": ("department", ["restart", "upgrade"]),
                 "carol": ("supplier", ["collect_logs"])}

    def __init__(self, root: Path) -> None:
        from hospops.keys import ensure_keypair

        self.root = root
        self.keys = root / "keys"
        self.inventory = root / "inventory"
        self.marks = root / "marks"
        self.marks.mkdir(parents=True)
        gv = self.inventory / "group_vars" / "all"
        gv.mkdir(parents=True)
        py = VENV_BIN / "python"
        hosts = "\n".join(f"        {h}: {{ansible_connection: local, ansible_python_interpreter: {py}}}" for h in ("h1", "h2"))
        (self.inventory / "hosts.yml").write_text(
            "all:\n  children:\n    web:\n      hosts:\n" + hosts + "\n    db:\n      hosts:\n"
            f"        d1: {{ansible_connection: local, ansible_python_interpreter: {py}}}\n")
        lines = ["hospops_approvers:"]
        for name, (org, actions) in self.APPROVERS.items():
            pub = ensure_keypair(name, self.keys)
            lines.append(f"  - name: {name}\n    organisation: {org}\n    actions: {actions}\n"
                         f"    public_key: \"{{{{ lookup('ansible.builtin.file', '{pub}') }}}}\"")
        (gv / "approvers.yml").write_text("\n".join(lines) + "\n")
        (gv / "policy.yml").write_text(POLICY_YML)
        (gv / "marks.yml").write_text(f"mark_dir: {self.marks}\n")
        self.playbook = root / "restart.yml"
        self.playbook.write_text(PLAY_YML)

    def policy(self):
        from hospops import inventory, policy

        return policy.load(inventory.load(self.inventory))

    def key(self, name: str):
        from hospops.keys import load_private_key

        return load_private_key(self.keys / f"{name}.key")

    def marked(self) -> list[str]:
        return sorted(p.name for p in self.marks.iterdir())

    def playbook_run(self, *extra: str, ticket: Path | None = None, env: dict | None = None):
        """A real ``ansible-playbook`` run of the tiny play (by hand, as an operator would)."""
        argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), str(self.playbook), *extra]
        if ticket is not None:
            argv += ["-e", f"change_ticket={ticket}"]
        full_env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
                    "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_FORCE_COLOR": "0", **(env or {})}
        return subprocess.run(argv, capture_output=True, text=True, env=full_env, cwd=self.root, timeout=120)


@pytest.fixture()
def approval_lab(tmp_path) -> ApprovalLab:
    return ApprovalLab(tmp_path / "lab")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under `./run test` (HOSPOPS_REQUIRE_LAB=1) a lab test may not skip because the lab is down:
    that would turn a broken lab into a green run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and item.get_closest_marker("lab") and os.environ.get("HOSPOPS_REQUIRE_LAB") == "1":
        report.outcome = "failed"
        report.longrepr = f"lab test skipped while the lab is required: {report.longrepr}"
