"""The store behind one interface, on both backends (SQLite file, a real PostgreSQL 15 server)."""

from __future__ import annotations

import threading

import pytest

from hospops.store import open_store


def test_migrations_create_the_change_tables(store):
    versions = {r["version"] for r in store.query("SELECT version FROM schema_migrations")}
    assert {"0001", "0002", "0003", "0004", "0005"} <= versions
    for table in ("changes", "approvals", "runs", "host_locks", "gate_ledger_offsets"):
        assert store.query(f"SELECT * FROM {table}") == []


def test_reopening_applies_nothing_twice(store_url):
    from hospops.store.migrate import migrate

    first = open_store(store_url)
    second = open_store(store_url)
    assert migrate(second) == []
    first.close()
    second.close()


def test_transaction_rolls_back_on_error(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.execute("INSERT INTO gate_ledger_offsets (ledger, file_id, byte_offset, updated_at)"
                          " VALUES ('x', 'f', 1, 'now')")
            raise RuntimeError("boom")
    assert store.one("SELECT * FROM gate_ledger_offsets WHERE ledger = 'x'") is None


def test_transactions_of_two_connections_serialise(store_url):
    """Read-modify-write from two connections at once never loses an update."""
    seed = open_store(store_url)
    seed.execute("INSERT INTO gate_ledger_offsets (ledger, file_id, byte_offset, updated_at) VALUES ('c', 'f', 0, 'now')")
    errors = []

    def bump(n):
        s = open_store(store_url)
        try:
            for _ in range(n):
                with s.transaction():
                    v = s.one("SELECT byte_offset FROM gate_ledger_offsets WHERE ledger = 'c'")["byte_offset"]
                    s.execute("UPDATE gate_ledger_offsets SET byte_offset = :v WHERE ledger = 'c'", {"v": int(v) + 1})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=bump, args=(20,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert int(seed.one("SELECT byte_offset FROM gate_ledger_offsets WHERE ledger = 'c'")["byte_offset"]) == 60
    seed.close()
