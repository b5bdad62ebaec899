"""Rebuild the ``runs`` read model from the log.

The read model is derived data: each append upserts the rows of the runs it changed, in the same
transaction as the facts. If it is ever lost or suspect (a bug, a hand edit, a new column), it
can be recomputed by folding the whole log again — which is what :func:`rebuild_summaries` does,
on any :class:`RunStore`, through the store's own :meth:`RunStore.rebuild_summaries` (atomic with
respect to appends on both built-in stores, so it is safe while other tasks and processes
write). ``lifecycle rebuild`` is the command for it.

A run whose dialect is not registered in this process (a user dialect, registered by the
programs that write its runs) cannot be folded here: its row is left exactly as it was, and the
run reported in ``RebuildReport.skipped``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from lifecycle import events as ev
from lifecycle._dialects import dialect as find_dialect
from lifecycle._errors import UnknownDialect, UnknownRun
from lifecycle._replay._replayer import Divergence
from lifecycle._runs import summary_of
from lifecycle._views import Projector, parse_stream

from ._base import RebuildProgress, RunStore, RunSummary

__all__ = ["RebuildReport", "RunsFold", "SkippedRun", "rebuild_summaries"]

_NOT_A_RUN: Final = -1
_SKIPPED: Final = -2  # a stream of a run that is not folded (its dialect is unknown here)


class SkippedRun(msgspec.Struct, frozen=True, kw_only=True):
    """A run the rebuild could not fold, whose row it left as it was: its ``dialect`` is not
    registered in the process that rebuilt (``records`` of its records were read)."""

    run_id: int
    dialect: str
    records: int

    def __str__(self) -> str:
        return f"run {self.run_id}: dialect {self.dialect!r} is not registered in this process"


class RebuildReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`rebuild_summaries` did.

    ``runs`` rows were written, folded from ``records`` records (up to ``position``);
    ``ignored`` of those belong to streams that are not run streams (``run-N``,
    ``run-N/container``). ``added``, ``changed`` and ``removed`` are the run ids whose row was
    missing from the old read model, differed from it, or was in it without a run in the log;
    ``unchanged`` counts the others. ``diverged`` holds the first fact of each run that its
    dialect does not accept: such a run's row is its view just before that fact, except for
    the runs in ``rowless``, whose first fact is not ``Requested`` (they have no row).
    ``skipped`` holds the runs whose dialect is not registered in the rebuilding process: their
    rows were left exactly as they were (and are not counted in ``runs`` or the lists above).
    ``complete`` says whether every run was folded to its end (nothing diverged or skipped).
    ``seconds`` is the time taken.
    """

    store: str
    runs: int
    records: int
    position: int
    ignored: int
    added: list[int]
    changed: list[int]
    removed: list[int]
    unchanged: int
    diverged: list[Divergence]
    rowless: list[int]
    skipped: list[SkippedRun]
    seconds: float

    @property
    def differed(self) -> bool:
        """Whether the old read model differed from the log's."""
        return bool(self.added or self.changed or self.removed)

    @property
    def complete(self) -> bool:
        """Whether every run of the log folded to its end: nothing diverged or was skipped."""
        return not (self.diverged or self.skipped)

    def __str__(self) -> str:
        head = (
            f"rebuilt the read model of {self.store}: {self.runs} runs from {self.records} "
            f"records in {self.seconds:.2f}s; {len(self.added)} added, {len(self.changed)} "
            f"changed, {len(self.removed)} removed, {self.unchanged} unchanged"
        )
        if self.diverged:
            head += f"; {len(self.diverged)} diverged"
        if self.skipped:
            head += f"; {len(self.skipped)} skipped (rows left as they were)"
        lines = [f"  {d}" for d in self.diverged] + [f"  {s}" for s in self.skipped]
        return "\n".join([head, *lines])


