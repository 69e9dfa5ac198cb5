"""The clinic calendar behind contract 7.7.2 C (checked against chinese_calendar's 2026 data)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hospops.clinic_calendar import ClinicCalendar, supported_years
from hospops.errors import UserError

SH = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def cal() -> ClinicCalendar:
    return ClinicCalendar.default()


def at(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def test_2026_is_known():
    assert 2026 in supported_years()


def test_weekdays_weekends_and_national_day(cal):
    assert cal.is_clinic_day(date(2026, 9, 30))          # Wednesday before National Day
    assert not cal.is_clinic_day(date(2026, 10, 1))      # National Day
    assert not cal.is_clinic_day(date(2026, 10, 7))      # last day of the 2026 holiday
    assert cal.is_clinic_day(date(2026, 10, 8))          # Thursday: back to work
    assert not cal.is_clinic_day(date(2026, 9, 25))      # Mid-Autumn Festival 2026 (a Friday)
    assert cal.is_clinic_day(date(2026, 11, 28))         # an ordinary Saturday: morning clinic
    assert not cal.is_clinic_day(date(2026, 11, 29))     # an ordinary Sunday


def test_makeup_workday_on_a_weekend_is_a_clinic_day_with_weekday_hours(cal):
    # 2026-10-10 (Saturday) and 2026-09-20 (Sunday) are National Day make-up workdays.
    for day in (date(2026, 10, 10), date(2026, 9, 20)):
        assert cal.is_clinic_day(day)
    assert cal.is_outpatient_hours(at(2026, 10, 10, 15, 0))   # Monday's afternoon session, not Saturday's
    assert cal.is_outpatient_hours(at(2026, 9, 20, 8, 0))
    assert not cal.is_outpatient_hours(at(2026, 10, 10, 12, 30))  # lunch break
    # the Sunday after the make-up Saturday is an ordinary Sunday
    assert not cal.is_clinic_day(date(2026, 10, 11))


def test_outpatient_hours_and_off_hours(cal):
    assert cal.is_outpatient_hours(at(2026, 11, 25, 8, 0))
    assert not cal.is_outpatient_hours(at(2026, 11, 25, 7, 59))
    assert not cal.is_outpatient_hours(at(2026, 11, 25, 12, 45))   # lunch
    assert not cal.is_off_hours(at(2026, 11, 25, 12, 45))          # ... but not "night"
    assert cal.is_off_hours(at(2026, 11, 25, 17, 30))
    assert cal.is_off_hours(at(2026, 11, 28, 13, 0))               # Saturday afternoon
    assert cal.is_off_hours(at(2026, 10, 3, 10, 0))                # holiday
    # UTC input is converted: 00:30 UTC = 08:30 in Shanghai
    assert cal.is_outpatient_hours(datetime.fromisoformat("2026-11-25T00:30:00+00:00"))


def test_next_opening(cal):
    # eve of National Day, 23:00 -> first registration after the holiday: Thu 2026-10-08 08:00
    assert cal.next_opening(at(2026, 9, 30, 23, 0)) == at(2026, 10, 8, 8, 0)
    # an ordinary night -> next morning
    assert cal.next_opening(at(2026, 11, 24, 23, 0)) == at(2026, 11, 25, 8, 0)
    # early morning -> today's opening
    assert cal.next_opening(at(2026, 11, 25, 6, 0)) == at(2026, 11, 25, 8, 0)
    # during the day -> the next day's registration start, not the afternoon session
    assert cal.next_opening(at(2026, 11, 25, 9, 0)) == at(2026, 11, 26, 8, 0)
    # Saturday afternoon -> Monday (Sunday is closed)
    assert cal.next_opening(at(2026, 11, 28, 13, 0)) == at(2026, 11, 30, 8, 0)
    # the Friday before the make-up Saturday 2026-10-10 -> that Saturday
    assert cal.next_opening(at(2026, 10, 9, 18, 0)) == at(2026, 10, 10, 8, 0)


def test_unknown_year_fails_clearly_and_config_can_declare_it(cal):
    with pytest.raises(UserError) as err:
        cal.is_clinic_day(date(2099, 1, 5))
    assert "2099" in str(err.value) and "known_years" in str(err.value)
    declared = ClinicCalendar.from_config({"known_years": [2099], "holidays": ["2099-01-05"],
                                           "workdays": ["2099-01-10"]})
    assert not declared.is_clinic_day(date(2099, 1, 5))
    assert declared.is_clinic_day(date(2099, 1, 6))
    assert declared.is_clinic_day(date(2099, 1, 10))  # a declared Saturday workday


def test_extra_holidays_and_workdays_override_the_package():
    cal = ClinicCalendar.from_config({"holidays": ["2026-11-25"], "workdays": ["2026-11-29"]})
    assert not cal.is_clinic_day(date(2026, 11, 25))
    assert cal.is_clinic_day(date(2026, 11, 29))
    assert cal.next_opening(at(2026, 11, 24, 20, 0)) == at(2026, 11, 26, 8, 0)


@pytest.mark.parametrize("config, words", [
    ({"hours": {"mon": ["8-12"]}}, ["hours.mon", "HH:MM-HH:MM"]),
    ({"hours": {"funday": ["08:00-12:00"]}}, ["funday"]),
    ({"hours": {"mon": ["12:00-08:00"]}}, ["ends before"]),
    ({"timezone": "Mars/Olympus"}, ["Mars/Olympus"]),
    ({"holidays": ["tomorrow"]}, ["holidays", "tomorrow"]),
    ({"colour": "red"}, ["colour"]),
])
def test_bad_config_is_named(config, words):
    with pytest.raises(UserError) as err:
        ClinicCalendar.from_config(config)
    for word in words:
        assert word in str(err.value)


def test_from_lab_inventory():
    from hospops.inventory import load

    cal = ClinicCalendar.from_inventory(load(REPO / "inventories" / "lab"))
    assert cal.next_opening(at(2026, 9, 30, 23, 0)) == at(2026, 10, 8, 8, 0)
    assert cal.is_outpatient_hours(at(2026, 11, 28, 9, 0))
