"""Notifications (7.7.2 通知及告知): what happened, what it means for the hospital, what the hospital
should do, and what happens next; in Chinese by default, English on request.

Other features call::

    from hospops import notify
    notify.send(store, "approval.requested", {"subject": "CR-...", "level": "L1", "service": "ih",
                "title": "...", "impact": {...}, "advice": {...}, "next": {...}})

``send`` picks the recipients by the routes of inventory variable ``hospops_notify`` (event, level,
service, time of day), renders ``templates/notify/<lang>/<event>.md.j2`` (``generic.md.j2`` when
the event has no template of its own), delivers on each contact's channels with retries and
backoff, and records every delivery and failure in the store and the audit log (channel names
only: never a webhook URL, token or password).

Events this project sends: incident.opened, incident.escalated (3 strikes), incident.unacknowledged
(escalation to the next contact: context ``step``), deadline.near, deadline.breached (context
``clock``), incident.recovered, ticket.opened, ticket.overdue, approval.requested, change.break_glass,
upgrade.done, upgrade.rolled_back, upgrade.stopped (hospops.upgrade_notice).
"""

from __future__ import annotations

import fnmatch
import json
import time as _time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, time
from importlib import resources
from typing import Any, Callable, Mapping

from hospops import audit
from hospops.clinic_calendar import ClinicCalendar
from hospops.errors import UserError
from hospops.notify.channels import Channel, DeliveryError, Message, scrub

Now = Callable[[], datetime]
LANGS = ("zh", "en")
_FIX = "correct hospops_notify in the inventory (group_vars/all/notify.yml)"


def _utcnow() -> datetime:
    from datetime import timezone

    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Route:
    events: tuple[str, ...]
    levels: tuple[str, ...]
    services: tuple[str, ...]
    hours: str                      # any | outpatient | off_hours | HH:MM-HH:MM
    to: tuple[str, ...]
    channels: tuple[str, ...]       # empty: each contact's own channels

    def matches(self, event: str, ctx: Mapping[str, Any], at: datetime, calendar: ClinicCalendar) -> bool:
        if not any(fnmatch.fnmatchcase(event, e) for e in self.events):
            return False
        if self.levels and ctx.get("level") not in self.levels:
            return False
        if self.services and ctx.get("service") not in self.services:
            return False
        if self.hours == "any":
            return True
        if self.hours in ("outpatient", "off_hours"):
            try:
                return calendar.is_outpatient_hours(at) if self.hours == "outpatient" else calendar.is_off_hours(at)
            except UserError:
                return True  # the holiday data does not cover today: rather notify than stay silent
        start_s, end_s = self.hours.split("-")
        start, end, now_t = time.fromisoformat(start_s), time.fromisoformat(end_s), calendar.local(at).time()
        return start <= now_t < end if start < end else (now_t >= start or now_t < end)


