"""SLA clocks for incidents and consultation tickets: pure functions over an injected time.

How the contract is read (documented here, shown in reports):

* Response (7.1, "售后服务响应时间将小于1小时"): 1 h for every incident, day or night. It is met when
  an engineer *responds* (``hospops incident respond``: has started handling and told the
  hospital); ``ack`` only says someone has seen it and stops the escalation of notifications.
* Repair (7.2, "24小时内修复"): 24 h for L1 and L2.
* Night or holiday (7.7.2 C, "夜间或节假日医院不开诊"): an incident opened outside the clinic's day
  (before the first opening, after the last closing, or on a day without clinic; the lunch break
  is not "night") also gets a *clinic deadline*: the next registration start.
  - L1: "在医院开诊前完成处置" is a hard deadline. By default (``offhours_l1: earlier``) the repair
    deadline is the **earlier** of 24 h and the next opening: 7.2's 24 h is written for working-day
    faults and 7.7.2 C for off-hours ones, and meeting the earlier one meets both readings, so the
    vendor can never be faulted. ``offhours_l1: opening`` applies 7.7.2 C alone (e.g. a fault at
    23:00 on the eve of a 7-day holiday is due at the first registration after it).
  - L2: "尽量争取在医院开诊前" is best effort: the next opening is a *target* (missing it is shown, not
    counted as a breach) and the 24 h stays the hard deadline; ``l2_clinic: hard`` makes it hard.
* L3 goes onto the release list, due within 14 days (7.7.2 "每周或最迟不长于每两周"); L4 onto the
  usability list, planned into the next iteration (no clock).
* Waiting on the hospital (e.g. for its agreement to a restart, 7.7.2 A) is recorded and shown
  separately but does **not** pause the clocks: the contract has no stop-the-clock clause and its
  off-hours deadline is a point in time ("before the clinic opens"), not a duration. Reports show
  how much of a breached clock was spent waiting, so the cause is visible.
* 3 strikes (7.7.2 F, "同样问题出现三次以上", in Chinese usage "三次以上" includes the third): the third
  incident with the same fingerprint within one contract year raises an L2 to L1 (its deadlines
  are recomputed as L1 from the original opening time) and is reported; an L1 repeat is reported.
* Consultation tickets (7.4.2 (1)): reaction within 4 h, proposed solution within 48 h.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from hospops.clinic_calendar import ClinicCalendar
from hospops.errors import UserError

Now = Callable[[], datetime]
LEVELS = ("L1", "L2", "L3", "L4")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds") if dt else None


def parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_DEFAULTS: dict[str, Any] = {
    "response_minutes": 60,
    "repair_hours": 24,
    "offhours_l1": "earlier",
    "l2_clinic": "target",
    "release_days": 14,
    "near_minutes": 15,
    "contract_year_start": "01-01",
    "repeat_threshold": 3,
    "ticket_react_hours": 4,
    "ticket_propose_hours": 48,
}


@dataclass(frozen=True)
class SlaPolicy:
    """Inventory variable ``hospops_sla`` (defaults are the contract's numbers)."""

    response: timedelta = timedelta(minutes=60)
    repair: timedelta = timedelta(hours=24)
    offhours_l1: str = "earlier"
    l2_clinic: str = "target"
    release: timedelta = timedelta(days=14)
    near: timedelta = timedelta(minutes=15)
    contract_year_start: tuple[int, int] = (1, 1)
    repeat_threshold: int = 3
    ticket_react: timedelta = timedelta(hours=4)
    ticket_propose: timedelta = timedelta(hours=48)
    calendar: ClinicCalendar = field(default_factory=ClinicCalendar.default)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, calendar: ClinicCalendar | None = None) -> "SlaPolicy":
        cfg = {**_DEFAULTS, **(config or {})}
        fix = "correct hospops_sla in the inventory (group_vars/all/clinic.yml)"
        unknown = set(cfg) - set(_DEFAULTS)
        if unknown:
            raise UserError(f"hospops_sla: unknown key(s) {sorted(unknown)}", f"use only {sorted(_DEFAULTS)}")
        if cfg["offhours_l1"] not in ("earlier", "opening"):
            raise UserError(f"hospops_sla.offhours_l1: {cfg['offhours_l1']!r} is not 'earlier' or 'opening'", fix)
        if cfg["l2_clinic"] not in ("target", "hard"):
            raise UserError(f"hospops_sla.l2_clinic: {cfg['l2_clinic']!r} is not 'target' or 'hard'", fix)
        start = str(cfg["contract_year_start"])
        try:
            month, day = (int(x) for x in start.split("-")[-2:])
            date(2001, month, day)
        except ValueError as exc:
            raise UserError(f"hospops_sla.contract_year_start: {start!r} is not MM-DD or YYYY-MM-DD", fix) from exc
        try:
            nums = {k: float(cfg[k]) for k in _DEFAULTS if k.endswith(("_minutes", "_hours", "_days", "_threshold"))}
        except (TypeError, ValueError) as exc:
            raise UserError(f"hospops_sla: a duration is not a number ({exc})", fix) from exc
        if nums["repeat_threshold"] < 2:
            raise UserError("hospops_sla.repeat_threshold: must be at least 2", fix)
        return cls(response=timedelta(minutes=nums["response_minutes"]), repair=timedelta(hours=nums["repair_hours"]),
                   offhours_l1=cfg["offhours_l1"], l2_clinic=cfg["l2_clinic"],
                   release=timedelta(days=nums["release_days"]), near=timedelta(minutes=nums["near_minutes"]),
                   contract_year_start=(month, day), repeat_threshold=int(nums["repeat_threshold"]),
                   ticket_react=timedelta(hours=nums["ticket_react_hours"]),
                   ticket_propose=timedelta(hours=nums["ticket_propose_hours"]),
                   calendar=calendar or ClinicCalendar.default())

    @classmethod
    def from_inventory(cls, inv) -> "SlaPolicy":
        return cls.from_config(inv.var("hospops_sla", None), ClinicCalendar.from_inventory(inv))

    def contract_year(self, at: datetime) -> tuple[datetime, datetime]:
        """[start, end) of the contract year containing ``at`` (clinic time zone)."""
        here = self.calendar.local(at)
        month, day = self.contract_year_start
        start = datetime(here.year, month, day, tzinfo=self.calendar.tz)
        if start > here:
            start = datetime(here.year - 1, month, day, tzinfo=self.calendar.tz)
        return start, datetime(start.year + 1, month, day, tzinfo=self.calendar.tz)


