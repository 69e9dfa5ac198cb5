"""hospops.audit: the hash chain notices edits, deletions and reordering; retention is enforced."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from hospops import audit
from hospops.errors import UserError


def _fill(store, n=5):
    for i in range(n):
        audit.record(store, "test.event", f"s{i}", {"i": i}, actor="tester")


def test_intact_chain_verifies(store):
    _fill(store)
    verdict = audit.verify(store)
    assert verdict.ok and verdict.records == 5


def test_edited_record_is_detected_and_named(store):
    _fill(store)
    store.execute("UPDATE audit SET data = :d WHERE seq = 3", {"d": json.dumps({"i": 99})})
    verdict = audit.verify(store)
    assert not verdict.ok and verdict.first_bad == 3
    assert "record 3 was edited" in verdict.reason


def test_edited_record_with_recomputed_hash_breaks_the_next_link(store):
    _fill(store)
    row = store.one("SELECT * FROM audit WHERE seq = 2")
    forged = audit._digest(2, row["at"], "mallory", row["kind"], row["subject"], row["data"], row["prev_hash"])
    store.execute("UPDATE audit SET actor = 'mallory', hash = :h WHERE seq = 2", {"h": forged})
    verdict = audit.verify(store)
    assert not verdict.ok and verdict.first_bad == 3


def test_deleted_record_is_detected(store):
    _fill(store)
    store.execute("DELETE FROM audit WHERE seq = 4")
    verdict = audit.verify(store)
    assert not verdict.ok and verdict.first_bad == 4 and "missing" in verdict.reason


def test_reordered_records_are_detected(store):
    _fill(store)
    store.execute("UPDATE audit SET seq = 1000 WHERE seq = 2")
    store.execute("UPDATE audit SET seq = 2 WHERE seq = 3")
    store.execute("UPDATE audit SET seq = 3 WHERE seq = 1000")
    verdict = audit.verify(store)
    assert not verdict.ok and verdict.first_bad == 2


def test_prune_refuses_records_younger_than_180_days(store):
    now = datetime.now(timezone.utc)
    audit.record(store, "old", "x", {}, at=now - timedelta(days=400))
    audit.record(store, "new", "y", {}, at=now - timedelta(days=10))
    with pytest.raises(UserError, match="180 days"):
        audit.prune(store, now - timedelta(days=179))
    assert audit.prune(store, now - timedelta(days=200)) == 1
    verdict = audit.verify(store)
    assert verdict.ok and verdict.records == 2  # "new" + the prune record, chained to the anchor


def test_record_refuses_secret_looking_fields(store):
    with pytest.raises(ValueError):
        audit.record(store, "x", "y", {"db_password": "hunter2"})


def test_export_round_trips(store):
    _fill(store, 2)
    out = io.StringIO()
    assert audit.export(store, out) == 2
    assert [json.loads(line)["data"]["i"] for line in out.getvalue().splitlines()] == [0, 1]