@dataclass(frozen=True)
class NotifyConfig:
    language: str
    channels: Mapping[str, Channel]
    contacts: Mapping[str, Mapping[str, Any]]
    routes: tuple[Route, ...]
    escalation: tuple[str, ...]
    retries: int
    backoff: float
    ack_minutes: float
    calendar: ClinicCalendar

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None, calendar: ClinicCalendar | None = None) -> "NotifyConfig":
        cfg = dict(cfg or {})
        known = {"language", "channels", "contacts", "routes", "escalation", "retries", "backoff_seconds",
                 "timeout_seconds", "ack_minutes"}
        unknown = set(cfg) - known
        if unknown:
            raise UserError(f"hospops_notify: unknown key(s) {sorted(unknown)}", f"use only {sorted(known)}")
        lang = cfg.get("language", "zh")
        if lang not in LANGS:
            raise UserError(f"hospops_notify.language: {lang!r} is not zh or en", _FIX)
        timeout = float(cfg.get("timeout_seconds", 5))
        channels = {name: Channel.from_config(name, c, timeout) for name, c in (cfg.get("channels") or {}).items()}
        contacts = dict(cfg.get("contacts") or {})
        for name, c in contacts.items():
            if not isinstance(c, Mapping):
                raise UserError(f"hospops_notify.contacts.{name}: expected a mapping", _FIX)
            for ch in c.get("channels") or []:
                if ch not in channels:
                    raise UserError(f"hospops_notify.contacts.{name}.channels: {ch!r} is not a channel", _FIX)
            if c.get("lang", lang) not in LANGS:
                raise UserError(f"hospops_notify.contacts.{name}.lang: {c.get('lang')!r} is not zh or en", _FIX)
        routes = []
        for i, r in enumerate(cfg.get("routes") or [], start=1):
            where = f"hospops_notify.routes[{i}]"
            if not isinstance(r, Mapping) or not r.get("to"):
                raise UserError(f"{where}: a route needs 'to' (a list of contacts)", _FIX)
            for who in r["to"]:
                if who not in contacts:
                    raise UserError(f"{where}.to: {who!r} is not a contact", _FIX)
            for ch in r.get("channels") or []:
                if ch not in channels:
                    raise UserError(f"{where}.channels: {ch!r} is not a channel", _FIX)
            hours = str(r.get("hours", "any"))
            if hours not in ("any", "outpatient", "off_hours"):
                try:
                    a, b = hours.split("-")
                    time.fromisoformat(a), time.fromisoformat(b)
                except ValueError as exc:
                    raise UserError(f"{where}.hours: {hours!r} is not any, outpatient, off_hours or HH:MM-HH:MM",
                                    _FIX) from exc
            routes.append(Route(events=tuple(r.get("events") or ["*"]), levels=tuple(r.get("levels") or []),
                                services=tuple(r.get("services") or []), hours=hours, to=tuple(r["to"]),
                                channels=tuple(r.get("channels") or [])))
        escalation = tuple(cfg.get("escalation") or [])
        for who in escalation:
            if who not in contacts:
                raise UserError(f"hospops_notify.escalation: {who!r} is not a contact", _FIX)
        return cls(language=lang, channels=channels, contacts=contacts, routes=tuple(routes), escalation=escalation,
                   retries=int(cfg.get("retries", 3)), backoff=float(cfg.get("backoff_seconds", 2.0)),
                   ack_minutes=float(cfg.get("ack_minutes", 15)), calendar=calendar or ClinicCalendar.default())

    @classmethod
    def from_inventory(cls, inv) -> "NotifyConfig":
        return cls.from_config(inv.var("hospops_notify", None), ClinicCalendar.from_inventory(inv))

    def recipients(self, event: str, ctx: Mapping[str, Any], at: datetime) -> list[tuple[str, str]]:
        """(contact, channel) pairs for one event, without duplicates, in route order."""
        pairs: list[tuple[str, str]] = []

        def add(contact: str, channels: tuple[str, ...]) -> None:
            for ch in channels or tuple(self.contacts[contact].get("channels") or ()):
                if (contact, ch) not in pairs:
                    pairs.append((contact, ch))

        for route in self.routes:
            if route.matches(event, ctx, at, self.calendar):
                for who in route.to:
                    add(who, route.channels)
        if event == "incident.unacknowledged" and self.escalation:
            step = int(ctx.get("step") or 1)
            add(self.escalation[min(step, len(self.escalation) - 1)], ())
        return pairs


@dataclass
class Delivery:
    id: str
    event: str
    subject: str
    channel: str
    contacts: list[str]
    status: str          # sent | failed
    attempts: int
    error: str = ""


# -- rendering ---------------------------------------------------------------------------------
_ENV = None


def _env():
    global _ENV
    if _ENV is None:
        import jinja2

        root = resources.files("hospops").joinpath("templates", "notify")
        _ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(root)), autoescape=False,
                                  undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                                  keep_trailing_newline=True)

        def t(value: Any, lang: str = "zh") -> str:
            if isinstance(value, Mapping):
                return str(value.get(lang) or value.get("zh") or value.get("en") or "")
            return "" if value is None else str(value)

        _ENV.filters["t"] = t
    return _ENV


def render(event: str, ctx: Mapping[str, Any], lang: str = "zh") -> tuple[str, str]:
    """(subject, markdown text) of one event in one language."""
    import jinja2

    env = _env()
    name = event.replace(".", "_") + ".md.j2"
    try:
        template = env.get_template(f"{lang}/{name}")
    except jinja2.TemplateNotFound:
        template = env.get_template(f"{lang}/generic.md.j2")
    text = template.render(event=event, lang=lang, **ctx).strip() + "\n"
    first = text.splitlines()[0] if text else event
    return first.lstrip("#").strip(), text


