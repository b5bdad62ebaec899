"""``lifecycle.Engine``: submit runs of containers, wait for them, abort them.

Two ways to hold an engine, both structured (every task lives in a task group):

- ``async with lifecycle.Engine(runs, ...) as engine:`` — runs start at ``submit`` and execute in
  the engine's task group; leaving the block waits for them (or, on an exception, ends them
  ``InfrastructureFailed(reason="engine_stopped")``). While it is open the engine also
  reconciles runs whose engine died, every ``lease_ttl / 4`` seconds: a dead engine's runs end
  at most ``1.25 × lease_ttl`` after its death (``lifecycle._leases.LeaseTimes``).
- without ``async with`` (DESIGN §8's snippet): ``submit`` records the run and takes its lease;
  the run executes inside the first ``wait(run_id)`` (or ``execute``), in the caller's task.
  Call ``wait`` soon: a run nobody drives is ended ``engine_lost`` once its lease expires.

``execute(...)`` drives one run to its end in the current task, and supports
``run = await task_group.start(engine.execute, ...)`` (started once ``Requested`` is written).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final, Literal, Self

import anyio
import anyio.abc

from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._dialects import Dialect
from lifecycle._dialects import dialect as find_dialect
from lifecycle._errors import InvalidTransition, UnknownRun
from lifecycle._leases import DEFAULT_LEASE_TTL, LeaseTimes, new_owner, reconcile
from lifecycle._logging import get_logger
from lifecycle._runs import AsyncRuns
from lifecycle._views import RunView, StreamFold, run_stream

from ._adapter import Adapter, load_adapter
from ._driver import RunDriver, Settings
from ._results import find_result
from ._spec import Container, plan

__all__ = ["Engine"]

_log = get_logger("lifecycle.engine")

WAITING: Final = (ev.ScheduleArmed, ev.LogRecorded)
"""What a run may hold after ``Requested`` and still be started by ``Engine.start``."""


class Engine:
    """Drives runs of containers through an adapter, recording the canonical facts.

    ``adapter`` is an entry-point name (``"inprocess"``, ``"subprocess"``) or an ``Adapter``
    instance; ``max_parallel`` bounds the containers executing at once across all runs of this
    engine (default: the number of CPUs, at least 4). ``start_timeout`` bounds the time from
    handing a container to the adapter to its ``ExecutionStarted`` (``None``: no bound);
    ``lease_ttl`` (seconds, ≤ 60) bounds how soon another running engine ends a run of this one
    if it dies: at most ``1.25 × lease_ttl`` later (``lease`` holds the schedule: renewals every
    ``ttl / 3``, checks every ``ttl / 4``).

    Raises ``LifecycleError`` (listing the installed adapters) for an unknown adapter name.
    """

    def __init__(
        self,
        runs: AsyncRuns,
        *,
        adapter: str | Adapter = "inprocess",
        max_parallel: int | None = None,
        start_timeout: float | None = 180.0,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        flush_interval: float = 0.1,
        watch_interval: float | None = None,
        owner: str | None = None,
    ) -> None:
        if max_parallel is not None and max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        if not 0 < lease_ttl <= 60:
            raise ValueError("lease_ttl must be in (0, 60] seconds")
        self.runs = runs
        self._own_adapter = not isinstance(adapter, Adapter)
        self.adapter = load_adapter(adapter)
        self.max_parallel = max_parallel or max(4, os.cpu_count() or 1)
        self.owner = owner or new_owner()
        self.settings = Settings(
            runs=runs,
            adapter=self.adapter,
            slots=anyio.Semaphore(self.max_parallel),
            owner=self.owner,
            start_timeout=start_timeout,
            lease=LeaseTimes(lease_ttl),
            flush_interval=flush_interval,
            watch_interval=watch_interval if watch_interval is not None else runs.poll_interval,
        )
        self._drivers: dict[int, RunDriver] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._reconciled = False
        self.log = _log.bind(owner=self.owner, adapter=self.adapter.name)

    @property
    def lease(self) -> LeaseTimes:
        """The lease schedule: time to live, renewals, checks, and the lost-engine bound."""
        return self.settings.lease

    # -- lifetime -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        await self.reconcile()  # runs of engines that died while none was running
        tg.start_soon(self._reconcile_periodically)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None, "Engine.__aexit__ without __aenter__"
        try:
            if exc_type is None:
                while active := [d for d in self._drivers.values() if not d.done.is_set()]:
                    await active[0].done.wait()
            tg.cancel_scope.cancel()
            # the body's own exception propagates as it is, not wrapped in an ExceptionGroup
            await tg.__aexit__(None, None, None)
            return None
        finally:
            with anyio.CancelScope(shield=True):
                await self.aclose()

    async def aclose(self) -> None:
        """Release the adapter if the engine made it (from a name)."""
        if self._own_adapter:
            await self.adapter.aclose()

    async def _reconcile_periodically(self) -> None:
        while True:
            await anyio.sleep(self.settings.lease.check_every)
            await self.reconcile()

    async def reconcile(self) -> list[RunView]:
        """End runs whose engine died (lease expired) with ``InfrastructureFailed(engine_lost)``."""
        self._reconciled = True
        try:
            return await reconcile(self.runs, owner=self.owner, ttl=self.settings.lease.ttl)
        except Exception:
            self.log.warning("reconcile failed", exc_info=True)
            return []

    # -- runs ---------------------------------------------------------------------------------

    async def submit(
        self,
        dialect: str | Dialect,
        *,
        containers: Sequence[Container],
        operation: str | None = None,
        name: str = "",
        params: dict[str, Any] | None = None,
        job_version: int | None = None,
        mode: Literal["new", "rerun", "resume"] = "new",
        original_run_id: int | None = None,
        root_run_id: int | None = None,
    ) -> RunView:
        """Record a new run of ``containers`` and start it (see the module docstring for when it
        executes). Returns the run as just created.

        Refused before anything is written: ``ValueError`` for duplicate names, a dependency on
        a container that is not submitted, a dependency cycle, a container the adapter cannot
        run, several containers for an operation without container streams (e.g. Qualytics
        ``sync``: submit exactly one; its facts are the run's), or a ``cached_from`` run whose
        container did not succeed; ``UnknownDialect`` / ``InvalidTransition`` / ``UnknownRun``
        as ``AsyncRuns.create`` and ``get`` raise them.
        """
        driver = await self._prepare(
            dialect,
            containers=containers,
            operation=operation,
            name=name,
            params=params,
            job_version=job_version,
            mode=mode,
            original_run_id=original_run_id,
            root_run_id=root_run_id,
        )
        if self._tg is not None:
            self._tg.start_soon(self._drive, driver)
        return await self.runs.get(driver.run_id)

    async def execute(
        self,
        dialect: str | Dialect,
        *,
        containers: Sequence[Container],
        task_status: anyio.abc.TaskStatus[RunView] = anyio.TASK_STATUS_IGNORED,
        **options: Any,
    ) -> RunView:
        """Submit a run and drive it to its end in the current task; return its final view.
        With ``await task_group.start(engine.execute, ...)``, the start value is the new run."""
        driver = await self._prepare(dialect, containers=containers, **options)
        task_status.started(await self.runs.get(driver.run_id))
        await self._drive(driver)
        return await self.runs.get(driver.run_id)

    async def start(self, run_id: int, *, containers: Sequence[Container]) -> RunView | None:
        """Start a run recorded earlier and still waiting: created and not started, perhaps
        armed (``ScheduleArmed``: a run the scheduler armed, ``lifecycle._workflow._scheduler``).
        ``containers`` are its containers' work, one per name it was created with. It executes
        as a submitted run does (see the module docstring) and is driven by this engine alone:
        ``None`` when it has already been started, or another engine holds its lease.

        Raises ``UnknownRun``, and ``ValueError`` (nothing written) for containers that do not
        match the run's, or for what ``submit`` refuses."""
        head = await self.runs.store.read([run_stream(run_id)])
        if not head or not isinstance(head[0].event, ev.Requested):
            raise UnknownRun(f"no run {run_id} in {self.runs.store.url}")
        requested = head[0].event
        prior = [r.event for r in head[1:]]
        d = find_dialect(requested.dialect)
        containers = list(containers)
        names = sorted(c.name for c in containers)
        folded, cached = await self._check(d, requested.operation, containers)
        if not folded and names != sorted(requested.containers):
            raise ValueError(
                f"run {run_id} has containers {sorted(requested.containers)}, not {names}"
            )
        if run_id in self._drivers or not all(isinstance(f, WAITING) for f in prior):
            return None  # this engine has it, or it started (or ended) already
        if not self._reconciled:
            await self.reconcile()
        if not await self.runs.store.acquire_lease(run_id, self.owner, self.settings.lease.ttl):
            return None
        view = await self.runs.get(run_id)
        if view.version != len(head) or any(c.version != 1 for c in view.containers.values()):
            await self.runs.store.release_lease(run_id, self.owner)  # started meanwhile
            return None
        driver = self._driver(
            view, d, requested, containers, cached=cached, folded=folded, prior=prior
        )
        if self._tg is not None:
            self._tg.start_soon(self._drive, driver)
        return view

    def has(self, run_id: int) -> bool:
        """Whether this engine holds run ``run_id`` (submitted or started, not yet ended)."""
        driver = self._drivers.get(run_id)
        return driver is not None and not driver.done.is_set()

    async def wait(self, run_id: int) -> RunView:
        """The run's view once it is terminal. A run of this engine not yet executing (no
        ``async with``) executes now, in this task; another engine's run is polled (and ended
        ``engine_lost`` if its lease expires meanwhile). Raises ``UnknownRun``."""
        driver = self._drivers.get(run_id)
        if driver is not None:
            if driver.driving or self._tg is not None:
                await driver.done.wait()
            else:
                await self._drive(driver)
            return await self.runs.get(run_id)
        while True:
            view = await self.runs.get(run_id)
            if view.terminal:
                return view
            await anyio.sleep(self.runs.poll_interval)
            if any(lease.run_id == run_id for lease in await self.runs.store.leases()):
                await reconcile(self.runs, owner=self.owner, ttl=self.settings.lease.ttl)

    async def abort(self, run_id: int, *, by: str = "user", reason: str = "user") -> RunView:
        """Stop an active run: its containers' work is cancelled (processes terminated, then
        killed after the adapter's grace period) and every stream ends with
        ``StopRequested`` → ``StoppingStarted`` → ``Stopped`` where the dialect accepts them
        (Domino: StopRequested → Stopping → Stopped; Qualytics: Aborted). Returns the final
        view. A run driven by another engine is stopped through the store (its engine notices
        and stops its work). Raises ``StreamClosed`` if the run has already ended."""
        driver = self._drivers.get(run_id)
        if driver is None or driver.done.is_set():
            return await self.runs.abort(run_id, by=by, reason=reason)
        if not driver.driving:  # submitted, never executed: nothing to cancel
            view = await self.runs.abort(run_id, by=by, reason=reason)
            await self.runs.store.release_lease(run_id, self.owner)
            driver.done.set()
            self._drivers.pop(run_id, None)
            return view
        await driver.stop(by, reason)
        await driver.done.wait()
        return await self.runs.get(run_id)

    # -- inside -------------------------------------------------------------------------------

    async def _drive(self, driver: RunDriver) -> None:
        try:
            await driver.drive()
        finally:
            self._drivers.pop(driver.run_id, None)

    async def _prepare(
        self,
        dialect: str | Dialect,
        *,
        containers: Sequence[Container],
        operation: str | None = None,
        name: str = "",
        params: dict[str, Any] | None = None,
        job_version: int | None = None,
        mode: Literal["new", "rerun", "resume"] = "new",
        original_run_id: int | None = None,
        root_run_id: int | None = None,
    ) -> RunDriver:
        d = find_dialect(dialect)
        containers = list(containers)
        folded, cached = await self._check(d, operation or "run", containers)
        if not self._reconciled:
            await self.reconcile()
        view = await self.runs.create(
            d,
            operation=operation,
            containers=[] if folded else [c.name for c in containers],
            name=name,
            params=params,
            job_version=job_version,
            mode=mode,
            original_run_id=original_run_id,
            root_run_id=root_run_id,
        )
        await self.runs.store.acquire_lease(view.run_id, self.owner, self.settings.lease.ttl)
        requested = ev.Requested(
            dialect=d.name,
            operation=view.operation,
            name=view.name,
            containers=tuple(view.containers),
            params=dict(view.params),
            mode=mode,
            original_run_id=original_run_id,
            root_run_id=root_run_id,
            job_version=job_version,
        )
        return self._driver(view, d, requested, containers, cached=cached, folded=folded)

    def _driver(
        self,
        view: RunView,
        d: Dialect,
        requested: ev.Requested,
        containers: list[Container],
        *,
        cached: dict[str, tuple[ev.ResultStored | None, int]],
        folded: bool,
        prior: Sequence[ev.Fact] = (),
    ) -> RunDriver:
        driver = RunDriver(
            self.settings,
            view=view,
            dialect=d,
            requested=requested,
            containers=containers,
            cached=cached,
            folded=folded,
            prior=prior,
        )
        self._drivers[view.run_id] = driver
        driver.log.info("run submitted", operation=view.operation, containers=len(containers))
        return driver

    async def _check(
        self, d: Dialect, operation: str, containers: list[Container]
    ) -> tuple[bool, dict[str, tuple[ev.ResultStored | None, int]]]:
        """Every check of a submission that needs no write: whether the run folds its one
        container into itself, and the results reused by cached containers."""
        plan(containers)
        folded = not d.has_containers(operation)
        if folded and len(containers) != 1:
            raise ValueError(
                f"{d.name} {operation} runs have no container streams: submit exactly "
                f"one container (its facts become the run's), not {len(containers)}"
            )
        _check_canonical(d, operation, folded)
        for c in containers:
            if c.cached_from is None and c.kind not in self.adapter.kinds:
                raise ValueError(
                    f"container {c.name!r} is a {c.kind}, which adapter {self.adapter.name!r} "
                    f"cannot run (it runs: {', '.join(sorted(self.adapter.kinds))})"
                )
        cached = {
            c.name: await self._cached(c, c.cached_from)
            for c in containers
            if c.cached_from is not None
        }
        return folded, cached

    async def _cached(self, c: Container, source: int) -> tuple[ev.ResultStored | None, int]:
        """The result to reuse for ``c`` from run ``source``, and the run that computed it."""
        view = await self.runs.get(source)
        own = view.containers.get(c.name)
        if own is None and view.containers:
            raise ValueError(f"container {c.name!r}: run {source} has no container of that name")
        outcome, origin = (own.outcome, own.cached_from) if own else (view.outcome, None)
        if outcome != "succeeded":
            raise ValueError(
                f"container {c.name!r}: it did not succeed in run {source} "
                f"({own.state if own else view.state}), so its result cannot be reused"
            )
        try:
            result = await find_result(self.runs, source, c.name)
        except UnknownRun as exc:
            raise ValueError(str(exc)) from exc
        return result, origin or source


def _check_canonical(d: Dialect, operation: str, folded: bool) -> None:
    """Refuse a dialect whose machines do not accept the engine's canonical sequence (a user's
    dialect that does not tolerate the phases it does not model): the engine could not record
    its runs, nor end them."""
    machines = [d] if folded or d.containers is None else [d, d.containers]
    for machine in machines:
        for ending in (ev.ExecutionSucceeded(), ev.InfrastructureFailed(reason="check")):
            acc = StreamFold(machine, "check")
            try:
                acc.apply(ev.Requested(dialect=d.name, operation=operation))
                for fact in (*START_SEQUENCE, ending):
                    acc.apply(fact)
            except InvalidTransition as exc:
                raise ValueError(
                    f"dialect {machine.name!r} does not accept the engine's canonical sequence "
                    f"(ResourcesRequested, ResourcesAssigned, PreparationStarted, "
                    f"ExecutionStarted, then an ending): {exc}. Tolerate the phases it does not "
                    "model (tolerate={...}) to run it on the engine."
                ) from exc
