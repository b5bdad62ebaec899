"""Leases: no run stays active forever.

An engine takes a lease on every run it drives (``RunStore.acquire_lease``) and renews it every
third of its time to live. If the engine dies — killed, its machine lost — the lease expires, and
the next engine to start, or ``runs.reconcile()``, ends the run and its active containers with
``InfrastructureFailed(reason="engine_lost")`` (Domino: ``Error``; Datatailr: ``Failed``;
Qualytics: ``Failure``). A reconciler first takes the expired lease over itself, so two of them
never end the same run twice. Runs without a lease (recorded by an orchestrator of the user's own)
are never touched.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import secrets
import socket
from typing import TYPE_CHECKING, Final

from lifecycle import events as ev
from lifecycle._errors import InvalidTransition, UnknownRun
from lifecycle._logging import get_logger

if TYPE_CHECKING:
    from lifecycle._runs import AsyncRuns
    from lifecycle._views import RunView

__all__ = ["DEFAULT_LEASE_TTL", "end_run", "new_owner", "reconcile"]

DEFAULT_LEASE_TTL: Final = 30.0
"""Seconds an engine's lease lives without renewal: a dead engine's runs end within that."""

_log = get_logger("lifecycle.engine")


def new_owner() -> str:
    """A lease owner id unique to this engine: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


async def end_run(runs: AsyncRuns, run_id: int, reason: str) -> RunView:
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


async def reconcile(
    runs: AsyncRuns, *, owner: str | None = None, reason: str = "engine_lost"
) -> list[RunView]:
    """End the active runs whose lease has expired (their engine died); return their views.

    Takes each expired lease over first, so concurrent reconcilers (engines, processes) end a
    run once. Releases the lease of runs that are already terminal.
    """
    me = owner or new_owner()
    now = _dt.datetime.now(_dt.UTC)
    ended: list[RunView] = []
    for lease in await runs.store.leases():
        if lease.expires_at > now:
            continue
        if not await runs.store.acquire_lease(lease.run_id, me, DEFAULT_LEASE_TTL):
            continue  # another reconciler took it first
        try:
            view = await runs.get(lease.run_id)
            if not view.terminal:
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
