"""Golden histories: replay a directory of recorded logs under a dialect, one report per history.

Like Temporal's replayer: record production histories (``lifecycle export``, or bare facts one
per line), keep them in the repository, and let CI replay them under the dialect as edited. A
history that no longer folds is reported with its first divergence — file, line, state, fact —
so a dialect change that would reject real logs fails a test instead of a production run.

Reading and folding are :func:`lifecycle._replay.replay` (its ``read_log`` checks every line);
this module only walks the directory, splits each file's report into one report per run, and
turns them into pytest parameters.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle._dialects import Dialect
from lifecycle._errors import CorruptLog
from lifecycle._replay import Divergence, replay
from lifecycle._views import RunView

if TYPE_CHECKING:
    from _pytest.mark import ParameterSet

__all__ = ["HistoryReport", "assert_replays", "golden_params", "replay_histories"]

SUFFIXES = (".jsonl", ".ndjson")
"""The files a directory replay reads (the export format's usual names)."""


@dataclass(frozen=True, slots=True)
class HistoryReport:
    """One recorded history (a run of one file) replayed under a dialect.

    ``view`` is the derived view (for a diverged run, as of just before its divergence);
    ``divergence`` the first fact that does not fit (with its line, state and fact); ``corrupt``
    the line that could not be read, for a file that could not be replayed at all (then
    ``run_id`` is ``None``). ``id`` names the history in test ids: the file's path relative to
    the directory replayed, with ``#run-N`` when the file holds several runs.
    """

    file: str
    id: str
    run_id: int | None
    view: RunView | None = None
    divergence: Divergence | None = None
    corrupt: CorruptLog | None = None

    @property
    def ok(self) -> bool:
        """True when the whole history folded under the dialect."""
        return self.divergence is None and self.corrupt is None and self.view is not None

    def problem(self) -> str:
        """What went wrong, in one line with the file and line (``""`` when ``ok``)."""
        if self.corrupt is not None:
            return f"{self.file}:{self.corrupt.line}: cannot be read: {self.corrupt.why}"
        d = self.divergence
        if d is not None:
            where = f"{self.file}:{d.line}" if d.line is not None else self.file
            return (
                f"{where}: {d.fact} is not accepted in state {d.state!r} by {d.dialect} "
                f"({d.stream} version {d.version}, position {d.position})"
            )
        if self.view is None:
            return f"{self.file}: run {self.run_id} has no view (it never began with Requested)"
        return ""

    def check(self) -> RunView:
        """The view, or ``AssertionError`` naming the file, line, state and fact."""
        if not self.ok:
            raise AssertionError(self.problem())
        assert self.view is not None
        return self.view

    def __str__(self) -> str:
        return self.id


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no recorded histories at {path} (expected a file or directory)")
    return sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())


def _reports(file: Path, name: str, dialect: str | Dialect | None) -> Iterator[HistoryReport]:
    try:
        report = replay(file, dialect)
    except CorruptLog as exc:
        yield HistoryReport(file=str(file), id=name, run_id=None, corrupt=exc)
        return
    runs = sorted({*report.views, *(d.run_id for d in report.divergences)})
    for run_id in runs:
        yield HistoryReport(
            file=str(file),
            id=name if len(runs) == 1 else f"{name}#run-{run_id}",
            run_id=run_id,
            view=report.views.get(run_id),
            divergence=report.divergence(run_id),
        )


def replay_histories(
    path: str | os.PathLike[str], dialect: str | Dialect | None = None
) -> list[HistoryReport]:
    """Replay every recorded history under ``path`` — a JSONL file, or a directory searched
    recursively for ``*.jsonl`` / ``*.ndjson`` — under ``dialect`` (``None``: the one each run's
    ``Requested`` names), and report each run of each file: its view or its first divergence.

    A file is either ``Recorded`` envelopes (what ``lifecycle export`` writes; it may hold many
    runs) or bare facts, one per line (one run). A line that cannot be read makes one failing
    report for its file. Raises ``FileNotFoundError`` when ``path`` does not exist and
    ``UnknownDialect`` for a dialect name that is not registered.
    """
    root = Path(path)
    found: list[HistoryReport] = []
    for file in _files(root):
        name = file.name if file == root else file.relative_to(root).as_posix()
        found.extend(_reports(file, name, dialect))
    return found


def golden_params(
    path: str | os.PathLike[str], dialect: str | Dialect | None = None
) -> list[ParameterSet]:
    """:func:`replay_histories` as ``pytest.param`` s, one test per history, named after it::

    @pytest.mark.parametrize("history", golden_params("tests/golden", "qualytics"))
    def test_golden(history):
        history.check()
    """
    import pytest  # noqa: PLC0415  (pytest only when parametrizing)

    return [pytest.param(r, id=r.id) for r in replay_histories(path, dialect)]


def assert_replays(
    path: str | os.PathLike[str], dialect: str | Dialect | None = None
) -> list[HistoryReport]:
    """Replay as :func:`replay_histories` does; raise one ``AssertionError`` listing every
    history that does not fold (or when there is none at all). Returns the reports."""
    reports = replay_histories(path, dialect)
    if not reports:
        raise AssertionError(f"no recorded histories under {path}")
    bad = [r.problem() for r in reports if not r.ok]
    if bad:
        raise AssertionError(
            f"{len(bad)} of {len(reports)} histories do not replay:\n" + "\n".join(bad)
        )
    return reports
