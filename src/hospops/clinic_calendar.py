"""When the hospital's outpatient clinic is open: the clock behind contract 7.7.2 C.

A fault at night or on a holiday (when the hospital does not hold clinic) must be dealt with
"before the hospital opens (e.g. before registration starts the next morning)". This module
answers three questions for the SLA clock:

* ``is_clinic_day(date)``: does the hospital hold clinic on that date?
  Normal weekdays with configured hours do, PRC public holidays do not, and **make-up workdays**
  (调休上班, e.g. Saturday 2026-10-10) do: on a make-up workday the hospital runs the hours of a
  normal weekday (``makeup_hours``, default: Monday's hours), not the weekend's, because the
  State Council declares those days ordinary working days.
* ``is_outpatient_hours(dt)``: is ``dt`` inside one of the day's opening windows?
* ``next_opening(after)``: the next registration start (the first opening of the next clinic day,
  or later today if today's first opening has not come yet).

Holidays and make-up workdays come from the ``chinese_calendar`` package, which only knows the
years the State Council had published when it was released. For a year it does not know the
calendar refuses with a clear error, unless the inventory declares that year itself
(``known_years`` plus its ``holidays`` / ``workdays``): extra holidays and workdays in the
configuration always win over the package.

Inventory variable ``hospops_clinic_calendar`` (see inventories/lab/group_vars/all/clinic.yml)::

    hospops_clinic_calendar:
      timezone: Asia/Shanghai
      hours:                      # weekday -> list of "HH:MM-HH:MM" windows; missing = closed
        mon: ["08:00-12:00", "13:30-17:30"]
        ...
        sat: ["08:00-12:00"]
      makeup_hours: mon           # which weekday's hours a make-up workday runs (or a list of windows)
      holidays: ["2026-11-30"]    # extra closed dates (hospital-specific)
      workdays: []                # extra open dates (run makeup_hours)
      known_years: []             # years declared here when chinese_calendar lacks them: in such a year
                                  # every day runs its weekday hours except the listed holidays / workdays
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hospops.errors import UserError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Window = tuple[time, time]

DEFAULT_CONFIG: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "hours": {
        "mon": ["08:00-12:00", "13:30-17:30"],
        "tue": ["08:00-12:00", "13:30-17:30"],
        "wed": ["08:00-12:00", "13:30-17:30"],
        "thu": ["08:00-12:00", "13:30-17:30"],
        "fri": ["08:00-12:00", "13:30-17:30"],
        "sat": ["08:00-12:00"],
    },
    "makeup_hours": "mon",
    "holidays": [],
    "workdays": [],
    "known_years": [],
}

_FIX = "correct hospops_clinic_calendar in the inventory (group_vars/all/clinic.yml)"


def _parse_windows(spec: Any, where: str) -> list[Window]:
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, list):
        raise UserError(f"hospops_clinic_calendar.{where}: expected a list of 'HH:MM-HH:MM', got {spec!r}", _FIX)
    out: list[Window] = []
    for item in spec:
        try:
            start_s, end_s = str(item).split("-")
            start, end = time.fromisoformat(start_s.strip()), time.fromisoformat(end_s.strip())
        except ValueError as exc:
            raise UserError(f"hospops_clinic_calendar.{where}: {item!r} is not 'HH:MM-HH:MM'", _FIX) from exc
        if end <= start:
            raise UserError(f"hospops_clinic_calendar.{where}: window {item!r} ends before it starts", _FIX)
        out.append((start, end))
    out.sort()
    for (_, e1), (s2, _) in zip(out, out[1:]):
        if s2 < e1:
            raise UserError(f"hospops_clinic_calendar.{where}: windows overlap", _FIX)
    return out


def _parse_dates(values: Any, where: str) -> frozenset[date]:
    if not values:
        return frozenset()
    if not isinstance(values, list):
        raise UserError(f"hospops_clinic_calendar.{where}: expected a list of YYYY-MM-DD dates", _FIX)
    out = set()
    for v in values:
        if isinstance(v, date) and not isinstance(v, datetime):
            out.add(v)
            continue
        try:
            out.add(date.fromisoformat(str(v)))
        except ValueError as exc:
            raise UserError(f"hospops_clinic_calendar.{where}: {v!r} is not a YYYY-MM-DD date", _FIX) from exc
    return frozenset(out)


@dataclass(frozen=True)
class ClinicCalendar:
    tz: ZoneInfo
    hours: Mapping[int, list[Window]]            # weekday index (0 = Monday) -> windows
    makeup_hours: list[Window]
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)
    known_years: frozenset[int] = field(default_factory=frozenset)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> "ClinicCalendar":
        cfg = {**DEFAULT_CONFIG, **(config or {})}
        unknown = set(cfg) - set(DEFAULT_CONFIG)
        if unknown:
            raise UserError(f"hospops_clinic_calendar: unknown key(s) {sorted(unknown)}",
                            f"use only {sorted(DEFAULT_CONFIG)}")
        try:
            tz = ZoneInfo(str(cfg["timezone"]))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise UserError(f"hospops_clinic_calendar.timezone: {cfg['timezone']!r} is not a known time zone",
                            "use an IANA name such as Asia/Shanghai") from exc
        raw_hours = cfg["hours"] or {}
        if not isinstance(raw_hours, Mapping):
            raise UserError("hospops_clinic_calendar.hours: expected a mapping of weekday -> windows", _FIX)
        bad = [k for k in raw_hours if str(k).lower()[:3] not in WEEKDAYS]
        if bad:
            raise UserError(f"hospops_clinic_calendar.hours: unknown weekday(s) {bad}", f"use {', '.join(WEEKDAYS)}")
        hours = {i: [] for i in range(7)}
        for key, spec in raw_hours.items():
            hours[WEEKDAYS.index(str(key).lower()[:3])] = _parse_windows(spec, f"hours.{key}")
        mk = cfg["makeup_hours"]
        if isinstance(mk, str) and mk.lower()[:3] in WEEKDAYS:
            makeup = hours[WEEKDAYS.index(mk.lower()[:3])]
        else:
            makeup = _parse_windows(mk, "makeup_hours")
        if not makeup:
            raise UserError("hospops_clinic_calendar.makeup_hours: a make-up workday would have no hours",
                            "name a weekday with hours (e.g. mon) or give windows")
        try:
            years = frozenset(int(y) for y in (cfg["known_years"] or []))
        except (TypeError, ValueError) as exc:
            raise UserError("hospops_clinic_calendar.known_years: expected a list of years", _FIX) from exc
        return cls(tz=tz, hours=hours, makeup_hours=makeup,
                   extra_holidays=_parse_dates(cfg["holidays"], "holidays"),
                   extra_workdays=_parse_dates(cfg["workdays"], "workdays"),
                   known_years=years)

    @classmethod
    def default(cls) -> "ClinicCalendar":
        return cls.from_config(DEFAULT_CONFIG)

    @classmethod
    def from_inventory(cls, inv) -> "ClinicCalendar":
        """Build from the inventory variable ``hospops_clinic_calendar`` (defaults when absent)."""
        return cls.from_config(inv.var("hospops_clinic_calendar", None))

    # -- the questions ------------------------------------------------------------------------
    def _official(self, day: date) -> tuple[bool, bool]:
        """(is a public holiday, is a make-up workday) per the State Council calendar.

        chinese_calendar calls every ordinary weekend a "holiday" too (with no festival name);
        those keep the weekday's own hours (e.g. Saturday morning clinic)."""
        import chinese_calendar

        try:
            on_holiday, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError as exc:
            raise UserError(
                f"the PRC holiday calendar for {day.year} is not known to chinese_calendar "
                f"(it knows {_known_range()}); clinic hours for {day:%Y-%m-%d} cannot be computed",
                f"upgrade chinese-calendar, or declare {day.year} in hospops_clinic_calendar: "
                f"known_years: [{day.year}] with its holidays and workdays") from exc
        public_holiday = bool(on_holiday and name)
        makeup = (not on_holiday) and day.weekday() >= 5  # a weekend day declared a workday: 调休
        return public_holiday, makeup

    def windows(self, day: date) -> list[Window]:
        """Opening windows on ``day`` (empty when the hospital holds no clinic)."""
        if day in self.extra_holidays:
            return []
        if day in self.extra_workdays:
            return self.makeup_hours if day.weekday() >= 5 else (self.hours[day.weekday()] or self.makeup_hours)
        if day.year in self.known_years:
            return self.hours[day.weekday()]
        holiday, makeup = self._official(day)
        if holiday:
            return []
        if makeup:
            return self.makeup_hours
        return self.hours[day.weekday()]

    def is_clinic_day(self, day: date | datetime) -> bool:
        if isinstance(day, datetime):
            day = self.local(day).date()
        return bool(self.windows(day))

    def local(self, dt: datetime) -> datetime:
        if dt.tzinfo is None:
            raise ValueError("naive datetime: pass an aware datetime (UTC or Asia/Shanghai)")
        return dt.astimezone(self.tz)

    def is_outpatient_hours(self, dt: datetime) -> bool:
        here = self.local(dt)
        t = here.time()
        return any(s <= t < e for s, e in self.windows(here.date()))

    def is_off_hours(self, dt: datetime) -> bool:
        """Night or a day without clinic (7.7.2 C "夜间或节假日医院不开诊"): before the day's first
        opening, after its last closing, or on a non-clinic day. The lunch break is not night."""
        here = self.local(dt)
        wins = self.windows(here.date())
        if not wins:
            return True
        t = here.time()
        return t < wins[0][0] or t >= wins[-1][1]

    def next_opening(self, after: datetime, horizon_days: int = 60) -> datetime:
        """The next registration start strictly after ``after`` (aware datetime, clinic time zone)."""
        here = self.local(after)
        day = here.date()
        for _ in range(horizon_days + 1):
            wins = self.windows(day)
            if wins:
                start = datetime.combine(day, wins[0][0], tzinfo=self.tz)
                if start > here:
                    return start
            day += timedelta(days=1)
        raise UserError(f"no clinic opening within {horizon_days} days after {here:%Y-%m-%d %H:%M}",
                        "check hospops_clinic_calendar.hours and holidays")


def coverage_warning(calendar: ClinicCalendar, now: datetime, days: int = 30) -> str | None:
    """A warning when the holiday data runs out within ``days`` of ``now`` (None when fine)."""
    try:
        last = max(supported_years()[-1], max(calendar.known_years, default=0))
    except Exception:  # pragma: no cover - chinese_calendar missing is reported elsewhere
        return None
    horizon = calendar.local(now) + timedelta(days=days)
    if horizon.year > last:
        return (f"the PRC holiday calendar is known up to {last}; from {last + 1}-01-01 clinic deadlines "
                f"(7.7.2 C) cannot be computed: upgrade chinese-calendar or declare {last + 1} in "
                f"hospops_clinic_calendar.known_years with its holidays and workdays")
    return None


def _known_range() -> str:
    try:
        from chinese_calendar import constants

        years = sorted({d.year for d in constants.holidays})
        return f"{years[0]}-{years[-1]}"
    except Exception:  # pragma: no cover
        return "an unknown range"


def supported_years() -> range:
    """Years chinese_calendar knows (for `hospops` checks and tests)."""
    from chinese_calendar import constants

    years = sorted({d.year for d in constants.holidays})
    return range(years[0], years[-1] + 1)