# -- sending -----------------------------------------------------------------------------------
def send(store, event: str, context: Mapping[str, Any], *, config: NotifyConfig | None = None, inventory=None,
         now: Now = _utcnow, sleep: Callable[[float], None] = _time.sleep, actor: str = "hospops") -> list[Delivery]:
    """Notify everyone the routes name for ``event``; returns one Delivery per channel used.

    ``context`` keys used by the templates: subject/id, level, service, service_title, title, summary,
    impact, advice, next (texts may be {"zh": ..., "en": ...}), and event-specific ones (clock, step,
    repair_due, clinic_due, ...). Never put a secret or patient data in it."""
    if config is None:
        from hospops.inventory import load

        config = NotifyConfig.from_inventory(inventory or load())
    at = now()
    subject_id = str(context.get("id") or context.get("subject") or event)
    pairs = config.recipients(event, context, at)
    if not pairs:
        audit.record(store, "notify.unrouted", subject_id, {"event": event}, actor=actor, at=at)
        return []
    # group by (channel, language): one email per contact, one robot message per channel and language
    groups: dict[tuple[str, str, str], list[str]] = {}
    for contact, ch in pairs:
        lang = str(config.contacts[contact].get("lang", config.language))
        key = (ch, lang, contact if config.channels[ch].type == "smtp" else "")
        groups.setdefault(key, []).append(contact)
    jobs = []
    for (ch_name, lang, _), contacts in groups.items():
        subject, text = render(event, context, lang)
        fields = {k: context.get(k) for k in ("id", "level", "service", "fingerprint", "clock", "step")
                  if context.get(k) is not None}
        message = Message(event=event, subject=subject, text=text, lang=lang, fields=fields)
        jobs.append((config.channels[ch_name], message, contacts))
    if len(jobs) == 1:
        return [_deliver(store, config, *jobs[0], subject_id, now, sleep, actor)]
    # channels in parallel: one dead endpoint's retries and backoff do not delay the others
    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        return list(pool.map(lambda job: _deliver(store, config, *job, subject_id, now, sleep, actor), jobs))


def _deliver(store, config: NotifyConfig, channel: Channel, message: Message, contacts: list[str], subject_id: str,
             now: Now, sleep: Callable[[float], None], actor: str) -> Delivery:
    to = [{"name": c, **{k: v for k, v in config.contacts[c].items() if k in ("email", "mobile", "name")}}
          for c in contacts]
    secrets = channel.secrets()
    error = ""
    attempts = 0
    status = "failed"
    for attempt in range(config.retries + 1):
        attempts = attempt + 1
        try:
            channel.deliver(message, to)
            status = "sent"
            break
        except DeliveryError as exc:
            error = scrub(str(exc), secrets)[:300]
            if attempt < config.retries:
                sleep(config.backoff * (2 ** attempt))
    d = Delivery(id=uuid.uuid4().hex[:16], event=message.event, subject=subject_id, channel=channel.name,
                 contacts=contacts, status=status, attempts=attempts, error=error)
    at = now()
    with store.transaction():
        store.execute("INSERT INTO notifications (id, at, event, subject, channel, contact, status, attempts, error)"
                      " VALUES (:id, :at, :event, :subject, :channel, :contact, :status, :attempts, :error)",
                      {"id": d.id, "at": at.isoformat(timespec="seconds"), "event": d.event, "subject": subject_id,
                       "channel": d.channel, "contact": ",".join(contacts), "status": status, "attempts": attempts,
                       "error": error})
    audit.record(store, f"notify.{status}", subject_id,
                 {"event": d.event, "channel": d.channel, "channel_type": channel.type, "contacts": contacts,
                  "attempts": attempts, "error": error, "lang": message.lang}, actor=actor, at=at)
    return d


def deliveries(store, subject: str | None = None) -> list[dict[str, Any]]:
    if subject:
        return store.query("SELECT * FROM notifications WHERE subject = :s ORDER BY at, id", {"s": subject})
    return store.query("SELECT * FROM notifications ORDER BY at, id")


def notifier_for(store, config: NotifyConfig, now: Now = _utcnow,
                 sleep: Callable[[float], None] = _time.sleep) -> Callable[[str, dict[str, Any]], Any]:
    """A callable for hospops.incidents.Incidents(notifier=...)."""
    def _send(event: str, ctx: dict[str, Any]) -> Any:
        return send(store, event, ctx, config=config, now=now, sleep=sleep)
    return _send


def dumps(d: Delivery) -> str:
    return json.dumps(d.__dict__, ensure_ascii=False)
