"""The scheduler (issue 16, third part): deployed jobs fire at their due times, exactly once.

Everything it decides is a fact in the store, so it can be killed at any moment, restarted, or run
on several hosts at once:

- **The job** is its latest deploy run (``lifecycle deploy``: operation ``deploy``, Ready), whose
  definition holds the schedule. Its stream is the schedule's ledger.
- **Arming** due time ``T`` is one atomic append: a new run of the workflow — ``Requested``, then
  ``ScheduleArmed(due_at=T)``: it waits in **Scheduled** — and, on the deploy run,
  ``ScheduleArmed(due_at=T, run_id=that run)`` (Ready → Scheduled). The deploy run's version is
  checked and the event ids derive from (deploy run, ``T``): arming twice — two schedulers, or a
  scheduler and its own earlier life — is refused, never written twice.
- **Firing** at ``T``: the engine starts the armed run (:meth:`Engine.start`, which takes the
  run's lease first — one engine only), and it goes Scheduled → Pending → … like any run.
- **The next** due time is armed once the armed run has started (or ended).
- **Expired**: when the schedule has no due time left before its end, ``ScheduleExpired`` ends the
  deploy run (and an armed run still waiting) **Expired**.

Catch-up, for due times missed while no scheduler ran (or a run came due while one was busy):
``catch_up="latest"`` (the default) fires the latest due time once and records the others as
skipped (``ScheduleArmed(skipped=...)`` on the armed run, which is re-armed to the latest time);
``"all"`` fires every missed time, one run each; ``"none"`` fires only a due time at most
``grace`` late and re-arms the next one ahead. At most ``MAX_SKIPPED`` skipped times are listed.

Schedulers on one store: each tick, a scheduler takes (or renews) the lease ``SCHEDULER_LEASE``
(a key no run has) and only the holder arms and fires; the others stand by and take over within
the lease's time to live once it dies. The checks above make a stalled former holder harmless.

Paused jobs (``SchedulePaused``, :func:`pause_job`) are left alone; :func:`resume_job`
records ``ScheduleResumed(at=now)``, and nothing before that point is caught up (the due times
it passed over are recorded as skipped). :func:`undeploy_job` ends the job and its waiting run
``Stopped`` (the ledger first, so a concurrent arming is refused). A redeploy (``_deploy``)
retires the job it replaces and arms after the last time that one fired. A run started by hand
(``lifecycle run NAME``) is not in the ledger and changes nothing here.

Time comes from a clock object (:class:`SystemClock`; tests use :class:`ManualClock`, and
:class:`FastClock` runs a schedule faster than real time to try it out).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, Literal, Protocol, Self

import anyio
import anyio.abc
import anyio.lowlevel
import msgspec

from lifecycle import events as ev
from lifecycle._engine import Adapter, Container, Engine
from lifecycle._engine._engine import WAITING
from lifecycle._errors import (
    ConcurrencyError,
    InvalidTransition,
    LifecycleError,
    StreamClosed,
    UnknownRun,
)
from lifecycle._leases import DEFAULT_LEASE_TTL, new_owner
from lifecycle._logging import get_logger
from lifecycle._runs import AsyncRuns
from lifecycle._schedule import Schedule, as_schedule
from lifecycle._stores import RunSummary
from lifecycle._views import run_stream

from ._history import OPERATION as WORKFLOW_OPERATION
from ._store import StoreLike, open_runs

__all__ = [
    "MAX_SKIPPED",
    "SCHEDULER_LEASE",
    "Clock",
    "FastClock",
    "Firing",
    "ManualClock",
    "Scheduler",
    "SystemClock",
    "last_fired",
    "ledger",
    "pause_job",
    "resume_job",
    "retire",
    "undeploy_job",
]

SCHEDULER_LEASE: Final = 0
"""The lease key the firing scheduler holds (run ids start at 1, so no run has it)."""

MAX_SKIPPED: Final = 1000
"""Skipped due times listed in one ``ScheduleArmed`` at most (a year of a minutely job is not)."""

DEPLOY: Final = "deploy"  # the deploy run's operation (lifecycle._workflow._deploy)

_log: Final = get_logger("lifecycle.scheduler")


class Clock(Protocol):
    """Where the scheduler's time comes from: ``now()`` (aware) and ``sleep(seconds)``."""

    def now(self) -> _dt.datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(_dt.UTC)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told (``advance``, ``set``): tests fire a schedule of a
    year in a second. ``sleep`` only yields."""

    def __init__(self, start: _dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self._now = start

    def now(self) -> _dt.datetime:
        return self._now

    def set(self, when: _dt.datetime) -> None:
        self._now = when

    def advance(self, delta: _dt.timedelta | float) -> _dt.datetime:
        self._now += delta if isinstance(delta, _dt.timedelta) else _dt.timedelta(seconds=delta)
        return self._now

    async def sleep(self, seconds: float) -> None:
        await anyio.lowlevel.checkpoint()


class FastClock:
    """A clock ``speed`` times faster than the machine's, from ``start`` (default: now) at
    machine time ``origin`` (default: now): a schedule of every minute fires every second at
    ``speed=60``. For trying a schedule out, and for tests that run schedulers in several
    processes (give them all the same ``start`` and ``origin``: they agree on the time)."""

    def __init__(
        self,
        speed: float,
        *,
        start: _dt.datetime | None = None,
        origin: float | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, not {speed}")
        self.speed = speed
        self.origin = time.time() if origin is None else origin
        self.start = start or _dt.datetime.fromtimestamp(self.origin, _dt.UTC)

    def now(self) -> _dt.datetime:
        return self.start + _dt.timedelta(seconds=(time.time() - self.origin) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds / self.speed)


class Firing(msgspec.Struct, frozen=True, kw_only=True):
    """One thing a tick did: ``what`` is ``armed``, ``fired``, ``skipped`` (``due_at`` passed
    over), ``expired`` or ``failed`` (the deployed code could not be loaded; ``detail`` says
    why), for job ``name`` (deploy run ``deploy_run``) and run ``run_id``."""

    what: Literal["armed", "fired", "skipped", "expired", "failed"]
    name: str
    deploy_run: int
    run_id: int | None
    due_at: _dt.datetime | None
    detail: str = ""


class _Job:
    """What the ledger of one deploy run says."""

    def __init__(self, deploy_run: int, records: Sequence[ev.Recorded]) -> None:
        head = records[0].event
        assert isinstance(head, ev.Requested)
        self.deploy_run = deploy_run
        self.name = head.name
        self.created_at = records[0].recorded_at
        self.job_version = head.job_version
        definition = head.params.get("workflow")
        self.definition: dict[str, Any] = definition if isinstance(definition, dict) else {}
        after = head.params.get("after")  # the last time the job this deploy replaced fired
        self.after = _dt.datetime.fromisoformat(after) if isinstance(after, str) else None
        self.schedule: Schedule | None = None
        try:
            self.schedule = as_schedule(self.definition.get("schedule"))
        except LifecycleError:
            self.schedule = None  # recorded by a newer or broken writer: not ours to fire
        self.armed: ev.ScheduleArmed | None = None
        self.paused = False
        self.resumed_at: _dt.datetime | None = None  # the last resume (None: never paused)
        self.position = 0  # the ledger has been read up to here
        self.apply(records)

    def apply(self, records: Sequence[ev.Recorded]) -> None:
        """Fold more of the ledger in (a long-lived job's grows by one fact per firing: the
        scheduler reads only what is new)."""
        for record in records:
            fact = record.event
            if isinstance(fact, ev.ScheduleArmed):
                self.armed = fact
            elif isinstance(fact, ev.SchedulePaused):
                self.paused = True
            elif isinstance(fact, ev.ScheduleResumed):
                self.paused = False
                self.resumed_at = (fact.at or record.recorded_at).astimezone(_dt.UTC)
            self.position = max(self.position, record.position)

    def firing(
        self,
        what: Literal["armed", "fired", "skipped", "expired", "failed"],
        run_id: int | None,
        due_at: _dt.datetime | None,
        detail: str = "",
    ) -> Firing:
        """What a tick did for this job."""
        return Firing(
            what=what,
            name=self.name,
            deploy_run=self.deploy_run,
            run_id=run_id,
            due_at=due_at,
            detail=detail,
        )

    @property
    def tasks(self) -> list[str]:
        return [str(t["name"]) for t in self.definition.get("tasks") or []]


class Scheduler:
    """Arms and fires the scheduled jobs of one store (see the module docstring).

    ``async with Scheduler(store) as scheduler: await scheduler.run()`` runs until cancelled;
    ``tick()`` does one pass (what tests call, with a :class:`ManualClock`). Fired runs execute
    on an engine of this scheduler (``adapter``, ``max_parallel``, ``lease_ttl`` as
    :class:`~lifecycle.Engine` takes them); leaving the block waits for them.

    ``catch_up``: ``latest`` | ``all`` | ``none``; ``grace``: seconds a due time may be late and
    still count as on time; ``interval``: seconds between ticks at most.
    """

    def __init__(
        self,
        store: StoreLike | AsyncRuns = None,
        *,
        clock: Clock | None = None,
        adapter: str | Adapter = "inprocess",
        max_parallel: int | None = None,
        catch_up: Literal["latest", "all", "none"] = "latest",
        grace: float = 60.0,
        interval: float = 1.0,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> None:
        if catch_up not in ("latest", "all", "none"):
            raise ValueError(f"catch_up is 'latest', 'all' or 'none', not {catch_up!r}")
        self._store = store
        self.clock: Clock = clock or SystemClock()
        self.catch_up = catch_up
        self.grace = _dt.timedelta(seconds=grace)
        self.interval = interval
        self.lease_ttl = lease_ttl
        self.owner = f"scheduler:{new_owner()}"
        self._adapter = adapter
        self._max_parallel = max_parallel
        self._runs: AsyncRuns | None = store if isinstance(store, AsyncRuns) else None
        self._opened: Any = None
        self._engine: Engine | None = None
        self.leader = False
        self.fired: list[int] = []
        self._jobs: dict[int, _Job] = {}  # deploy run → its ledger, as far as read

    @property
    def runs(self) -> AsyncRuns:
        if self._runs is None:
            raise RuntimeError("use the Scheduler in `async with`")
        return self._runs

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("use the Scheduler in `async with`")
        return self._engine

    async def __aenter__(self) -> Self:
        if self._runs is None:
            self._opened = open_runs(self._store)
            self._runs = await self._opened.__aenter__()
        self._engine = Engine(
            self.runs,
            adapter=self._adapter,
            max_parallel=self._max_parallel,
            lease_ttl=self.lease_ttl,
        )
        await self._engine.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._engine is not None:
                await self._engine.__aexit__(exc_type, exc, tb)
        finally:
            with anyio.CancelScope(shield=True):
                if self.leader and self._runs is not None:
                    await self.runs.store.release_lease(SCHEDULER_LEASE, self.owner)
                    self.leader = False
                if self._opened is not None:
                    await self._opened.__aexit__(exc_type, exc, tb)

    # -- the loop -----------------------------------------------------------------------------

    async def run(
        self,
        *,
        report: Callable[[Firing], object] | None = None,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Tick until cancelled: every ``interval`` seconds, or sooner when a due time comes.
        ``report`` is called with each thing a tick did."""
        task_status.started()
        while True:
            try:
                for firing in await self.tick():
                    if report is not None:
                        report(firing)
            except Exception:  # the store away (a restart): try again after the interval
                _log.exception("scheduler tick failed")
                self._wake = None
            await self.clock.sleep(self._next_wait())

    def _next_wait(self) -> float:
        if self._wake is None:
            return self.interval
        left = (self._wake - self.clock.now()).total_seconds()
        return max(0.0, min(self.interval, left))

    _wake: _dt.datetime | None = None

    async def tick(self) -> list[Firing]:
        """One pass over every scheduled job: arm, fire, skip, expire what is due now. Returns
        what it did (nothing when another scheduler holds the lease)."""
        self.leader = await self.runs.store.acquire_lease(
            SCHEDULER_LEASE, self.owner, self.lease_ttl
        )
        if not self.leader:
            return []
        self._wake = None
        done: list[Firing] = []
        for row in await self._deploys():
            try:
                done += await self._job(row)
            except (ConcurrencyError, InvalidTransition) as exc:
                # another writer moved the job or its run meanwhile: decide again next tick
                _log.info("scheduler conflict", job=row.name, error=str(exc))
            except Exception:  # one job's trouble (a store error) must not stop the others
                _log.exception("scheduler tick failed for a job", job=row.name)
        for firing in done:
            _log.info(f"schedule {firing.what}", **msgspec.structs.asdict(firing))
        return done

    async def _deploys(self) -> list[RunSummary]:
        """The latest active deploy run of every job."""
        rows = [
            *await self.runs.list(state="Scheduled"),
            *await self.runs.list(state="Ready"),
        ]
        latest: dict[str, RunSummary] = {}
        stale: list[RunSummary] = []
        for row in sorted(rows, key=lambda r: r.run_id):
            if row.operation == DEPLOY:
                if row.name in latest:  # a deploy that died before it retired the one before
                    stale.append(latest[row.name])
                latest[row.name] = row
        for row in stale:
            newer = latest[row.name].run_id
            await retire(self.runs, row.run_id, by="scheduler", reason=f"redeployed as run {newer}")
        return sorted(latest.values(), key=lambda r: r.run_id)

    # -- one job ------------------------------------------------------------------------------

    async def _job(self, row: RunSummary) -> list[Firing]:
        done: list[Firing] = []
        for _ in range(MAX_SKIPPED):  # "all" fires each missed time: a bounded loop per tick
            job = await self._ledger(row.run_id)
            if job.schedule is None or job.paused:
                return done
            step = await self._step(job)
            if not step:
                return done
            done += step
            if step[-1].what in ("expired", "armed") and not _due(step[-1], self.clock.now()):
                return done
        return done

    async def _ledger(self, deploy_run: int) -> _Job:
        """The job's ledger, read from where this scheduler last read it."""
        stream = run_stream(deploy_run)
        job = self._jobs.get(deploy_run)
        if job is None:
            job = self._jobs[deploy_run] = _Job(deploy_run, await self.runs.store.read([stream]))
        else:
            job.apply(await self.runs.store.read([stream], after=job.position))
        return job

    async def _step(self, job: _Job) -> list[Firing]:
        """The next thing to do for ``job``, done; ``[]`` when nothing is due. Due times are
        compared as instants (in UTC): in a zone's repeated hour two due times have the same
        wall time, and aware datetimes of one zone compare by wall time."""
        assert job.schedule is not None
        now = self.clock.now().astimezone(_dt.UTC)
        resumed = job.resumed_at  # nothing before it is caught up: it was paused then
        if job.armed is None or job.armed.run_id is None:
            # from the deploy: a due time passed since then is caught up (an injected clock
            # may stand before the deploy's own time: then from now)
            # and never again a time the deploy it replaced fired
            start = _latest(min(job.created_at, now), job.after)
            return await self._arm(job, after=_latest(start, resumed))
        run_id = job.armed.run_id
        head = await self.runs.store.read([run_stream(run_id)])
        arms = [r.event for r in head if isinstance(r.event, ev.ScheduleArmed)]
        due = arms[-1].due_at if arms else job.armed.due_at
        waiting = _waiting(head) and not await self._taken(run_id)
        if due is None:
            return []
        due = due.astimezone(_dt.UTC)
        if not waiting:
            return await self._arm(job, after=_latest(due, resumed))
        if due > now:
            self._wake = due if self._wake is None else min(self._wake, due)
            return []
        # every due time from the armed one to now: the first MAX_SKIPPED kept, the last known
        paused_over: list[_dt.datetime] = []
        times: list[_dt.datetime] = []
        last = due
        for when in itertools.chain([due], job.schedule.times(due)):
            t = when.astimezone(_dt.UTC)
            if t > now:
                break
            last = t
            if resumed is not None and t < resumed:
                if len(paused_over) < MAX_SKIPPED:
                    paused_over.append(t)
            elif len(times) < MAX_SKIPPED:
                times.append(t)
        target: _dt.datetime | None
        if not times:  # all of them passed while the job was paused
            target = None
        elif self.catch_up == "all":
            target = times[0]
        elif self.catch_up == "latest" or now - last <= self.grace:
            target = last
        else:
            target = None
        # "all" leaves the later ones for the runs armed after this one
        later = set(times[1:]) if self.catch_up == "all" else set()
        skipped = (*paused_over, *(t for t in times if t != target and t not in later))
        skipped = skipped[:MAX_SKIPPED]
        done = [job.firing("skipped", run_id, t) for t in skipped]
        if target is None:
            ahead = next(job.schedule.times(now), None)
            if ahead is None:
                return [*done, *await self._expire(job, waiting_run=run_id)]
            target = ahead.astimezone(_dt.UTC)
        if target != due or skipped:  # re-armed: for a later time, or listing the skipped
            await self.runs.record(
                run_id,
                ev.ScheduleArmed(due_at=target, skipped=skipped),
                event_ids=[f"schedule:{job.deploy_run}:{run_id}:{target.isoformat()}"],
            )
            done.append(job.firing("armed", run_id, target))
        if target > now:
            return done
        fired = await self._fire(job, run_id, target)
        return [*done, *([fired] if fired else [])]

    async def _taken(self, run_id: int) -> bool:
        """Whether an engine has taken the run (this one, or another that holds its lease —
        or held it and died: then reconciling ends the run), though it has not written yet."""
        if self.engine.has(run_id):
            return True
        return any(lease.run_id == run_id for lease in await self.runs.store.leases())

    async def _arm(self, job: _Job, *, after: _dt.datetime) -> list[Firing]:
        assert job.schedule is not None
        found = next(job.schedule.times(after), None)
        if found is None:
            return await self._expire(job, waiting_run=None)
        due = found.astimezone(_dt.UTC)
        view = await self.runs.create(
            "datatailr",
            operation=WORKFLOW_OPERATION,
            name=job.name,
            containers=job.tasks,
            params={"workflow": job.definition, "deploy_run": job.deploy_run},
            job_version=job.job_version,
            then=[ev.ScheduleArmed(due_at=due)],
            along=(job.deploy_run, lambda run_id: [ev.ScheduleArmed(due_at=due, run_id=run_id)]),
            key=f"schedule:{job.deploy_run}:{due.isoformat()}",
        )
        return [job.firing("armed", view.run_id, due)]

    async def _fire(self, job: _Job, run_id: int, due: _dt.datetime) -> Firing | None:
        """Start the armed run (``None`` if another engine has it)."""
        fired = job.firing("fired", run_id, due)
        try:
            containers = _containers(job)
        except Exception as exc:  # the deployed code cannot be loaded here: the run fails
            detail = f"cannot load the deployed code of {job.name!r}: {exc}"
            if await self.runs.store.acquire_lease(run_id, self.owner, self.lease_ttl):
                try:
                    await _fail(self.runs, run_id, detail)
                finally:
                    await self.runs.store.release_lease(run_id, self.owner)
            return msgspec.structs.replace(fired, what="failed", detail=detail)
        if await self.engine.start(run_id, containers=containers) is None:
            return None
        self.fired.append(run_id)
        return fired

    async def _expire(self, job: _Job, *, waiting_run: int | None) -> list[Firing]:
        assert job.schedule is not None
        fact = ev.ScheduleExpired(end=job.schedule.until)
        if waiting_run is not None:
            await _end_waiting(self.runs, waiting_run, fact)
        await self.runs.record(job.deploy_run, fact)
        return [job.firing("expired", waiting_run, None)]


