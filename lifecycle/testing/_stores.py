"""``check_event_store(make_store)``: the conformance suite every store runs.

Each guarantee of :mod:`lifecycle._stores._base` is one check, and a check is an ``async``
function of ``make_store`` that raises ``AssertionError`` naming itself at the first failure.
``STORE_CHECKS`` hold the checks any store must pass (in :mod:`._store_log_checks`,
:mod:`._store_write_checks`, :mod:`._store_argument_checks` and :mod:`._store_run_checks`,
one module per side of the interface); ``PROCESS_CHECKS`` (:mod:`._store_processes`) the ones
that open the store again — after closing it, and from other OS processes, one of which is
killed with SIGKILL mid-write. The Hypothesis model test is in :mod:`._store_machine`. A
backend's tests parametrize over the lists, one test id per check::

    @pytest.mark.parametrize(("name", "check"), STORE_CHECKS, ids=[n for n, _ in STORE_CHECKS])
    async def test_store(name: str, check: StoreCheck, tmp_path: Path) -> None:
        await check(f"sqlite:///{tmp_path}/runs.db")
"""

from __future__ import annotations

from ._store_argument_checks import ARGUMENT_CHECKS
from ._store_log_checks import LOG_CHECKS
from ._store_processes import PROCESS_CHECKS
from ._store_run_checks import RUN_CHECKS
from ._store_support import MakeStore, StoreCheck, StoreFactory, fresh_url, is_shareable
from ._store_write_checks import WRITE_CHECKS

__all__ = [
    "PROCESS_CHECKS",
    "STORE_CHECKS",
    "MakeStore",
    "StoreCheck",
    "StoreFactory",
    "check_event_store",
]

STORE_CHECKS: list[tuple[str, StoreCheck]] = [
    *LOG_CHECKS,
    *WRITE_CHECKS,
    *ARGUMENT_CHECKS,
    *RUN_CHECKS,
]
"""``(name, check)`` for every check a store must pass in one process, in the order run:
reading (order, versions, facts, waiting, tailing), writing (expected versions, idempotency,
atomicity), the edges of every argument (limits, bad writes, facts that cannot be read
back), then the run-service layer (read model, blobs, leases, run ids)."""


async def check_event_store(make_store: MakeStore, *, processes: bool | None = None) -> None:
    """Run every store check on fresh stores from ``make_store``; raise ``AssertionError``
    naming the check at the first failure.

    ``make_store`` is either

    - a factory (plain or ``async``) called once per check, returning a fresh, empty store
      that is not yet entered — a ``RunStore`` object or the URL of one
      (``lambda: f"sqlite:///{tmp_path}/{uuid4().hex}.db"``); or
    - a URL. ``memory://`` opens a new store each time. For any other URL the suite derives one
      fresh URL per check from it by renaming the file: ``sqlite:////tmp/t/runs.db`` gives
      ``sqlite:////tmp/t/runs-ordering-1f2e3d4c.db`` and so on, next to it. Point it into a
      directory you can throw away (pytest's ``tmp_path``): the files are left there.

    ``processes`` says whether to run ``PROCESS_CHECKS`` too: reopening the store, writers in
    several OS processes, and a writer killed mid-write. They open ``store.url`` (with default
    options) from other processes, so they need a store that lives outside the process.
    ``None`` (the default) runs them when ``make_store`` is a URL other than ``memory://``;
    pass ``True`` to run them on the stores a factory makes.

    A check that needs what the store cannot give (``processes=True`` on ``memory://``)
    raises ``ValueError``.
    """
    if processes is None:
        processes = isinstance(make_store, str) and is_shareable(make_store)
    elif processes:
        await fresh_url(make_store, "probe")  # raises ValueError now, not after all the rest
    for _, check in STORE_CHECKS:
        await check(make_store)
    from ._store_machine import check_store_model  # noqa: PLC0415  (Hypothesis, only when run)

    await check_store_model(make_store)
    if processes:
        for _, check in PROCESS_CHECKS:
            await check(make_store)
