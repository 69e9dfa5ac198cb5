"""The lab's stand-in apps (lab/apps): fake-data generators, release builder, and the app itself run
for real (as a subprocess, against a throwaway PostgreSQL 15 started by these tests)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "lab" / "apps"
sys.path.insert(0, str(APPS))

from hospapp import fakedata  # noqa: E402
from hospapp.config import ConfigError, load_config  # noqa: E402
from hospapp.migrate import MigrateError, plan  # noqa: E402

_spec = importlib.util.spec_from_file_location("hospapp_build_releases", APPS / "build_releases.py")
build_releases = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = build_releases
_spec.loader.exec_module(build_releases)

PG_BIN = Path(os.environ.get("HOSPAPP_PG_BIN", "/usr/lib/postgresql/15/bin"))
APP_PYTHON = os.environ.get("HOSPAPP_PYTHON", "/usr/bin/python3")  # Debian's, with python3-psycopg2
SEED = 4242


# --------------------------------------------------------------------------------------------------
# fake patient data
# --------------------------------------------------------------------------------------------------
def test_id_card_check_character_matches_gb11643():
    # The standard's worked example and a hand-computed one.
    assert fakedata.id_check_char("11010519491231002") == "X"
    assert fakedata.make_id_card("110105", date(1949, 12, 31), 2) == "11010519491231002X"
    assert fakedata.id_card_valid("11010519491231002X")
    assert not fakedata.id_card_valid("110105194912310021")  # wrong check character
    assert not fakedata.id_card_valid("11010519491331002X")  # month 13
    assert not fakedata.id_card_valid("1101051949123100")  # too short


def test_luhn_known_values():
    assert fakedata.luhn_valid("79927398713")
    assert not fakedata.luhn_valid("79927398710")
    assert fakedata.luhn_check_digit("7992739871") == "3"
    assert fakedata.luhn_valid("4539578763621486")


def test_generated_patients_are_valid_and_deterministic():
    records = fakedata.patient_records(SEED, 200)
    assert records == fakedata.patient_records(SEED, 200)
    assert records[:10] == fakedata.patient_records(SEED, 10)
    assert records != fakedata.patient_records(SEED + 1, 200)
    for p in records:
        assert fakedata.id_card_valid(p.id_card), p
        assert p.id_card[6:14] == p.birth_date.replace("-", "")
        assert (int(p.id_card[16]) % 2 == 1) == (p.gender == "M")
        assert p.id_card[:6] in fakedata.AREA_CODES
        assert fakedata.luhn_valid(p.bank_card) and len(p.bank_card) in (16, 19), p
        assert p.bank_card[:6] in fakedata.CARD_BINS
        # A one-digit change must break the check digit (so a validator using it can't be fooled).
        flipped = p.bank_card[:-2] + str((int(p.bank_card[-2]) + 1) % 10) + p.bank_card[-1]
        assert not fakedata.luhn_valid(flipped)
        assert re.fullmatch(r"1[3-9]\d{9}", p.mobile)
        assert re.fullmatch(r"MRN\d{8}", p.mrn)
        assert re.fullmatch(r"BA20\d{8}", p.case_no)
        assert 2 <= len(p.name) <= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in p.name)
    assert len({p.id_card for p in records}) == len(records)


# --------------------------------------------------------------------------------------------------
# release builder
# --------------------------------------------------------------------------------------------------
def test_builder_is_deterministic_and_complete(tmp_path):
    started = time.monotonic()
    first = build_releases.build(tmp_path / "a")
    elapsed = time.monotonic() - started
    time.sleep(1.1)  # a builder that leaked wall-clock time into the archive would differ now
    second = build_releases.build(tmp_path / "b")
    assert elapsed < 2.0
    strip = [{k: v for k, v in e.items() if k != "changed"} for e in first]
    assert strip == [{k: v for k, v in e.items() if k != "changed"} for e in second]
    assert (tmp_path / "a" / "index.json").read_bytes() == (tmp_path / "b" / "index.json").read_bytes()

    index = json.loads((tmp_path / "a" / "index.json").read_text())
    got = {(e["service"], e["version"]) for e in index["releases"]}
    for service in ("portal", "ih", "waiting", "journey"):
        assert {(service, v) for v in ("1.0.0", "2.0.0")} <= got
    assert {("ih", "2.0.1-broken"), ("ih", "2.1.0-badmigration")} <= got

    for entry in index["releases"]:
        path = tmp_path / "a" / entry["file"]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert (tmp_path / "b" / entry["file"]).read_bytes() == data
        assert path.with_name(path.name + ".sha256").read_text() == f"{entry['sha256']}  {path.name}\n"
        assert data[4:8] == b"\0\0\0\0" and not data[3] & 0x08  # gzip header: mtime 0, no file name
        assert gzip.decompress(data)[257:262] == b"ustar"
        with tarfile.open(path) as tar:
            members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        top = f"hospapp-{entry['service']}-{entry['version']}"
        assert all(n == top or n.startswith(top + "/") for n in names)
        assert {m.mtime for m in members} == {build_releases.FIXED_MTIME}
        assert {(m.uid, m.gid) for m in members} == {(0, 0)}
        for needed in ("bin/hospapp", "bin/hospapp-migrate", "VERSION", "RELEASE.json",
                       "migrations/0001_init.up.sql", "lib/hospapp/app.py", "lib/hospapp/services/ih.py"):
            assert f"{top}/{needed}" in names
        modes = {m.name: m.mode for m in members}
        assert modes[f"{top}/bin/hospapp"] == 0o755 and modes[f"{top}/VERSION"] == 0o644
        ups = sorted(n for n in names if n.endswith(".up.sql"))
        assert len(ups) == entry["schema_required"]
        assert not any("__pycache__" in n for n in names)


def test_builder_rerun_changes_nothing(tmp_path):
    build_releases.build(tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    again = build_releases.build(tmp_path)
    assert not any(e["changed"] for e in again)
    assert stamps == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}


def test_builder_cli_default_layout(tmp_path):
    out = subprocess.run([sys.executable, str(APPS / "build_releases.py"), "--out", str(tmp_path),
                          "--service", "ih"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "ih" / "hospapp-ih-1.0.0.tar.gz").is_file()
    assert (tmp_path / "ih" / "hospapp-ih-2.0.1-broken.tar.gz.sha256").is_file()
    check = subprocess.run(["sha256sum", "-c", "hospapp-ih-2.0.0.tar.gz.sha256"], cwd=tmp_path / "ih",
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# --------------------------------------------------------------------------------------------------
# config and migration planning (pure functions)
# --------------------------------------------------------------------------------------------------
def _write_config(path: Path, **over) -> Path:
    cfg = {"service": "ih", "node": "ih1", "listen_host": "127.0.0.1", "listen_port": 8000,
           "db": {"host": "db", "port": 5432, "dbname": "hospital", "user": "app_ih", "password": "pw"},
           "log_file": str(path.parent / "ih.log")}
    cfg.update(over)
    path.write_text(json.dumps(cfg))
    return path


def test_config_validation(tmp_path):
    cfg = load_config(_write_config(tmp_path / "ok.json"))
    assert (cfg.service, cfg.listen_port, cfg.db.user, cfg.migrate_db.user) == ("ih", 8000, "app_ih", "app_ih")
    assert "pw" not in repr(cfg)
    cfg = load_config(_write_config(tmp_path / "owner.json", migrate_db={"user": "owner", "password": "o"}))
    assert (cfg.migrate_db.user, cfg.migrate_db.host, cfg.db.user) == ("owner", "db", "app_ih")
    for bad in ({"service": "pharmacy"}, {"listen_port": "8000"}, {"db": {"host": "db"}},
                {"activity_log_interval": -1}, {"log_level": "LOUD"}):
        with pytest.raises(ConfigError):
            load_config(_write_config(tmp_path / "bad.json", **bad))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path / "broken.json")


def test_migration_plan():
    avail = {1: {"name": "init", "up": 1, "down": 1}, 2: {"name": "x", "up": 1, "down": 1}}
    assert plan("up", 0, avail, None) == [1, 2]
    assert plan("up", 1, avail, None) == [2]
    assert plan("up", 2, avail, None) == []
    assert plan("up", 3, avail, None) == []  # database ahead of this release: nothing to do
    assert plan("up", 0, avail, 1) == [1]
    assert plan("down", 2, avail, None) == [2]
    assert plan("down", 2, avail, 0) == [2, 1]
    with pytest.raises(MigrateError):
        plan("up", 0, avail, 5)
    with pytest.raises(MigrateError):
        plan("down", 3, avail, 1)  # no down file for 3 in this release


def test_app_refuses_a_config_for_another_service(tmp_path):
    build_releases.build(tmp_path / "rel", services=("portal",))
    with tarfile.open(tmp_path / "rel" / "portal" / "hospapp-portal-1.0.0.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    cfg = _write_config(tmp_path / "ih.json")
    run = subprocess.run([sys.executable, str(tmp_path / "x" / "hospapp-portal-1.0.0" / "bin" / "hospapp"),
                          "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "for service 'portal'" in run.stderr


# --------------------------------------------------------------------------------------------------
# the app for real, against a throwaway PostgreSQL 15
# --------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prerequisite_missing() -> str | None:
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL 15 binaries not found in {PG_BIN} (apt-get install postgresql-15)"
    if not shutil.which(APP_PYTHON):
        return f"{APP_PYTHON} not found"
    if subprocess.run([APP_PYTHON, "-c", "import psycopg2"], capture_output=True).returncode:
        return f"{APP_PYTHON} cannot import psycopg2 (apt-get install python3-psycopg2)"
    return None


class Postgres:
    """initdb + pg_ctl in a temp dir (as the postgres user when running as root), loopback only."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hospapp-pg-"))
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str) -> None:
        out = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=60)
        if out.returncode:
            raise RuntimeError(f"{argv[0]} failed: {out.stdout}{out.stderr}")

    def start(self) -> None:
        # --no-locale without -E gives SQL_ASCII, like pg_createcluster under the lab image's C locale:
        # the app must still store and return Chinese text.
        self._run(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "--no-locale",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"),
                  "-w", "-t", "30", "-o", opts, "start")

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, statement: str, dbname: str = "postgres", args: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(host=str(self.dir), port=self.port, user="postgres", dbname=dbname,
                             client_encoding="UTF8", autocommit=True) as conn:
            cur = conn.execute(statement, args)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def pg():
    missing = _prerequisite_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: ./run setup (lab/host/prepare.sh) must install it")
        pytest.skip(missing)
    server = Postgres()
    try:
        server.start()
        for role in ("app_ih", "app_portal", "app_waiting", "app_journey", "owner_ih"):
            server.sql(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Every release, built and unpacked: releases[(service, version)] -> release directory."""
    base = tmp_path_factory.mktemp("releases")
    index = build_releases.build(base / "dist")
    out = {}
    for e in index:
        with tarfile.open(base / "dist" / e["file"]) as tar:
            tar.extractall(base / "unpacked", filter="data")
        out[(e["service"], e["version"])] = base / "unpacked" / e["top_dir"]
    return out


_db_counter = iter(range(1, 10_000))


@pytest.fixture
def database(pg):
    """A fresh database owned by the app's role, so tests do not share schema state."""
    name = f"hosp_{os.getpid()}_{next(_db_counter)}"
    pg.sql(f"CREATE DATABASE {name}")
    for role in ("app_ih", "app_portal", "app_waiting", "app_journey"):
        pg.sql(f"GRANT CREATE ON SCHEMA public TO {role}", dbname=name)
    return name


class AppSet:
    """Writes configs, runs hospapp / hospapp-migrate from unpacked releases, stops apps at the end."""

    def __init__(self, pg: Postgres, releases: dict, database: str, tmp: Path) -> None:
        self.pg, self.releases, self.database, self.tmp = pg, releases, database, tmp
        self.procs: list[subprocess.Popen] = []

    def config(self, service: str, node: str = "n1", **over) -> Path:
        cfg = {"service": service, "node": node, "listen_host": "127.0.0.1", "listen_port": _free_port(),
               "db": {"host": "127.0.0.1", "port": self.pg.port, "dbname": self.database,
                      "user": f"app_{service}", "password": f"pw-app_{service}"},
               "log_file": str(self.tmp / "log" / f"{service}-{node}.log"),
               "activity_log_interval": 0.2, "fake_seed": SEED}
        cfg.update(over)
        path = self.tmp / f"{service}-{node}-{len(list(self.tmp.glob('*.json')))}.json"
        path.write_text(json.dumps(cfg))
        return path

    def migrate(self, service: str, version: str, config: Path, *args: str) -> tuple[int, dict]:
        run = subprocess.run([APP_PYTHON, str(self.releases[(service, version)] / "bin" / "hospapp-migrate"),
                              "--config", str(config), *args], capture_output=True, text=True, timeout=60)
        return run.returncode, json.loads(run.stdout)

    def start(self, service: str, version: str, config: Path) -> str:
        cfg = json.loads(config.read_text())
        proc = subprocess.Popen([APP_PYTHON, str(self.releases[(service, version)] / "bin" / "hospapp"),
                                 "--config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                socket.create_connection(("127.0.0.1", cfg["listen_port"]), timeout=0.5).close()
                return f"http://127.0.0.1:{cfg['listen_port']}"
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{service} {version} did not listen within 15 s")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def apps(pg, releases, database, tmp_path):
    s = AppSet(pg, releases, database, tmp_path)
    yield s
    s.stop_all()


def http(method: str, url: str, body=None, raw: bytes | None = None) -> tuple[int, object]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, text, ctype = resp.status, resp.read().decode(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        status, text, ctype = err.code, err.read().decode(), err.headers.get("Content-Type", "")
    return status, json.loads(text) if ctype.startswith("application/json") else text


def _columns(pg: Postgres, db: str, table: str) -> set[str]:
    return {r[0] for r in pg.sql("SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                                 db, (table,))}


@pytest.mark.pg
def test_ih_v1_health_and_payment_round_trip(apps, pg, database):
    cfg = apps.config("ih", node="ih1")
    rc, status = apps.migrate("ih", "1.0.0", cfg, "status")
    assert rc == 0 and status["from"] == 0 and status["pending"] == [1]
    url = apps.start("ih", "1.0.0", cfg)
    code, body = http("GET", url + "/health")
    assert code == 503 and body["status"] == "error" and "hospapp-migrate" in body["reason"]

    rc, out = apps.migrate("ih", "1.0.0", cfg, "up", "--check")
    assert rc == 0 and out["changed"] and out["to"] == 1
    assert pg.sql("SELECT to_regclass('ih_payments')", database) == [(None,)]  # --check changed nothing
    rc, out = apps.migrate("ih", "1.0.0", cfg, "up")
    assert rc == 0 and out["changed"] and out["applied"] == ["0001_init.up"]
    rc, out = apps.migrate("ih", "1.0.0", cfg, "up")
    assert rc == 0 and not out["changed"] and "applied" not in out
    assert pg.sql("SELECT version FROM ih_schema", database) == [(1,)]

    code, body = http("GET", url + "/health")
    assert code == 200, body
    assert body | {"status": "ok", "service": "ih", "version": "1.0.0", "node": "ih1", "db": "ok", "schema": 1} == body

    code, paid = http("POST", url + "/api/payments",
                      {"amount_fen": 1500, "method": "scan", "order_ref": "ORD-1", "probe": True})
    assert code == 201 and paid["status"] == "recorded" and isinstance(paid["id"], int)
    rows = pg.sql("SELECT amount_fen, method, order_ref, probe, node FROM ih_payments WHERE id = %s",
                  database, (paid["id"],))
    assert rows == [(1500, "scan", "ORD-1", True, "ih1")]
    code, got = http("GET", f"{url}/api/payments/{paid['id']}")
    assert code == 200 and got["amount_fen"] == 1500 and got["order_ref"] == "ORD-1" and "channel_ref" not in got
    assert http("GET", url + "/api/payments/999999")[0] == 404

    for bad in ({"amount_fen": "15", "method": "scan", "order_ref": "x"},
                {"amount_fen": 0, "method": "scan", "order_ref": "x"},
                {"amount_fen": True, "method": "scan", "order_ref": "x"},
                {"amount_fen": 5, "method": "cash", "order_ref": "x"},
                {"amount_fen": 5, "method": "face"},
                {"amount_fen": 5, "method": "face", "order_ref": "x", "probe": "yes"}):
        code, err = http("POST", url + "/api/payments", bad)
        assert code == 400 and "error" in err, bad
    assert http("POST", url + "/api/payments", raw=b"{oops")[0] == 400
    assert http("GET", url + "/api/payments/abc")[0] == 400
    assert http("GET", url + "/nope")[0] == 404
    assert pg.sql("SELECT count(*) FROM ih_payments", database) == [(1,)]
    # Concurrent payments (ThreadingHTTPServer, one connection per request): every one is recorded.
    from concurrent.futures import ThreadPoolExecutor

    def pay(i: int) -> int:
        return http("POST", url + "/api/payments", {"amount_fen": 100 + i, "method": "face",
                                                    "order_ref": f"C{i}"})[0]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(pay, range(40))) == [201] * 40
    assert pg.sql("SELECT count(*), count(DISTINCT order_ref) FROM ih_payments WHERE order_ref LIKE 'C%%'",
                  database) == [(40, 40)]

    code, page = http("GET", url + "/")
    assert code == 200 and "互联网医院平台" in page and "1.0.0" in page and "ih1" in page
    code, metrics = http("GET", url + "/metrics?format=json")
    assert code == 200 and metrics["requests_total"] >= 52 and metrics["client_errors_total"] >= 9
    assert metrics["payments_recorded_total"] == 41
    code, text = http("GET", url + "/metrics")
    assert code == 200 and re.search(r"^hospapp_requests_total\{.*\} \d+$", text, re.M)


@pytest.mark.pg
def test_rolling_upgrade_v2_migration_up_and_down(apps, pg, database):
    cfg1, cfg2 = apps.config("ih", node="ih1"), apps.config("ih", node="ih2")
    assert apps.migrate("ih", "1.0.0", cfg1, "up")[0] == 0
    v1 = apps.start("ih", "1.0.0", cfg1)
    v2 = apps.start("ih", "2.0.0", cfg2)
    code, body = http("GET", v2 + "/health")
    assert code == 503 and body["schema"] == 1 and body["schema_required"] == 2

    rc, out = apps.migrate("ih", "2.0.0", cfg2, "up")
    assert rc == 0 and out["from"] == 1 and out["to"] == 2 and out["applied"] == ["0002_channel_ref.up"]
    assert "channel_ref" in _columns(pg, database, "ih_payments")
    # v1 code on the v2 schema (the middle of a rolling upgrade) still answers and records payments.
    assert http("GET", v1 + "/health")[0] == 200
    code, p1 = http("POST", v1 + "/api/payments", {"amount_fen": 100, "method": "face", "order_ref": "A"})
    assert code == 201
    code, body = http("GET", v2 + "/health")
    assert code == 200 and body["version"] == "2.0.0" and body["schema"] == 2
    code, p2 = http("POST", v2 + "/api/payments", {"amount_fen": 200, "method": "scan", "order_ref": "B"})
    assert code == 201 and p2["channel_ref"] == "WXQR-B"
    assert pg.sql("SELECT id, channel_ref FROM ih_payments ORDER BY id", database) == [(p1["id"], None),
                                                                                       (p2["id"], "WXQR-B")]
    # Rollback: the v2 release's down removes the column; v2 code then refuses (503), v1 is fine.
    rc, out = apps.migrate("ih", "2.0.0", cfg2, "down")
    assert rc == 0 and out["from"] == 2 and out["to"] == 1 and out["applied"] == ["0002_channel_ref.down"]
    assert "channel_ref" not in _columns(pg, database, "ih_payments")
    assert pg.sql("SELECT version FROM ih_schema", database) == [(1,)]
    assert pg.sql("SELECT count(*) FROM ih_payments", database) == [(2,)]
    assert http("GET", v2 + "/health")[0] == 503
    assert http("GET", v1 + "/health")[0] == 200
    # The v1 release cannot undo what it does not know; it says so instead of guessing.
    assert apps.migrate("ih", "2.0.0", cfg2, "up")[0] == 0
    rc, out = apps.migrate("ih", "1.0.0", cfg1, "down")
    assert rc == 2 and not out["ok"] and "no down migration" in out["error"]
    rc, out = apps.migrate("ih", "1.0.0", cfg1, "up")
    assert rc == 0 and not out["changed"] and "ahead" in out["note"]


@pytest.mark.pg
def test_broken_build_listens_but_fails(apps, database):
    cfg = apps.config("ih", node="ih1")
    assert apps.migrate("ih", "2.0.1-broken", cfg, "up")[0] == 0
    url = apps.start("ih", "2.0.1-broken", cfg)
    code, body = http("GET", url + "/health")
    assert code == 500 and body["status"] == "error" and body["version"] == "2.0.1-broken"
    code, body = http("POST", url + "/api/payments", {"amount_fen": 100, "method": "scan", "order_ref": "Z"})
    assert code == 500 and body["error"] == "internal error"
    assert http("GET", url + "/")[0] == 200
    log = Path(json.loads(cfg.read_text())["log_file"]).read_text(encoding="utf-8")
    assert re.search(r"^\S+ ERROR ih@ih1 .*POST /api/payments 500", log, re.M)
    assert "Traceback" in log and "BrokenBuildError" in log


@pytest.mark.pg
def test_bad_migration_leaves_the_database_as_it_was(apps, pg, database):
    cfg = apps.config("ih", node="ih1")
    assert apps.migrate("ih", "2.0.0", cfg, "up")[0] == 0
    before = _columns(pg, database, "ih_payments")
    indexes = pg.sql("SELECT indexname FROM pg_indexes WHERE tablename = 'ih_payments' ORDER BY 1", database)
    rc, out = apps.migrate("ih", "2.1.0-badmigration", cfg, "up")
    assert rc == 1 and not out["ok"] and out["failed"] == "0003_refund_state.up.sql"
    assert "refund_requested_at" in out["error"] and out["sqlstate"] == "42703"
    assert pg.sql("SELECT version FROM ih_schema", database) == [(2,)]
    assert _columns(pg, database, "ih_payments") == before and "refund_state" not in before
    assert pg.sql("SELECT indexname FROM pg_indexes WHERE tablename = 'ih_payments' ORDER BY 1",
                  database) == indexes
    url = apps.start("ih", "2.1.0-badmigration", cfg)
    code, body = http("GET", url + "/health")
    assert code == 503 and "older than required 3" in body["reason"]
    # Also from scratch: 0001 and 0002 are not kept when 0003 fails (one transaction per run).
    fresh = f"{database}_b"
    pg.sql(f"CREATE DATABASE {fresh} OWNER app_ih")
    cfg_b = apps.config("ih", node="ih1", db={**json.loads(cfg.read_text())["db"], "dbname": fresh})
    assert apps.migrate("ih", "2.1.0-badmigration", cfg_b, "up")[0] == 1
    assert pg.sql("SELECT to_regclass('ih_payments'), to_regclass('ih_schema')", fresh) == [(None, None)]


@pytest.mark.pg
def test_logs_hold_the_planted_fake_patient_data(apps, database):
    cfg = apps.config("ih", node="ih1")
    assert apps.migrate("ih", "1.0.0", cfg, "up")[0] == 0
    url = apps.start("ih", "1.0.0", cfg)
    for i in range(3):
        assert http("POST", url + "/api/payments", {"amount_fen": 10 + i, "method": "scan",
                                                    "order_ref": f"L{i}"})[0] == 201
    time.sleep(0.7)  # the activity thread logs every 0.2 s here
    log_path = Path(json.loads(cfg.read_text())["log_file"])
    assert log_path.stat().st_mode & 0o777 == 0o640
    log = log_path.read_text(encoding="utf-8")
    lines = log.splitlines()
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 (DEBUG|INFO|WARNING|ERROR) ih@ih1 ", ln)
               for ln in lines), lines[:3]
    assert sum("patient activity:" in ln for ln in lines) >= 2
    assert sum("POST /api/payments 201" in ln for ln in lines) == 3
    planted = fakedata.patient_records(SEED, fakedata.POOL_SIZE)
    seen = [p for p in planted if p.id_card in log]
    assert len(seen) >= 4
    for p in seen:
        for value in p.values():
            assert value in log, value
        assert f"患者 {p.name}" in log and f"病案号 {p.case_no}" in log
    # Everything that looks like an ID-card number or bank card is a valid one (detectors can rely on it).
    assert all(fakedata.id_card_valid(m) for m in fakedata.ID_CARD_RE.findall(log))
    assert all(fakedata.luhn_valid(m) for m in re.findall(r"银行卡 (\d+)", log))
    assert re.search(r"手机 1[3-9]\d{9}\b", log) and fakedata.MRN_RE.search(log)
    assert "pw-app_ih" not in log


@pytest.mark.pg
def test_portal_waiting_journey_round_trips(apps, pg, database):
    urls = {}
    for service in ("portal", "waiting", "journey"):
        cfg = apps.config(service, node=service)
        rc, out = apps.migrate(service, "2.0.0", cfg, "up")
        assert rc == 0 and out["to"] == 2
        urls[service] = apps.start(service, "2.0.0", cfg)
        code, body = http("GET", urls[service] + "/health")
        assert code == 200 and body["service"] == service and body["schema"] == 2

    portal = urls["portal"]
    code, booked = http("POST", portal + "/api/appointments",
                        {"department": "心内科", "slot": "2026-12-01T09:30+08:00", "channel": "wechat"})
    assert code == 201 and booked["status"] == "booked"
    code, listing = http("GET", portal + "/api/appointments")
    assert code == 200 and listing["appointments"][0]["id"] == booked["id"]
    assert listing["appointments"][0]["channel"] == "wechat"
    assert http("POST", portal + "/api/appointments", {"department": "心内科", "slot": "tomorrow"})[0] == 400
    assert pg.sql("SELECT department, channel FROM portal_appointments", database) == [("心内科", "wechat")]

    waiting = urls["waiting"]
    tickets = [http("POST", waiting + "/api/queue", {"action": "enqueue", "department": "儿科"})[1]
               for _ in range(2)]
    assert all(t["status"] == "waiting" and t["ticket"].startswith("C") for t in tickets)
    code, queue = http("GET", waiting + "/api/queue?department=儿科".replace("儿科", "%E5%84%BF%E7%A7%91"))
    assert code == 200 and queue["waiting"] == 2
    code, called = http("POST", waiting + "/api/queue", {"screen_id": "hall-2"})
    assert code == 200 and called["called"]["id"] == tickets[0]["id"] and called["called"]["screen_id"] == "hall-2"
    assert http("GET", waiting + "/api/queue")[1]["waiting"] == 1
    assert http("POST", waiting + "/api/queue", {"action": "dance"})[0] == 400

    journey = urls["journey"]
    for stage in ("registration", "triage", "consultation"):
        assert http("POST", journey + "/api/journey/events", {"visit_id": "V1", "stage": stage})[0] == 201
    code, visit = http("GET", journey + "/api/journey/V1")
    assert code == 200 and [e["stage"] for e in visit["events"]] == ["registration", "triage", "consultation"]
    assert visit["current_stage"] == "consultation" and visit["events"][0]["source"] == "his"
    assert http("GET", journey + "/api/journey/V2")[0] == 404
    assert http("POST", journey + "/api/journey/events", {"visit_id": "V1", "stage": "flying"})[0] == 400
    assert pg.sql("SELECT count(*) FROM journey_events", database) == [(3,)]


@pytest.mark.pg
def test_separate_owner_role_grants_the_app_role(apps, pg, database):
    pg.sql(f"GRANT CREATE ON SCHEMA public TO owner_ih", dbname=database)
    cfg = apps.config("ih", node="ih1", migrate_db={"user": "owner_ih", "password": "pw-owner_ih"})
    assert apps.migrate("ih", "2.0.0", cfg, "up")[0] == 0
    assert pg.sql("SELECT tableowner FROM pg_tables WHERE tablename = 'ih_payments'", database) == [("owner_ih",)]
    url = apps.start("ih", "2.0.0", cfg)
    assert http("GET", url + "/health")[0] == 200
    assert http("POST", url + "/api/payments", {"amount_fen": 1, "method": "scan", "order_ref": "G"})[0] == 201


@pytest.mark.pg
def test_database_unreachable_is_503_and_sigterm_stops_cleanly(apps, pg, database):
    cfg = apps.config("ih", node="ih1", db={"host": "127.0.0.1", "port": _free_port(), "dbname": database,
                                            "user": "app_ih", "password": "pw-app_ih"})
    url = apps.start("ih", "1.0.0", cfg)
    code, body = http("GET", url + "/health")
    assert code == 503 and body["db"] == "unreachable" and "database unreachable" in body["reason"]
    code, body = http("POST", url + "/api/payments", {"amount_fen": 1, "method": "scan", "order_ref": "U"})
    assert code == 503
    proc = apps.procs[-1]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    log = Path(json.loads(cfg.read_text())["log_file"]).read_text(encoding="utf-8")
    assert "received SIGTERM, stopping" in log and "stopped after" in log
