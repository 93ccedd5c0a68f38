"""When people may be contacted: weekdays, hours and French public holidays, in one place.

Times are compared in CRM_TIMEZONE; holidays come from the `holidays` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import holidays
from flask import current_app, has_app_context

from crm.timeutil import local_zone

if TYPE_CHECKING:
    from crm.models import Lab

DAY_NAMES = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    def describe(self) -> str:
        days = sorted(self.days)
        if days == list(range(days[0], days[-1] + 1)) and len(days) > 1:
            span = f"du {DAY_NAMES[days[0]]} au {DAY_NAMES[days[-1]]}"
        else:
            span = ", ".join(DAY_NAMES[d] for d in days)
        return f"{span}, de {self.start:%H:%M} à {self.end:%H:%M}, hors jours fériés"


@lru_cache(maxsize=64)  # a few distinct settings per process; the Window is immutable
def parse_window(days: str, hours: str) -> Window:
    """'1-5' and '10:00-20:00' (days numbered 1 = Monday to 7 = Sunday)."""
    first, _, last = days.partition("-")
    day_set = frozenset(range(int(first) - 1, int(last or first)))
    start, _, end = hours.partition("-")
    window = Window(day_set, time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
    if not window.days or window.start >= window.end:
        raise ValueError(f"fenêtre invalide : {days} {hours}")
    return window


def call_window() -> Window:
    return _configured("CALL_DAYS", "CALL_HOURS", "1-5", "09:00-19:00")


def send_window(lab: Lab | None = None) -> Window:
    """The lab's own send window where it has one (days, hours or both), else the configured one."""
    days, hours = _configured_values("SEND_DAYS", "SEND_HOURS", "1-5", "10:00-20:00")
    if lab is not None:
        days, hours = lab.send_days or days, lab.send_hours or hours
    return parse_window(days, hours)


def _configured(days_key: str, hours_key: str, days: str, hours: str) -> Window:
    return parse_window(*_configured_values(days_key, hours_key, days, hours))


def _configured_values(days_key: str, hours_key: str, days: str, hours: str) -> tuple[str, str]:
    if has_app_context():
        days = current_app.config.get(days_key, days)
        hours = current_app.config.get(hours_key, hours)
    return days, hours


@cache
def _french_holidays(year: int) -> holidays.HolidayBase:
    return holidays.France(years=year)


def is_holiday(day: date) -> bool:
    return day in _french_holidays(day.year)


def is_open(moment: datetime, window: Window) -> bool:
    local = moment.astimezone(local_zone())
    return (
        local.weekday() in window.days
        and window.start <= local.time() < window.end
        and not is_holiday(local.date())
    )


def next_opening(moment: datetime, window: Window) -> datetime:
    """The first moment at or after `moment` inside the window (aware, same zone as input)."""
    local = moment.astimezone(local_zone())
    for _ in range(400):
        if is_open(local, window):
            return local.astimezone(moment.tzinfo)
        if local.time() < window.start and local.weekday() in window.days:
            local = local.replace(
                hour=window.start.hour, minute=window.start.minute, second=0, microsecond=0
            )
        else:
            following = local.date() + timedelta(days=1)
            local = datetime.combine(following, window.start, tzinfo=local_zone())
    raise ValueError("aucune ouverture dans l'année : fenêtre mal configurée")
