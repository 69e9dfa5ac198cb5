"""Consultation tickets (7.4.2 (1)): reaction within 4 h, proposed solution within 48 h."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hospops.errors import UserError
from hospops.store import open_store
from hospops.tickets import Tickets

SH = ZoneInfo("Asia/Shanghai")


# `store` (SQLite and PostgreSQL) comes from tests/conftest.py


def test_ticket_clocks(store):
    t0 = datetime(2026, 10, 1, 22, 0, tzinfo=SH)         # a holiday night: the 7x24 clock still runs
    now = [t0]
    sent = []
    tickets = Tickets(store, now=lambda: now[0], notifier=lambda e, c: sent.append((e, c.get("clock"))))
    row = tickets.open("如何导出对账单", "信息科 王工", body="月底对账需要导出")
    assert row["id"] == "TKT-20261001-001"
    assert sent == [("ticket.opened", None)]
    now[0] = t0 + timedelta(hours=3)
    tickets.react(row["id"], "alice")
    now[0] = t0 + timedelta(hours=49)
    assert tickets.check_clocks() == [("ticket.overdue", row["id"])]
    assert tickets.check_clocks() == []
    done = tickets.propose(row["id"], "alice", "提供导出脚本并培训")
    states = {k: v["state"] for k, v in tickets.summary(done).items()}
    assert states == {"react": "met", "propose": "breached"}
    assert ("ticket.overdue", "propose") in sent
    with pytest.raises(UserError, match="cannot react"):
        tickets.react(row["id"], "bob")
    second = tickets.open("another", "x")
    assert second["id"] == "TKT-20261003-001"
