"""Schedules (issue 16, first part): cron in an IANA zone with cron's DST rules, an end date,
the seed's ``schedule=`` argument recorded with the workflow, and ``job get`` / ``job ls``
showing it in plain words with its next due times."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import lifecycle
from lifecycle import InvalidSchedule, Schedule

from .cli._support import cli

NY, LONDON = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")


def _days(schedule: Schedule, start: dt.datetime, n: int) -> list[str]:
    return [t.isoformat() for t in schedule.due_times(start, n)]


def test_new_york_fall_back_runs_a_daily_0130_job_once() -> None:
    """2026-11-01: 01:30 happens twice (EDT, then EST); cron runs the job once, at the first."""
    daily = Schedule("30 1 * * *", "America/New_York")
    assert _days(daily, dt.datetime(2026, 10, 31, 12, tzinfo=NY), 3) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
        "2026-11-03T01:30:00-05:00",
    ]


def test_new_york_spring_forward_runs_a_0230_job_at_0300() -> None:
    """2026-03-08: 02:30 does not exist; cron runs the job when the gap ends, at 03:00."""
    daily = Schedule("30 2 * * *", "America/New_York")
    assert _days(daily, dt.datetime(2026, 3, 7, 12, tzinfo=NY), 2) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_london_both_changes() -> None:
    daily = Schedule("30 1 * * *", "Europe/London")
    assert _days(daily, dt.datetime(2026, 3, 28, 12, tzinfo=LONDON), 2) == [
        "2026-03-29T02:00:00+01:00",  # 01:00 → 02:00: 01:30 does not exist
        "2026-03-30T01:30:00+01:00",
    ]
    assert _days(daily, dt.datetime(2026, 10, 24, 12, tzinfo=LONDON), 2) == [
        "2026-10-25T01:30:00+01:00",  # once, though 01:30 happens twice
        "2026-10-26T01:30:00+00:00",
    ]


def test_an_end_date_ends_the_due_times_and_the_schedule_expires() -> None:
    every_day = Schedule("0 9 * * *", "Europe/London", dt.date(2026, 12, 10))
    assert every_day.end == dt.datetime.combine(dt.date(2026, 12, 10), dt.time.max, tzinfo=LONDON)
    start = dt.datetime(2026, 12, 8, 12, tzinfo=LONDON)
    assert len(every_day.due_times(start, 10)) == 2  # the 9th and the 10th
    assert not every_day.expired(start)
    assert every_day.expired(dt.datetime(2026, 12, 10, 10, tzinfo=LONDON))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("61 * * * *",), "bad cron expression"),
        (("0 9 * * *", "Mars/Olympus"), "unknown time zone"),
        (("0 9 * * *", "UTC", dt.datetime(2027, 1, 1)), "aware datetime"),
    ],
)
def test_bad_schedules_are_refused_naming_what(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(InvalidSchedule, match=match):
        Schedule(*args)  # type: ignore[arg-type]


def test_the_explanation_is_plain_words() -> None:
    assert Schedule("0 9 * * 1-5", "Europe/London").explain() == (
        "At 09:00 on Monday through Friday (Europe/London)"
    )


def test_a_bad_schedule_fails_at_the_decorator() -> None:
    with pytest.raises(InvalidSchedule):

        @lifecycle.workflow(name="never", schedule="every day at nine")
        def never() -> None: ...


def test_job_get_and_ls_show_the_schedule_with_next_due_times(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    @lifecycle.task()
    def hello() -> str:
        return "hi"

    @lifecycle.workflow(name="nine_am", schedule=Schedule("0 9 * * 1-5", "Europe/London"))
    def nine_am() -> None:
        hello()

    nine_am(local_run=True, store=url)
    detail = json.loads(cli("job", "get", "nine_am", "--json", store=url).stdout)
    assert detail["schedule"]["cron"] == "0 9 * * 1-5"
    assert detail["schedule"]["explain"] == "At 09:00 on Monday through Friday (Europe/London)"
    due = [dt.datetime.fromisoformat(t) for t in detail["schedule"]["next_due"]]
    assert len(due) == 3 and all(t.astimezone(LONDON).hour == 9 for t in due)
    assert all(t.astimezone(LONDON).weekday() < 5 for t in due)
    shown = cli("job", "get", "nine_am", store=url).stdout
    assert "At 09:00 on Monday through Friday" in shown and "next due:" in shown
    listed = cli("job", "ls", store=url).stdout
    assert "SCHEDULE" in listed and "0 9 * * 1-5" in listed