def _waiting(head: Sequence[ev.Recorded]) -> bool:
    """Whether a run's stream says it was created (and armed) and nothing more: what
    ``Engine.start`` still starts."""
    return all(isinstance(r.event, (ev.Requested, *WAITING)) for r in head)


def _latest(when: _dt.datetime, resumed: _dt.datetime | None) -> _dt.datetime:
    """Arm from ``when``, but never from before the last resume."""
    return when if resumed is None else max(when, resumed)


async def _end_waiting(runs: AsyncRuns, run_id: int, fact: ev.Fact) -> None:
    """End a run that never started with ``fact`` (``ScheduleExpired``): its containers, still
    waiting, end ``Stopped`` (a terminal run has only terminal containers), all in one append."""
    view = await runs.get(run_id)
    stopped = ev.Stopped(reason="expired")
    items: list[tuple[str | None, list[ev.Fact]]] = [
        (name, [stopped]) for name, c in view.containers.items() if not c.terminal
    ]
    await runs.record_many(run_id, [*items, (None, [fact])])


def _due(firing: Firing, now: _dt.datetime) -> bool:
    return firing.due_at is not None and firing.due_at <= now


def _containers(job: _Job) -> list[Container]:
    """The engine's containers for the deployed definition, from its code loaded here."""
    from ._define import deployed_workflow  # noqa: PLC0415
    from ._run import _container  # noqa: PLC0415

    dag = deployed_workflow(job.name, job.definition).build()
    wanted = job.definition.get("fingerprint")
    if wanted and dag.fingerprint != wanted:  # loaded before a redeploy changed the file?
        dag = deployed_workflow(job.name, job.definition, fresh=True).build()
    if wanted and dag.fingerprint != wanted:
        raise LifecycleError(
            f"its code changed since it was deployed (version {job.job_version}): deploy it again"
        )
    return [_container(spec, None) for spec in dag]


