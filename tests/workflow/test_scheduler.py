"""The scheduler (issue 16): arming and firing under an injected clock — across both DST changes
in New York and London — end dates, catch-up, pause / resume / undeploy, redeploys, a run started
by hand, and two schedulers on one store. The kill-and-restart campaign is in
``test_scheduler_kill.py``."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import anyio
import pytest

import lifecycle
from lifecycle import Schedule, task, workflow
from lifecycle import events as ev
from lifecycle._workflow._build import definition_of
from lifecycle._workflow._deploy import _record_ready
from lifecycle._workflow._run import execute
from lifecycle._workflow._scheduler import (
    SCHEDULER_LEASE,
    Firing,
    ManualClock,
    Scheduler,
    pause_job,
    resume_job,
    undeploy_job,
)
from lifecycle._workflow._version import register_version

pytestmark = pytest.mark.anyio

UTC = dt.UTC


@task()
def ping() -> str:
    return "pong"


@workflow(name="sched-a")
def sched_a() -> None:
    ping()


@workflow(name="sched-b")
def sched_b() -> None:
    ping()


async def deployed(
    runs: lifecycle.AsyncRuns, wf: Any, schedule: Schedule, definition: dict[str, Any] | None = None
) -> int:
    """Record a deploy of ``wf`` with ``schedule`` (the build's own output, without the build
    subprocess: ``test_deploy`` covers that)."""
    recorded = definition or definition_of(wf.build())
    recorded["schedule"] = schedule.to_dict()
    done = await _record_ready(runs, recorded, "built in the test\n")
    return done.run_id


def at(zone: str, year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=ZoneInfo(zone))


async def walk(
    scheduler: Scheduler, clock: ManualClock, until: dt.datetime, step: dt.timedelta
) -> list[Firing]:
    """Tick every ``step`` until ``until``; every firing comes no earlier than its due time."""
    done: list[Firing] = []
    while clock.now() < until:
        clock.advance(step)
        for firing in await scheduler.tick():
            if firing.what == "fired":
                assert firing.due_at is not None and firing.due_at <= clock.now()
            done.append(firing)
        await settle(scheduler)  # the fired runs end before the clock moves on
    return done


async def settle(scheduler: Scheduler) -> None:
    for run_id in scheduler.fired:
        await scheduler.engine.wait(run_id)


async def armed_runs(runs: lifecycle.AsyncRuns, name: str) -> dict[int, ev.ScheduleArmed]:
    """Each run the scheduler armed for job ``name``, with its last arming."""
    found: dict[int, ev.ScheduleArmed] = {}
    for row in await runs.list(name=name):
        if row.operation != "workflow":
            continue
        arms = [r.event for r in await runs.history(row.run_id) if r.stream == f"run-{row.run_id}"]
        last = [f for f in arms if isinstance(f, ev.ScheduleArmed)]
        if last:
            found[row.run_id] = last[-1]
    return found


@pytest.mark.parametrize(
    ("zone", "start", "expected_a", "expected_b"),
    [
        pytest.param(
            "America/New_York",
            (2026, 3, 7),
            ["03-07 01:30 -5", "03-08 01:30 -5", "03-09 01:30 -4"],
            ["03-07 02:30 -5", "03-08 03:00 -4", "03-09 02:30 -4"],  # 02:30 does not exist
            id="new-york-spring",
        ),
        pytest.param(
            "America/New_York",
            (2026, 10, 31),
            ["10-31 01:30 -4", "11-01 01:30 -4", "11-02 01:30 -5"],  # 01:30 comes twice: once
            ["10-31 02:30 -4", "11-01 02:30 -5", "11-02 02:30 -5"],
            id="new-york-fall",
        ),
        pytest.param(
            "Europe/London",
            (2026, 3, 28),
            ["03-28 01:30 +0", "03-29 02:00 +1", "03-30 01:30 +1"],  # 01:30 does not exist
            ["03-28 02:30 +0", "03-29 02:30 +1", "03-30 02:30 +1"],
            id="london-spring",
        ),
        pytest.param(
            "Europe/London",
            (2026, 10, 24),
            ["10-24 01:30 +1", "10-25 01:30 +1", "10-26 01:30 +0"],  # 01:30 comes twice: once
            ["10-24 02:30 +1", "10-25 02:30 +0", "10-26 02:30 +0"],
            id="london-fall",
        ),
    ],
)
async def test_daily_jobs_fire_once_per_due_time_across_dst(
    zone: str, start: tuple[int, int, int], expected_a: list[str], expected_b: list[str]
) -> None:
    clock = ManualClock(at(zone, *start))
    async with lifecycle.AsyncRuns() as runs:
        await deployed(runs, sched_a, Schedule("30 1 * * *", zone))
        await deployed(runs, sched_b, Schedule("30 2 * * *", zone))
        async with Scheduler(runs, clock=clock) as scheduler:
            done = await walk(scheduler, clock, clock.now() + dt.timedelta(days=3), STEP)
            await settle(scheduler)

        def shown(name: str) -> list[str]:
            return [_local(f.due_at, zone) for f in done if f.what == "fired" and f.name == name]

        assert shown("sched-a") == expected_a
        assert shown("sched-b") == expected_b
        for name in ("sched-a", "sched-b"):
            armed = await armed_runs(runs, name)
            due = Counter(a.due_at for a in armed.values())
            assert all(n == 1 for n in due.values()), due  # one run per due time
            ended = [await runs.get(r) for r in armed]
            completed = [v for v in ended if v.state == "Completed"]
            assert len(completed) == 3 and all(
                v.containers["ping"].state == "Completed" for v in completed
            )
            assert [v.state for v in ended if v.state != "Completed"] == ["Scheduled"]


STEP = dt.timedelta(minutes=20)


def _local(when: dt.datetime | None, zone: str) -> str:
    assert when is not None
    local = when.astimezone(ZoneInfo(zone))
    offset = local.utcoffset()
    assert offset is not None
    hours = int(offset.total_seconds() // 3600)
    return f"{local:%m-%d %H:%M} {hours:+d}"


async def test_the_job_is_scheduled_then_expired_after_its_end_date() -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        job = await deployed(runs, sched_a, Schedule("0 9 * * *", "UTC", dt.date(2026, 6, 3)))
        assert (await runs.get(job)).state == "Ready"
        async with Scheduler(runs, clock=clock) as scheduler:
            first = await scheduler.tick()
            assert [f.what for f in first] == ["armed"]
            assert (await runs.get(job)).state == "Scheduled"
            assert (await runs.get(first[0].run_id or 0)).state == "Scheduled"
            done = await walk(scheduler, clock, dt.datetime(2026, 6, 5, tzinfo=UTC), STEP)
            await settle(scheduler)
        fired = [f.due_at for f in done if f.what == "fired"]
        assert fired == [dt.datetime(2026, 6, d, 9, 0, tzinfo=UTC) for d in (1, 2, 3)]
        assert [f.what for f in done][-1] == "expired"
        view = await runs.get(job)
        assert view.state == "Expired" and view.outcome == "cancelled"
        ledger = [r.event for r in await runs.history(job)]
        assert isinstance(ledger[-1], ev.ScheduleExpired)
        assert [type(f).__name__ for f in ledger].count("ScheduleArmed") == 3
        async with Scheduler(runs, clock=clock) as scheduler:  # an expired job stays so
            clock.advance(dt.timedelta(days=30))
            assert await scheduler.tick() == []


@pytest.mark.parametrize(
    ("policy", "fired", "skipped"),
    [
        ("latest", ["14:00"], ["10:00", "11:00", "12:00", "13:00"]),
        ("all", ["10:00", "11:00", "12:00", "13:00", "14:00"], []),
        ("none", [], ["10:00", "11:00", "12:00", "13:00", "14:00"]),
    ],
)
async def test_catch_up_after_downtime(
    policy: Literal["latest", "all", "none"], fired: list[str], skipped: list[str]
) -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        await deployed(runs, sched_a, Schedule("0 * * * *"))
        async with Scheduler(runs, clock=clock) as scheduler:
            assert [f.what for f in await scheduler.tick()] == ["armed"]  # for 10:00
        clock.set(dt.datetime(2026, 6, 1, 14, 10, tzinfo=UTC))  # no scheduler ran meanwhile
        async with Scheduler(runs, clock=clock, catch_up=policy) as scheduler:
            done = await scheduler.tick()
            await settle(scheduler)

        def hhmm(what: str) -> list[str]:
            return [f"{f.due_at:%H:%M}" for f in done if f.what == what]

        assert hhmm("fired") == fired
        assert hhmm("skipped") == skipped
        assert hhmm("armed")[-1] == "15:00"  # and the next one is armed
        armed = await armed_runs(runs, "sched-a")
        recorded = sorted(f"{t:%H:%M}" for a in armed.values() for t in a.skipped)
        assert recorded == skipped  # the skipped times are facts too
        states = Counter([(await runs.get(r)).state for r in armed])
        assert states == Counter({"Completed": len(fired), "Scheduled": 1})


async def test_pause_resume_and_undeploy() -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        job = await deployed(runs, sched_a, Schedule("0 * * * *"))
        async with Scheduler(runs, clock=clock) as scheduler:
            await scheduler.tick()
            assert await pause_job(runs, "sched-a", by="ann")
            assert not await pause_job(runs, "sched-a")
            paused = await walk(scheduler, clock, dt.datetime(2026, 6, 1, 12, 30, tzinfo=UTC), STEP)
            assert paused == []
            assert (await runs.get(job)).state == "Scheduled"
            assert await resume_job(runs, "sched-a", by="bob", clock=clock)
            assert not await resume_job(runs, "sched-a", clock=clock)
            done = await walk(scheduler, clock, dt.datetime(2026, 6, 1, 14, 30, tzinfo=UTC), STEP)
            await settle(scheduler)
            # not caught up: 10:00-12:00 passed while paused; 13:00 and 14:00 fire
            assert [f"{f.due_at:%H:%M}" for f in done if f.what == "fired"] == ["13:00", "14:00"]
            armed = await armed_runs(runs, "sched-a")
            skipped = sorted(f"{t:%H:%M}" for a in armed.values() for t in a.skipped)
            assert skipped == ["10:00", "11:00", "12:00"]
            facts = [type(r.event).__name__ for r in await runs.history(job)]
            assert "SchedulePaused" in facts and facts[-1] == "ScheduleArmed"

            assert await undeploy_job(runs, "sched-a", by="carol") == job
            view = await runs.get(job)
            assert (view.state, view.reason) == ("Stopped", "undeployed")
            waiting = [
                r
                for r, a in (await armed_runs(runs, "sched-a")).items()
                if (await runs.get(r)).state != "Completed"
            ]
            assert [(await runs.get(r)).state for r in waiting] == ["Stopped"]
            clock.advance(dt.timedelta(hours=5))
            assert await scheduler.tick() == []
        with pytest.raises(lifecycle.UnknownRun, match="Stopped"):
            await pause_job(runs, "sched-a")


async def test_a_redeploy_replaces_the_job_and_a_run_by_hand_changes_nothing() -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        first = await deployed(runs, sched_a, Schedule("0 * * * *"))
        async with Scheduler(runs, clock=clock) as scheduler:
            await scheduler.tick()
            # started by hand (`lifecycle run sched-a`): a run of its own, outside the ledger
            dag = sched_a.build()
            by_hand = await execute(runs, dag, job_version=await register_version(runs.store, dag))
            assert by_hand.state == "Completed"
            done = await walk(scheduler, clock, dt.datetime(2026, 6, 1, 10, 30, tzinfo=UTC), STEP)
            assert [f"{f.due_at:%H:%M}" for f in done if f.what == "fired"] == ["10:00"]
            await settle(scheduler)

            second = await deployed(runs, sched_a, Schedule("30 * * * *"))
            assert second != first
            old = await runs.get(first)
            assert (old.state, old.reason) == ("Stopped", f"redeployed as run {second}")
            done = await walk(scheduler, clock, dt.datetime(2026, 6, 1, 12, 0, tzinfo=UTC), STEP)
            await settle(scheduler)
            assert [f"{f.due_at:%H:%M}" for f in done if f.what == "fired"] == [
                "11:30"
            ]  # from 10:50
        assert (await runs.get(by_hand.run_id)).params.get("deploy_run") is None


async def test_code_that_changed_since_the_deploy_fails_the_run_not_the_scheduler() -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        definition = definition_of(sched_a.build())
        definition["fingerprint"] = "not-the-code-here"
        await deployed(runs, sched_a, Schedule("0 * * * *"), definition)
        async with Scheduler(runs, clock=clock) as scheduler:
            done = await walk(scheduler, clock, dt.datetime(2026, 6, 1, 10, 10, tzinfo=UTC), STEP)
        failed = [f for f in done if f.what == "failed"]
        assert len(failed) == 1 and "deploy it again" in failed[0].detail
        view = await runs.get(failed[0].run_id or 0)
        assert view.state == "Failed" and "changed since it was deployed" in (view.reason or "")


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One store for two schedulers: a SQLite file, or a PostgreSQL database (as two hosts)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    pytest.importorskip("asyncpg")
    from tests._postgres import create_database

    server = request.getfixturevalue("postgres_server")
    return str(anyio.run(create_database, server))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # SQLite and PostgreSQL: asyncio only
async def test_two_schedulers_on_one_store_fire_each_due_time_once(shared_store: str) -> None:
    url = shared_store
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns(url) as runs:
        await deployed(runs, sched_a, Schedule("*/10 * * * *"))
    async with (
        Scheduler(url, clock=clock, lease_ttl=1.0) as one,
        Scheduler(url, clock=clock, lease_ttl=1.0) as two,
    ):
        assert [f.what for f in await one.tick()] == ["armed"]
        assert await two.tick() == [] and not two.leader  # the lease: one fires at a time
        # now both act as if each held the lease (a holder stalled past it): the checks of
        # the store still let one of them arm and fire each due time
        done: list[Firing] = []

        async def ticking(s: Scheduler) -> None:
            for _ in range(3):
                await s.runs.store.release_lease(SCHEDULER_LEASE, one.owner)
                await s.runs.store.release_lease(SCHEDULER_LEASE, two.owner)
                done.extend(await s.tick())

        for _ in range(12):
            clock.advance(dt.timedelta(minutes=5))
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticking, one)
                tg.start_soon(ticking, two)
        await settle(one)
        await settle(two)
    fired = Counter(f.due_at for f in done if f.what == "fired")
    async with lifecycle.AsyncRuns(url) as runs:
        armed = await armed_runs(runs, "sched-a")
        started = [
            a.due_at
            for r, a in armed.items()
            if a.due_at is not None and (await runs.get(r)).state != "Scheduled"
        ]
    assert sorted(started) == [
        dt.datetime(2026, 6, 1, 9, 40, tzinfo=UTC) + dt.timedelta(minutes=10 * i) for i in range(6)
    ]
    assert Counter(a.due_at for a in armed.values()) == Counter(
        set(started) | {dt.datetime(2026, 6, 1, 10, 40, tzinfo=UTC)}
    )
    assert set(fired) == set(started)


# -- what a review found: each case the scheduler once got wrong ------------------------------


async def test_a_job_past_its_end_while_no_scheduler_ran_expires() -> None:
    """With ``catch_up="none"`` the waiting run itself must end (its tasks too): Expired."""
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        job = await deployed(runs, sched_a, Schedule("0 * * * *", "UTC", dt.date(2026, 6, 1)))
        async with Scheduler(runs, clock=clock) as scheduler:
            [armed] = await scheduler.tick()
        clock.set(dt.datetime(2026, 6, 3, tzinfo=UTC))
        async with Scheduler(runs, clock=clock, catch_up="none") as scheduler:
            done = await scheduler.tick()
        assert [f.what for f in done][-1] == "expired"
        assert (await runs.get(job)).state == "Expired"
        waiting = await runs.get(armed.run_id or 0)
        assert waiting.state == "Expired" and waiting.containers["ping"].state == "Stopped"


async def test_resuming_after_the_end_date_expires_the_job() -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        job = await deployed(runs, sched_a, Schedule("0 * * * *", "UTC", dt.date(2026, 6, 1)))
        async with Scheduler(runs, clock=clock) as scheduler:
            await scheduler.tick()
            await pause_job(runs, "sched-a")
            clock.set(dt.datetime(2026, 6, 2, 12, tzinfo=UTC))
            assert await resume_job(runs, "sched-a", clock=clock)
            done = await scheduler.tick()
        assert [f.what for f in done if f.what != "skipped"] == ["expired"]
        assert (await runs.get(job)).state == "Expired"


@pytest.mark.parametrize("policy", ["latest", "all"])
async def test_a_resume_never_catches_up_a_job_that_was_never_armed(
    policy: Literal["latest", "all"],
) -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        await deployed(runs, sched_a, Schedule("0 * * * *"))
        await pause_job(runs, "sched-a")  # before any scheduler armed it
        clock.set(dt.datetime(2026, 6, 1, 14, 30, tzinfo=UTC))
        await resume_job(runs, "sched-a", clock=clock)
        async with Scheduler(runs, clock=clock, catch_up=policy) as scheduler:
            done = await scheduler.tick()
        assert [(f.what, f"{f.due_at:%H:%M}") for f in done] == [("armed", "15:00")]


async def test_catch_up_across_the_repeated_hour_lists_both_of_its_due_times() -> None:
    """London, 2026-10-25: 01:30 comes twice (BST, then GMT); an hourly job down over it skips
    both, as two instants."""
    zone = "Europe/London"
    clock = ManualClock(dt.datetime(2026, 10, 24, 23, 45, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        await deployed(runs, sched_a, Schedule("30 * * * *", zone))
        async with Scheduler(runs, clock=clock) as scheduler:
            await scheduler.tick()  # armed for 01:30 BST (00:30Z)
        clock.set(dt.datetime(2026, 10, 25, 2, 45, tzinfo=UTC))
        async with Scheduler(runs, clock=clock) as scheduler:
            done = await scheduler.tick()
            await settle(scheduler)
    skipped = [f.due_at for f in done if f.what == "skipped"]
    fired = [f.due_at for f in done if f.what == "fired"]
    assert [f"{t:%H:%M}" for t in fired] == ["02:30"]  # UTC: 02:30 GMT
    assert [f"{t.astimezone(UTC):%H:%M}" for t in skipped if t is not None] == [
        "00:30",  # 01:30 BST
        "01:30",  # 01:30 GMT
    ]


async def test_latest_fires_once_after_more_missed_times_than_it_lists() -> None:
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        await deployed(runs, sched_a, Schedule("* * * * *"))
        async with Scheduler(runs, clock=clock) as scheduler:
            await scheduler.tick()
        clock.advance(dt.timedelta(minutes=2500))
        async with Scheduler(runs, clock=clock) as scheduler:
            done = await scheduler.tick()
            await settle(scheduler)
    fired = [f.due_at for f in done if f.what == "fired"]
    assert fired == [clock.now().replace(second=0)]  # the latest, once
    assert len([f for f in done if f.what == "skipped"]) == 1000  # MAX_SKIPPED listed


async def test_an_older_deploy_left_active_is_retired_and_undeploy_ends_them_all() -> None:
    """A deploy that died before it retired the one it replaced leaves two active deploys of a
    name: the scheduler retires the older, and undeploy ends every one."""
    clock = ManualClock(dt.datetime(2026, 6, 1, 9, 30, tzinfo=UTC))
    async with lifecycle.AsyncRuns() as runs:
        old = await deployed(runs, sched_a, Schedule("0 * * * *"))
        definition = definition_of(sched_a.build())
        definition["schedule"] = Schedule("30 * * * *").to_dict()
        newer = await runs.create(  # as _record_ready writes it, without the retire
            "datatailr", operation="deploy", name="sched-a", params={"workflow": definition}
        )
        async with Scheduler(runs, clock=clock) as scheduler:
            done = await scheduler.tick()
        assert [(f.what, f.deploy_run) for f in done] == [("armed", newer.run_id)]
        assert (await runs.get(old)).state == "Stopped"
        third = await runs.create(
            "datatailr", operation="deploy", name="sched-a", params={"workflow": definition}
        )
        await undeploy_job(runs, "sched-a")
        assert {(await runs.get(r)).state for r in (newer.run_id, third.run_id)} == {"Stopped"}


REDEPLOYED = """
from lifecycle import task, workflow