class RunsFold:
    """The :class:`~lifecycle._stores.SummaryFold` of the run service's read model: every run's
    view (``Projector(strict=False)``), as :func:`lifecycle._runs.summary_of` makes its row.

    Records of streams that are not run streams are counted and skipped. A run that does not
    fold is kept as it was just before its first invalid fact, and its divergence recorded. A
    run whose ``Requested`` names a dialect not registered in this process is not folded at
    all: it is in :meth:`kept` (the store leaves its row as it is) and :attr:`skipped`.
    ``summaries()`` keeps its rows, and makes again only those of the runs fed since its last
    call (so a store may ask before its write lock, and again, cheaply, inside it).
    """

    def __init__(self) -> None:
        self.projector = Projector(strict=False)
        self.records = 0
        self.ignored = 0
        self.position = 0
        self._run_of: dict[str, int] = {}
        self._skipped: dict[int, list[Any]] = {}  # run id → [its dialect, records read]
        self._skipped_run: dict[str, int] = {}  # a skipped run's stream → its run id
        self._rows: dict[int, RunSummary] = {}
        self._moved: set[int] = set()  # runs fed since the rows were last made

    def feed(self, records: Sequence[ev.Recorded]) -> None:
        if not records:
            return
        run_of = self._run_of
        moved = self._moved
        runs: list[ev.Recorded] = []
        for record in records:
            run_id = run_of.get(record.stream)
            if run_id is None:
                run_id = run_of[record.stream] = self._classify(record)
            if run_id >= 0:
                runs.append(record)
                moved.add(run_id)
            elif run_id == _NOT_A_RUN:
                self.ignored += 1
            else:
                self._skip(record)
        self.projector.feed(runs)  # every run's dialect is known here: see _classify
        self.records += len(records)
        self.position = records[-1].position

    def _classify(self, record: ev.Recorded) -> int:
        """The run id of the first record of its stream; :data:`_NOT_A_RUN` for a stream that
        is not a run's, :data:`_SKIPPED` for a stream of a run whose dialect is unknown here."""
        stream = record.stream
        run_id = _run_id(stream)
        if run_id == _NOT_A_RUN:
            return run_id
        fact = record.event
        if run_id not in self._skipped and isinstance(fact, ev.Requested) and "/" not in stream:
            try:
                find_dialect(fact.dialect)  # what the projector would raise on
            except UnknownDialect:
                self._skipped[run_id] = [fact.dialect, 0]
        if run_id in self._skipped:
            self._skipped_run[stream] = run_id
            return _SKIPPED
        return run_id

    def _skip(self, record: ev.Recorded) -> None:
        self._skipped[self._skipped_run[record.stream]][1] += 1

    @property
    def skipped(self) -> list[SkippedRun]:
        """The runs not folded because their dialect is not registered here, by run id."""
        return [
            SkippedRun(run_id=run_id, dialect=dialect, records=records)
            for run_id, (dialect, records) in sorted(self._skipped.items())
        ]

    def kept(self) -> list[int]:
        """The runs whose rows the store must leave as they are: those :attr:`skipped`."""
        return sorted(self._skipped)

    def summaries(self) -> list[RunSummary]:
        """Every run's row, by run id."""
        rows, folds = self._rows, self.projector.runs
        for run_id in self._moved:
            run = folds.get(run_id)
            if run is not None:  # else its first fact was not Requested: it has no row
                rows[run_id] = summary_of(run.view())
        self._moved.clear()
        return [rows[run_id] for run_id in sorted(rows)]

    def divergences(self) -> list[Divergence]:
        found = [
            Divergence(
                run_id=run_id,
                stream=record.stream,
                position=record.position,
                version=record.version,
                line=None,
                dialect=exc.dialect,
                state=exc.state,
                fact=exc.fact,
                message=str(exc),
            )
            for run_id, (record, exc) in self.projector.errors.items()
        ]
        return sorted(found, key=lambda d: d.position)


def _run_id(stream: str) -> int:
    try:
        return parse_stream(stream)[0]
    except UnknownRun:  # not a run stream
        return _NOT_A_RUN


async def rebuild_summaries(
    store: RunStore, *, progress: RebuildProgress | None = None
) -> RebuildReport:
    """Re-fold every record of ``store`` and replace its read model with the result, atomically
    with respect to appends (see :meth:`RunStore.rebuild_summaries`); report what changed.

    Folding is lenient (``Projector(strict=False)``): a run whose log holds a fact its dialect
    rejects keeps the view it had just before that fact, as listings showed it, and is listed
    in ``diverged``. A run whose dialect is not registered in this process keeps its row
    exactly as it was, and is listed in ``skipped`` (so the rebuild is not ``complete``).
    ``progress(position, head)`` is called as the log is read. Raises ``StoreError`` (the store
    failed, or is read-only), ``CorruptLog`` (a record cannot be read); the read model is left
    as it was then.
    """
    started = time.perf_counter()
    fold = RunsFold()
    before = await store.rebuild_summaries(fold, progress=progress)
    after = {s.run_id: s for s in fold.summaries()}  # the rows written (kept by the fold)
    old = {s.run_id: s for s in before}
    skipped = set(fold.kept())
    added = [run_id for run_id in after if run_id not in old]
    removed = [run_id for run_id in old if run_id not in after and run_id not in skipped]
    changed = [run_id for run_id, s in after.items() if run_id in old and old[run_id] != s]
    diverged = fold.divergences()
    return RebuildReport(
        store=store.url or type(store).__name__,
        runs=len(after),
        records=fold.records,
        position=fold.position,
        ignored=fold.ignored,
        added=sorted(added),
        changed=sorted(changed),
        removed=sorted(removed),
        unchanged=len(after) - len(added) - len(changed),
        diverged=diverged,
        rowless=sorted(
            d.run_id for d in diverged if d.run_id not in after and d.run_id not in skipped
        ),
        skipped=fold.skipped,
        seconds=time.perf_counter() - started,
    )