async def _fail(runs: AsyncRuns, run_id: int, reason: str) -> None:
    from lifecycle._leases import end_run  # noqa: PLC0415

    await end_run(runs, run_id, reason)


async def ledger(
    runs: AsyncRuns, deploy_run: int
) -> tuple[str, bool, tuple[int, _dt.datetime | None] | None]:
    """What a job's ledger says: the deploy run's state, whether it is paused, and the run
    armed last with the time it waits for (``None`` if none was armed)."""
    view = await runs.get(deploy_run)
    job = _Job(deploy_run, await runs.store.read([run_stream(deploy_run)]))
    if job.armed is None or job.armed.run_id is None:
        return view.state, job.paused, None
    head = await runs.store.read([run_stream(job.armed.run_id)])
    arms = [r.event for r in head if isinstance(r.event, ev.ScheduleArmed)]
    due = arms[-1].due_at if arms and _waiting(head) else None
    return view.state, job.paused, (job.armed.run_id, due)


# -- pause, resume, undeploy ----------------------------------------------------------------------


async def _current(runs: AsyncRuns, name: str) -> _Job:
    rows = [r for r in await runs.list(name=name) if r.operation == DEPLOY]
    active = [r for r in rows if r.state in ("Ready", "Scheduled")]
    if not active:
        raise UnknownRun(
            f"no deployed job named {name!r} in {runs.store.url}"
            + (f" (its last deploy run {rows[0].run_id} is {rows[0].state})" if rows else "")
        )
    row = max(active, key=lambda r: r.run_id)
    return _Job(row.run_id, await runs.store.read([run_stream(row.run_id)]))


