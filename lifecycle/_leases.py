"""Leases: no run stays active forever, and nothing of a dead engine keeps running.

An engine takes a lease on every run it drives (``RunStore.acquire_lease``) and renews it every
third of its time to live. If the engine dies — killed, its machine lost — the lease expires, and
an engine that checks (every quarter of the time to live while it runs, and when it starts), or
``runs.reconcile()``, ends the run and its active containers with
``InfrastructureFailed(reason="engine_lost")`` (Domino: ``Error``; Datatailr: ``Failed``;
Qualytics: ``Failure``). A reconciler first takes the expired lease over itself, so two of them
never end the same run twice. Runs without a lease (recorded by an orchestrator of the user's own)
are never touched.

Before it ends a lost run, the reconciler kills what the dead engine left running on this
machine: the processes of every active container that recorded its identity in
``ExecutionStarted(process=...)`` (pid *and* start time, :mod:`lifecycle._processes`). The
``subprocess`` adapter's watchdog normally did that already, the moment the engine died. (An
engine that stalls past its lease — its event loop blocked for ``ttl`` — is taken for dead the
same way: its run ends, its containers are killed, and it stops its own work when its next
renewal finds the lease taken.)

How soon (:class:`LeaseTimes`): a dead engine's lease expires at most ``ttl`` after its death (it
may have renewed just before), and a running engine checks every ``ttl / 4``: its runs are ended
at most ``1.25 × ttl`` after the death (37.5 s with the default 30 s), plus one reconcile pass.

This module sits below the engine and beside the store's leases: the run service
(``AsyncRuns.reconcile``) and the engine both import it, and it imports neither.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import secrets
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio.to_thread

from lifecycle import events as ev
from lifecycle._errors import InvalidTransition, UnknownRun
from lifecycle._logging import get_logger
from lifecycle._processes import kill_leftovers

if TYPE_CHECKING:
    from lifecycle._stores import RunStore
    from lifecycle._views import RunView

__all__ = [
    "DEFAULT_LEASE_TTL",
    "LeaseTimes",
    "RunService",
    "end_run",
    "kill_what_was_left",
    "new_owner",
    "reconcile",
]

DEFAULT_LEASE_TTL: Final = 30.0
"""Seconds an engine's lease lives without renewal (see :class:`LeaseTimes` for the bound)."""


_log: Final = get_logger("lifecycle.engine")  # structlog itself loads on the first log call


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    """When an engine renews its leases and looks for lost ones, from the lease's ``ttl``.

    ``renew_every`` (``ttl / 3``): a live engine's lease survives one failed renewal.
    ``check_every`` (``ttl / 4``): how often a running engine reconciles.
    ``worst_case`` (``ttl + check_every`` = ``1.25 × ttl``): the longest a dead engine's run
    stays active while another engine runs — its lease expires at most ``ttl`` after the death,
    and the next check comes at most ``check_every`` later — plus the time of that one pass.
    """

    ttl: float

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    @property
    def check_every(self) -> float:
        return self.ttl / 4

    @property
    def worst_case(self) -> float:
        return self.ttl + self.check_every


class RunService(Protocol):
    """What reconciling needs of ``AsyncRuns`` (named here so this module need not import it)."""

    @property
    def store(self) -> RunStore: ...

    async def get(self, run_id: int) -> RunView: ...

    async def record(
        self, run_id: int, facts: ev.Fact | Iterable[ev.Fact], *, container: str | None = None
    ) -> Sequence[Any]: ...


def new_owner() -> str:
    """A lease owner id unique to this engine: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


async def end_run(runs: RunService, run_id: int, reason: str) -> RunView:
    """End every active container of the run, then the run, with
    ``InfrastructureFailed(reason)``. Streams that ended meanwhile are skipped."""
    view = await runs.get(run_id)
    fact = ev.InfrastructureFailed(reason=reason)
    for name, container in view.containers.items():
        if not container.terminal:
            # ended meanwhile (StreamClosed), or it cannot fail there: leave it
            with contextlib.suppress(InvalidTransition):
                await runs.record(run_id, fact, container=name)
    view = await runs.get(run_id)
    if not view.terminal:
        with contextlib.suppress(InvalidTransition):
            await runs.record(run_id, fact)
        view = await runs.get(run_id)
    return view


async def kill_what_was_left(runs: RunService, view: RunView) -> dict[str, list[int]]:
    """Kill the processes still running of the run's active containers (the run's own stream
    too, for runs whose one container's facts are the run's): those that recorded their
    identity in ``ExecutionStarted(process=...)``. Returns the pids killed per stream."""
    streams = [f"run-{view.run_id}"] if not view.terminal else []
    streams += [f"run-{view.run_id}/{n}" for n, c in view.containers.items() if not c.terminal]
    identities: dict[str, str] = {}
    for record in await runs.store.read(streams):
        if isinstance(record.event, ev.ExecutionStarted) and record.event.process:
            identities[record.stream] = record.event.process
    killed: dict[str, list[int]] = {}
    for stream, identity in identities.items():
        pids = await anyio.to_thread.run_sync(kill_leftovers, identity)
        if pids:
            killed[stream] = pids
            _log.warning("left-over processes killed", stream=stream, pids=pids, process=identity)
    return killed


async def reconcile(
    runs: RunService,
    *,
    owner: str | None = None,
    reason: str = "engine_lost",
    ttl: float = DEFAULT_LEASE_TTL,
) -> list[RunView]:
    """End the active runs whose lease has expired (their engine died); return their views.

    Takes each expired lease over first (for ``ttl``), so concurrent reconcilers (engines,
    processes) end a run once; kills what the dead engine left running of it; then ends it.
    Releases the lease of runs that are already terminal.
    """
    me = owner or new_owner()
    now = _dt.datetime.now(_dt.UTC)
    ended: list[RunView] = []
    for lease in await runs.store.leases():
        if lease.expires_at > now:
            continue
        if not await runs.store.acquire_lease(lease.run_id, me, ttl):
            continue  # another reconciler took it first
        try:
            view = await runs.get(lease.run_id)
            if not view.terminal:
                await kill_what_was_left(runs, view)
                view = await end_run(runs, lease.run_id, reason)
                _log.warning(
                    "run reconciled",
                    run_id=lease.run_id,
                    lost_owner=lease.owner,
                    state=view.state,
                    reason=reason,
                )
                ended.append(view)
        except UnknownRun:
            pass
        finally:
            await runs.store.release_lease(lease.run_id, me)
    return ended