@task()
def say() -> str:
    return "{word}"

@workflow(name="redeployed", schedule="0 * * * *")
def redeployed() -> None:
    say()
"""


async def test_a_running_scheduler_fires_the_code_of_a_redeploy(tmp_path: Path) -> None:
    """The scheduler process loaded version 1's module; version 2 changed the file: it loads
    it again rather than fail every firing until it is restarted."""
    path = tmp_path / f"redeployed_{uuid.uuid4().hex[:8]}.py"
    path.write_text(REDEPLOYED.format(word="one"), encoding="utf-8")
    clock = ManualClock(dt.datetime.now(UTC))
    async with lifecycle.AsyncRuns() as runs:
        await lifecycle.deploy(runs, str(path))
        async with Scheduler(runs, clock=clock) as scheduler:
            for word in ("one", "two"):
                if word == "two":
                    path.write_text(REDEPLOYED.format(word=word), encoding="utf-8")
                    assert (await lifecycle.deploy(runs, str(path))).job_version == 2
                ticked = await scheduler.tick()
                assert [f.what for f in ticked] == ["armed"], ticked
                [armed] = ticked
                assert armed.due_at is not None
                clock.set(armed.due_at)
                fired = [f for f in await scheduler.tick() if f.what in ("fired", "failed")]
                assert [f.what for f in fired] == ["fired"], fired
                run = await scheduler.engine.wait(fired[0].run_id or 0)
                assert run.state == "Completed"
                result = await lifecycle.load_result(runs, run.run_id, "say")
                assert result == word