async def pause_job(runs: AsyncRuns, name: str, *, by: str = "user") -> bool:
    """Stop firing job ``name`` until :func:`resume_job` (``SchedulePaused``). ``False`` if it was
    paused already. Raises ``UnknownRun`` when no such job is deployed."""
    job = await _current(runs, name)
    if job.paused:
        return False
    await runs.record(job.deploy_run, ev.SchedulePaused(by=by))
    return True


async def resume_job(
    runs: AsyncRuns, name: str, *, by: str = "user", clock: Clock | None = None
) -> bool:
    """Fire job ``name`` again, from its first due time after now: ``ScheduleResumed(at=now)``.
    The due times that passed while it was paused are recorded as skipped by the scheduler,
    never caught up (whatever its catch-up policy). ``False`` if it was not paused."""
    job = await _current(runs, name)
    if not job.paused:
        return False
    now = (clock or SystemClock()).now().astimezone(_dt.UTC)
    await runs.record(job.deploy_run, ev.ScheduleResumed(by=by, at=now))
    return True


async def undeploy_job(
    runs: AsyncRuns, name: str, *, by: str = "user", reason: str = "undeployed"
) -> int:
    """End job ``name``: its deploy run and the run armed for its next time (if it has not
    started) end **Stopped**. Returns the deploy run's id. Raises ``UnknownRun``."""
    job = await _current(runs, name)
    for row in await runs.list(name=name):  # the current one, and any a dead deploy left
        if row.operation == DEPLOY and row.state in ("Ready", "Scheduled"):
            await retire(runs, row.run_id, by=by, reason=reason)
    return job.deploy_run


