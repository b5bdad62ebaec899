"""Schedules: a cron expression in an IANA time zone, with an optional end (issue 16, first part).

Seed 001: "Workflows can run on a schedule (e.g., daily, hourly)"; seed 000: a process with a
schedule waits in **Scheduled** for its next time and ends **Expired** once its end date has
passed. A :class:`Schedule` says when; :meth:`Schedule.due_times` lists the next times, with
cron's own daylight-saving rules (``cronsim``): a daily 01:30 job runs once on the fall-back day
(the first 01:30), a 02:30 job runs at 03:00 on the spring-forward day (02:30 does not exist).
croniter and APScheduler 4 fire twice on fall-back; that is why cronsim.

Not here yet: deploying, building, and the durable scheduler that arms and fires due times.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from cronsim import CronSim, CronSimError

from ._errors import InvalidSchedule

__all__ = ["Schedule", "as_schedule", "end_of"]


class Schedule(msgspec.Struct, frozen=True):
    """When a job runs: ``cron`` (five fields, e.g. ``"0 9 * * 1-5"``) evaluated in ``timezone``
    (an IANA name, default UTC), until ``end`` (an aware datetime, or a date: the end of that
    day in ``timezone``; ``None``: no end). Checked when made."""

    cron: str
    timezone: str = "UTC"
    end: _dt.datetime | _dt.date | None = None  # a date becomes the end of that day

    def __post_init__(self) -> None:
        if not isinstance(self.cron, str) or not isinstance(self.timezone, str):
            raise InvalidSchedule(
                f"cron and timezone are strings: {self.cron!r}, {self.timezone!r}"
            )
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidSchedule(
                f"unknown time zone {self.timezone!r}: use an IANA name such as 'Europe/London'"
            ) from None
        try:
            CronSim(self.cron, _dt.datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as exc:
            raise InvalidSchedule(f"bad cron expression {self.cron!r}: {exc}") from None
        end: object = self.end
        if isinstance(end, _dt.date) and not isinstance(end, _dt.datetime):
            msgspec.structs.force_setattr(self, "end", end_of(end, self.timezone))
        elif end is not None and (not isinstance(end, _dt.datetime) or end.tzinfo is None):
            raise InvalidSchedule(f"end {end!r}: give a date or an aware datetime")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def until(self) -> _dt.datetime | None:
        """``end`` as the aware datetime it is once made (a date was turned into one)."""
        end = self.end
        return end if isinstance(end, _dt.datetime) else None

    def explain(self) -> str:
        """The expression in plain words (cronsim's), with the zone: ``At 09:00 on Monday
        through Friday (Europe/London)``."""
        words = CronSim(self.cron, _dt.datetime(2000, 1, 1, tzinfo=self.zone)).explain()
        end = self.until
        until = f", until {end.isoformat(timespec='minutes')}" if end else ""
        return f"{words} ({self.timezone}{until})"

    def times(self, after: _dt.datetime) -> Iterator[_dt.datetime]:
        """Every due time strictly after ``after`` (aware), in the schedule's zone, until
        ``end``."""
        if after.tzinfo is None:
            raise ValueError("after must be an aware datetime")
        end = self.until
        for due in CronSim(self.cron, after.astimezone(self.zone)):
            if end is not None and due > end:
                return
            yield due

    def due_times(self, after: _dt.datetime, count: int = 3) -> list[_dt.datetime]:
        """The next ``count`` due times after ``after`` (fewer once ``end`` is near)."""
        return list(itertools.islice(self.times(after), count))

    def expired(self, now: _dt.datetime) -> bool:
        """Whether no due time is left after ``now``: the job ends Expired."""
        return next(self.times(now), None) is None

    def to_dict(self) -> dict[str, Any]:
        """As a workflow definition records it (JSON-able)."""
        return {
            "cron": self.cron,
            "timezone": self.timezone,
            "end": self.until.isoformat() if self.until else None,
        }


def as_schedule(value: object) -> Schedule | None:
    """The seed's ``schedule=`` argument as a :class:`Schedule`: a cron string, a
    ``Schedule``, a dict of its fields (as recorded), or ``None``. Raises ``InvalidSchedule``."""
    if value is None or isinstance(value, Schedule):
        return value
    if isinstance(value, str):
        return Schedule(cron=value)
    if isinstance(value, dict):
        end = value.get("end")
        if isinstance(end, str):
            end = _dt.datetime.fromisoformat(end)
        return Schedule(
            cron=str(value.get("cron", "")), timezone=str(value.get("timezone") or "UTC"), end=end
        )
    raise InvalidSchedule(f"a schedule is a cron string or lifecycle.Schedule, not {value!r}")


def end_of(day: _dt.date, timezone: str) -> _dt.datetime:
    """The last moment of ``day`` in ``timezone``: what an end *date* means."""
    return _dt.datetime.combine(day, _dt.time.max, tzinfo=ZoneInfo(timezone))