@dataclass(frozen=True)
class Deadlines:
    response_due: datetime
    repair_due: datetime | None
    clinic_due: datetime | None
    clinic_due_hard: bool
    off_hours: bool
    work_list: str | None
    list_due: datetime | None


def incident_deadlines(level: str, opened_at: datetime, policy: SlaPolicy, use_calendar: bool = True) -> Deadlines:
    """The deadlines of an incident opened at ``opened_at``. ``use_calendar=False`` (when the holiday
    data does not cover the date) gives the plain 1 h / 24 h clocks without a clinic deadline."""
    if level not in LEVELS:
        raise UserError(f"level {level!r} is not one of {', '.join(LEVELS)}", "use L1 (payments), L2, L3 or L4")
    response_due = opened_at + policy.response
    off = policy.calendar.is_off_hours(opened_at) if use_calendar else False
    if level in ("L1", "L2"):
        repair_due = opened_at + policy.repair
        clinic_due = policy.calendar.next_opening(opened_at).astimezone(timezone.utc) if off else None
        hard = bool(clinic_due) and (level == "L1" or policy.l2_clinic == "hard")
        if clinic_due and hard:
            if level == "L1" and policy.offhours_l1 == "opening":
                repair_due = clinic_due
            else:
                repair_due = min(repair_due, clinic_due)
        return Deadlines(response_due, repair_due, clinic_due, hard, off, None, None)
    if level == "L3":
        return Deadlines(response_due, None, None, False, off, "release", opened_at + policy.release)
    return Deadlines(response_due, None, None, False, off, "usability", None)


@dataclass(frozen=True)
class ClockState:
    name: str           # response | repair | clinic | list
    due: datetime
    done_at: datetime | None
    hard: bool

    def state(self, now: datetime) -> str:
        if self.done_at:
            return "met" if self.done_at <= self.due else "breached"
        return "breached" if now > self.due else "running"

    def remaining(self, now: datetime) -> timedelta:
        return self.due - (self.done_at or now)


def clocks(row: Mapping[str, Any]) -> list[ClockState]:
    """The clocks of one incident row (as stored)."""
    resolved = parse(row.get("resolved_at"))
    # a fault that is over before anyone responded needs no response: resolution stops that clock too
    out = [ClockState("response", parse(row["response_due"]), parse(row.get("responded_at")) or resolved, True)]
    if row.get("repair_due"):
        out.append(ClockState("repair", parse(row["repair_due"]), resolved, True))
    if row.get("clinic_due"):
        out.append(ClockState("clinic", parse(row["clinic_due"]), resolved, bool(row.get("clinic_due_hard"))))
    if row.get("list_due"):
        out.append(ClockState("list", parse(row["list_due"]), resolved, True))
    return out


def waited(row: Mapping[str, Any], now: datetime) -> timedelta:
    """Time spent waiting on the hospital (closed periods plus an open one)."""
    total = timedelta(seconds=int(row.get("waited_seconds") or 0))
    since = parse(row.get("waiting_since"))
    if since:
        total += max(now - since, timedelta(0))
    return total


def fmt_delta(delta: timedelta) -> str:
    sign = "-" if delta < timedelta(0) else ""
    secs = int(abs(delta).total_seconds())
    d, rest = divmod(secs, 86400)
    h, rest = divmod(rest, 3600)
    m = rest // 60
    return sign + (f"{d}d{h:02d}h{m:02d}m" if d else f"{h}h{m:02d}m")