async def last_fired(runs: AsyncRuns, deploy_run: int) -> _dt.datetime | None:
    """The last due time job ``deploy_run`` fired (its run started), if any: a deploy that
    replaces it arms after that, so a redeploy near a due time never fires it twice."""
    head = await runs.store.read([run_stream(deploy_run)])
    armed = [r.event.run_id for r in head if isinstance(r.event, ev.ScheduleArmed)]
    for run_id in reversed(armed):
        if run_id is None:
            continue
        records = await runs.store.read([run_stream(run_id)])
        if not _waiting(records):
            arms = [r.event for r in records if isinstance(r.event, ev.ScheduleArmed)]
            return arms[-1].due_at if arms else None
    return None


async def retire(runs: AsyncRuns, deploy_run: int, *, by: str, reason: str) -> None:
    """End a deploy run and its waiting armed run ``Stopped`` (undeploy, or a new deploy of the
    job replacing it). The ledger is closed first: a scheduler arming at the same moment is
    refused (the deploy run has ended), so no armed run outlives its job."""
    with contextlib.suppress(StreamClosed):  # ended meanwhile (Expired)
        await runs.abort(deploy_run, by=by, reason=reason)
    head = await runs.store.read([run_stream(deploy_run)])
    armed = [r.event.run_id for r in head if isinstance(r.event, ev.ScheduleArmed)]
    if armed and armed[-1] is not None and _waiting(await runs.store.read([run_stream(armed[-1])])):
        with contextlib.suppress(InvalidTransition):  # it started meanwhile: it runs on
            await runs.abort(armed[-1], by=by, reason=reason)
