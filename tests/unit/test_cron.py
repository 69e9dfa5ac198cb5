"""The cron-expression parser: fields, names, steps, aliases, Vixie day semantics, next/previous due."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from hospops import cron
from hospops.errors import UserError

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("expr, minutes, hours, days, months, weekdays", [
    ("* * * * *", range(60), range(24), range(1, 32), range(1, 13), range(7)),
    ("*/15 1-5/2 1,15 jan,jul mon-fri", [0, 15, 30, 45], [1, 3, 5], [1, 15], [1, 7], [1, 2, 3, 4, 5]),
    ("30 1 * * 7", [30], [1], range(1, 32), range(1, 13), [0]),
    ("@quarterly", [0], [0], [1], [1, 4, 7, 10], range(7)),
    ("@hourly", [0], range(24), range(1, 32), range(1, 13), range(7)),
    ("5/20 * * * *", [5, 25, 45], range(24), range(1, 32), range(1, 13), range(7)),
])
def test_fields(expr, minutes, hours, days, months, weekdays):
    c = cron.parse(expr)
    assert (sorted(c.minutes), sorted(c.hours), sorted(c.days), sorted(c.months), sorted(c.weekdays)) == \
        (list(minutes), list(hours), list(days), list(months), list(weekdays))


@pytest.mark.parametrize("expr, why", [
    ("* * * *", "4 fields"), ("60 * * * *", "outside"), ("* 24 * * *", "outside"), ("*/0 * * * *", "step"),
    ("5-1 * * * *", "backwards"), ("x * * * *", "not a number"), ("0 0 31 2 *", "never occurs"), ("1,,2 * * * *", "empty"),
])
def test_bad_expressions_say_why(expr, why):
    with pytest.raises(UserError) as err:
        cron.parse(expr)
    assert why in str(err.value)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.mark.parametrize("expr, after, expected", [
    ("30 1 * * *", at(2026, 11, 25, 1, 29), at(2026, 11, 25, 1, 30)),
    ("30 1 * * *", at(2026, 11, 25, 1, 30), at(2026, 11, 26, 1, 30)),        # strictly after
    ("30 1 * * *", at(2026, 12, 31, 23, 59), at(2027, 1, 1, 1, 30)),          # year boundary
    ("0 2 1 1,4,7,10 *", at(2026, 11, 25, 12, 0), at(2027, 1, 1, 2, 0)),      # quarterly
    ("0 0 29 2 *", at(2026, 3, 1, 0, 0), at(2028, 2, 29, 0, 0)),              # leap day
    ("0 3 * * 3", at(2026, 11, 25, 3, 0), at(2026, 12, 2, 3, 0)),             # Wednesdays (25 Nov 2026 is one)
    ("0 9 13 * 5", at(2026, 11, 7, 0, 0), at(2026, 11, 13, 9, 0)),            # day 13 OR Friday: Fri 13th
    ("0 9 1 * 1", at(2026, 11, 25, 0, 0), at(2026, 11, 30, 9, 0)),            # OR: Monday 30 before the 1st
])
def test_next_after(expr, after, expected):
    assert cron.parse(expr).next_after(after) == expected


def test_latest_and_due_between():
    c = cron.parse("30 1 * * *")
    assert c.latest_at_or_before(at(2026, 11, 25, 1, 30, 59)) == at(2026, 11, 25, 1, 30)
    assert c.latest_at_or_before(at(2026, 11, 25, 1, 29)) == at(2026, 11, 24, 1, 30)
    missed = c.due_between(at(2026, 11, 20, 1, 30), at(2026, 11, 25, 2, 0))
    assert missed == [at(2026, 11, d, 1, 30) for d in range(21, 26)]
    assert c.matches(at(2026, 11, 25, 1, 30)) and not c.matches(at(2026, 11, 25, 1, 31))


@pytest.mark.parametrize("expr, lines", [
    ("30 1 * * *", ["*-*-* 01:30:00 Asia/Shanghai"]),
    ("0 2 1 1,4,7,10 *", ["*-01,04,07,10-01 02:00:00 Asia/Shanghai"]),
    ("0 2 * * 1-6", ["Mon,Tue,Wed,Thu,Fri,Sat *-*-* 02:00:00 Asia/Shanghai"]),
    ("0 9 13 * 5", ["*-*-13 09:00:00 Asia/Shanghai", "Fri *-*-* 09:00:00 Asia/Shanghai"]),
])
def test_systemd_on_calendar(expr, lines):
    assert cron.to_on_calendar(cron.parse(expr), "Asia/Shanghai") == lines
