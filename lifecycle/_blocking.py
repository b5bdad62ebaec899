"""The blocking twin of the run service: :class:`Runs` runs an :class:`~lifecycle.AsyncRuns`
on an event loop of its own thread (an anyio blocking portal), for code that is not async — a
script, a notebook, an orchestrator's synchronous hooks. Same methods, same arguments."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from functools import partial
from types import TracebackType
from typing import Any, Literal, ParamSpec, Self

import anyio
import anyio.from_thread

from . import events as ev
from ._dialects import Dialect
from ._phases import Phase
from ._runs import AsyncRuns, Move
from ._stores import RunStore, RunSummary
from ._views import RunView

__all__ = ["Runs"]

P = ParamSpec("P")


class Runs:
    """The blocking twin of :class:`AsyncRuns`: ``with Runs("sqlite:///runs.db") as runs: ...``.

    Same methods, same arguments; it runs an asyncio loop in a worker thread. ``follow`` returns
    an ordinary iterator.
    """

    def __init__(self, store: str | RunStore = "memory://", **options: Any) -> None:
        self.runs = AsyncRuns(store, **options)
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] | None = None
        self._portal: anyio.from_thread.BlockingPortal | None = None

    def __enter__(self) -> Self:
        self._portal_cm = anyio.from_thread.start_blocking_portal("asyncio")
        self._portal = self._portal_cm.__enter__()
        try:
            self._portal.call(self.runs.__aenter__)
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._portal_cm is not None and self._portal is not None:
            try:
                self._portal.call(self.runs.aclose)
            finally:
                self._portal_cm.__exit__(None, None, None)
                self._portal_cm = self._portal = None

    def _call(self, fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> Any:
        if self._portal is None:
            raise RuntimeError("use Runs as a context manager: with Runs(url) as runs: ...")
        return self._portal.call(partial(fn, *args, **kwargs))

    def create(self, dialect: str | Dialect, **kwargs: Any) -> RunView:
        return self._call(self.runs.create, dialect, **kwargs)  # type: ignore[no-any-return]

    def record(
        self, run_id: int, facts: ev.Fact | Iterable[ev.Fact], **kwargs: Any
    ) -> builtins.list[ev.Recorded]:
        return self._call(self.runs.record, run_id, facts, **kwargs)  # type: ignore[no-any-return]

    def get(self, run_id: int) -> RunView:
        return self._call(self.runs.get, run_id)  # type: ignore[no-any-return]

    def history(self, run_id: int) -> builtins.list[ev.Recorded]:
        return self._call(self.runs.history, run_id)  # type: ignore[no-any-return]

    def list(self, **kwargs: Any) -> builtins.list[RunSummary]:
        return self._call(self.runs.list, **kwargs)  # type: ignore[no-any-return]

    def abort(self, run_id: int, **kwargs: Any) -> RunView:
        return self._call(self.runs.abort, run_id, **kwargs)  # type: ignore[no-any-return]

    def rerun(self, run_id: int, **kwargs: Any) -> RunView:
        return self._call(self.runs.rerun, run_id, **kwargs)  # type: ignore[no-any-return]

    def resume(self, run_id: int, **kwargs: Any) -> RunView:
        return self._call(self.runs.resume, run_id, **kwargs)  # type: ignore[no-any-return]

    # Added for embedding (issue 13): orchestrator hooks are synchronous.
    def record_many(
        self,
        run_id: int,
        items: Sequence[tuple[str | None, Sequence[ev.Fact]]],
        **kwargs: Any,
    ) -> builtins.list[ev.Recorded]:
        """:meth:`AsyncRuns.record_many`, blocking: several streams of one run, one append."""
        return self._call(self.runs.record_many, run_id, items, **kwargs)  # type: ignore[no-any-return]

    def reconcile(self) -> builtins.list[RunView]:
        """:meth:`AsyncRuns.reconcile`, blocking: end the runs whose engine died."""
        return self._call(self.runs.reconcile)  # type: ignore[no-any-return]

    def advance(
        self, run_id: int, phase: Phase | str, *, container: str | None = None, **details: Any
    ) -> RunView:
        """:meth:`AsyncRuns.advance`, blocking: move a run or container to a phase."""
        return self._call(  # type: ignore[no-any-return]
            partial(self.runs.advance, run_id, phase, container=container, **details)
        )

    def accepts(self, run_id: int, fact: ev.Fact, *, container: str | None = None) -> bool:
        """:meth:`AsyncRuns.accepts`, blocking: would this fact be accepted now?"""
        return self._call(  # type: ignore[no-any-return]
            partial(self.runs.accepts, run_id, fact, container=container)
        )

    def advance_many(
        self, run_id: int, moves: Iterable[Move], **kwargs: Any
    ) -> builtins.list[ev.Recorded]:
        """:meth:`AsyncRuns.advance_many`, blocking: many moves of one run in one append."""
        return self._call(  # type: ignore[no-any-return]
            partial(self.runs.advance_many, run_id, list(moves), **kwargs)
        )

    def finish(
        self,
        run_id: int,
        outcome: Literal["succeeded", "failed", "cancelled"] | None = None,
        **kwargs: Any,
    ) -> RunView:
        """:meth:`AsyncRuns.finish`, blocking: end a run by its aggregation policy."""
        return self._call(  # type: ignore[no-any-return]
            partial(self.runs.finish, run_id, outcome, **kwargs)
        )

    def follow(self, run_id: int) -> Iterator[ev.Recorded]:
        agen = self.runs.follow(run_id)
        try:
            while True:
                try:
                    yield self._call(agen.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            self._call(agen.aclose)
