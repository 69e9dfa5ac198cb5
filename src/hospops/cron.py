"""A small cron-expression parser: five fields (minute hour day-of-month month day-of-week), with
``*``, lists, ranges, steps (``*/15``, ``1-5/2``), month and weekday names, and the aliases
``@hourly @daily @midnight @weekly @monthly @quarterly @yearly @annually``.

Semantics follow Vixie cron: when both day-of-month and day-of-week are restricted, a day matches
if *either* does. Day-of-week 0 and 7 are Sunday. Times are wall-clock times in the schedule's time
zone; ``next_after`` and ``latest_at_or_before`` take and return aware datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from hospops.errors import UserError

ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@quarterly": "0 0 1 1,4,7,10 *",
    "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}), ("month", 1, 12, MONTHS),
          ("day of week", 0, 7, DAYS))
_HORIZON_DAYS = 366 * 5


class CronError(UserError):
    def __init__(self, expr: str, why: str) -> None:
        super().__init__(f"cron expression {expr!r}: {why}",
                         "use five fields 'minute hour day month weekday', e.g. '30 1 * * *' or '0 2 1 1,4,7,10 *'")


def _value(token: str, names: dict[str, int], expr: str, what: str) -> int:
    key = token.lower()
    if key in names:
        return names[key]
    if not token.isdigit():
        raise CronError(expr, f"{token!r} is not a number or a name in the {what} field")
    return int(token)


def _field(text: str, lo: int, hi: int, names: dict[str, int], expr: str, what: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(expr, f"empty list item in the {what} field")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(expr, f"step {step_text!r} in the {what} field must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, names, expr, what), _value(b, names, expr, what)
        else:
            start = _value(base, names, expr, what)
            end = hi if step_text else start
        if not (lo <= start <= hi and lo <= end <= hi):
            raise CronError(expr, f"{part!r} is outside {lo}-{hi} in the {what} field")
        if start > end:
            raise CronError(expr, f"range {part!r} runs backwards in the {what} field")
        out.update(range(start, end + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]     # 0 = Sunday
    dom_star: bool
    dow_star: bool

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def matches(self, when: datetime) -> bool:
        return self.day_matches(when.date()) and when.hour in self.hours and when.minute in self.minutes

    def next_after(self, when: datetime) -> datetime:
        """The first due time strictly after ``when`` (same time zone as ``when``)."""
        tz = when.tzinfo
        start = when.replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        day = start.date()
        for _ in range(_HORIZON_DAYS):
            if self.day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute)
                        if candidate >= start:
                            return _aware(candidate, tz)
            day += timedelta(days=1)
        raise CronError(self.expr, "never comes due (check day of month against the months)")

    def latest_at_or_before(self, when: datetime) -> datetime | None:
        """The last due time at or before ``when``, or None within the horizon."""
        tz = when.tzinfo
        end = when.replace(second=0, microsecond=0, tzinfo=None)
        day = end.date()
        for _ in range(_HORIZON_DAYS):
            if self.day_matches(day):
                for hour in sorted(self.hours, reverse=True):
                    for minute in sorted(self.minutes, reverse=True):
                        candidate = datetime(day.year, day.month, day.day, hour, minute)
                        if candidate <= end:
                            return _aware(candidate, tz)
            day -= timedelta(days=1)
        return None

    def due_between(self, after: datetime, until: datetime, limit: int = 1000) -> list[datetime]:
        """Due times in (after, until], at most ``limit``."""
        out: list[datetime] = []
        t = after
        while len(out) < limit:
            t = self.next_after(t)
            if t > until:
                break
            out.append(t)
        return out


def _aware(naive: datetime, tz: tzinfo | None) -> datetime:
    return naive.replace(tzinfo=tz) if tz else naive


def parse(expr: str) -> Cron:
    text = " ".join(str(expr).split())
    text = ALIASES.get(text.lower(), text)
    parts = text.split(" ")
    if len(parts) != 5:
        raise CronError(expr, f"has {len(parts)} fields, not 5")
    values = [_field(p, lo, hi, names, expr, what) for p, (what, lo, hi, names) in zip(parts, FIELDS)]
    weekdays = frozenset(d % 7 for d in values[4])
    cron = Cron(expr=str(expr), minutes=values[0], hours=values[1], days=values[2], months=values[3],
                weekdays=weekdays, dom_star=parts[2].startswith("*"), dow_star=parts[4].startswith("*"))
    if not any(d <= _max_day(m) for m in cron.months for d in cron.days) and cron.dow_star:
        raise CronError(expr, "the day of month never occurs in the months named")
    return cron


def _max_day(month: int) -> int:
    return 29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31


_SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]


def _list(values: frozenset[int], full: range, width: int) -> str:
    if set(values) == set(full):
        return "*"
    return ",".join(f"{v:0{width}d}" for v in sorted(values))


def to_on_calendar(cron: Cron, timezone: str | None = None) -> list[str]:
    """systemd ``OnCalendar=`` lines equivalent to ``cron`` (two lines when both day fields are
    restricted, as systemd ANDs them and cron ORs them)."""
    time_part = f"{_list(cron.hours, range(24), 2)}:{_list(cron.minutes, range(60), 2)}:00"
    month = _list(cron.months, range(1, 13), 2)
    tz = f" {timezone}" if timezone else ""
    dows = ",".join(_SYSTEMD_DAYS[d] for d in sorted(cron.weekdays))
    day_full = _list(cron.days, range(1, 32), 2)
    if cron.dom_star and cron.dow_star:
        return [f"*-{month}-* {time_part}{tz}"]
    if cron.dow_star:
        return [f"*-{month}-{day_full} {time_part}{tz}"]
    if cron.dom_star:
        return [f"{dows} *-{month}-* {time_part}{tz}"]
    return [f"*-{month}-{day_full} {time_part}{tz}", f"{dows} *-{month}-* {time_part}{tz}"]
