"""The adapter contract: execute one container, report facts through a callback, stop when
cancelled. Executors live in the ``lifecycle-adapters`` distribution (or anyone's) and are found
through the entry-point group ``lifecycle.adapters`` (name → class); the core imports none.

An adapter's whole job, for :meth:`Adapter.execute`:

1. start the work described by the :class:`~lifecycle.ContainerSpec`;
2. ``await report(ExecutionStarted())`` once the user's code is really running — with
   ``process=lifecycle.process_identity(pid)`` when it runs as an OS process leading a session
   of its own on this machine, so that whoever reconciles the run after this engine died can
   kill what is left of it — and ``await report(LogRecorded(...))`` for what it prints
   (``FinishingStarted`` is accepted too);
3. return a :class:`Finished` with the ending fact — ``ExecutionSucceeded``, ``ExecutionFailed``,
   ``OutOfMemory`` (only on evidence that memory ran out, never for a bare ``SIGKILL``) or
   ``InfrastructureFailed`` — and, for a callable, its return value;
4. when the calling task is cancelled (abort, timeout), stop the work — terminate, then kill
   after a grace period — and only then let the cancellation propagate. Nothing may be left
   running, not even when the engine's process dies without cleaning up (the ``subprocess``
   adapter keeps a watchdog process for that).

The engine writes every other fact (the start sequence, results, stops, the run's ending).
``lifecycle.testing.check_adapter`` is the conformance suite every adapter runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import TracebackType
from typing import Any, Final, Self, TypeAlias

from lifecycle import events as ev
from lifecycle._errors import LifecycleError

from ._spec import ContainerSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "REPORTABLE",
    "Adapter",
    "Ending",
    "Finished",
    "Report",
    "adapter_names",
    "load_adapter",
]

ENTRY_POINT_GROUP: Final = "lifecycle.adapters"

Report: TypeAlias = Callable[[ev.Fact], Awaitable[None]]
"""The callback an adapter reports facts through. It may wait (the store applies back-pressure);
it raises ``TypeError`` for a fact an adapter may not report."""

Ending: TypeAlias = (
    ev.ExecutionSucceeded | ev.ExecutionFailed | ev.OutOfMemory | ev.InfrastructureFailed
)
"""The facts an execution can end with."""

REPORTABLE: Final[tuple[type[ev.Fact], ...]] = (
    ev.ExecutionStarted,
    ev.LogRecorded,
    ev.FinishingStarted,
)
"""The facts an adapter may report while it runs; the engine writes all others."""


@dataclass(frozen=True, slots=True)
class Finished:
    """How an execution ended: the ending ``fact`` and, for a callable, the ``value`` it
    returned (``None`` stores nothing)."""

    fact: Ending
    value: Any = None


class Adapter(ABC):
    """Executes containers. Subclass it and implement :meth:`execute`; hold resources (pools,
    clients) between executions if you like and release them in :meth:`aclose`.

    ``kinds`` says what it can run: ``"command"`` (an OS command) and/or ``"call"`` (a Python
    callable); the engine refuses, at submit, a container this adapter cannot run.
    One adapter instance runs many containers concurrently.
    """

    name: str = ""
    kinds: frozenset[str] = frozenset({"command", "call"})

    @abstractmethod
    async def execute(self, spec: ContainerSpec, report: Report) -> Finished:
        """Run ``spec`` to its end. Report ``ExecutionStarted`` when the work runs and
        ``LogRecorded`` for its output; return how it ended. Failures of the work are results
        (``ExecutionFailed``, ``OutOfMemory``), not exceptions; raise only for the adapter's own
        bugs. On cancellation, stop the work completely before re-raising."""

    async def aclose(self) -> None:  # noqa: B027  (optional: most adapters hold nothing)
        """Release what the adapter holds. Idempotent."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _installed() -> dict[str, EntryPoint]:
    return {e.name: e for e in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_names() -> list[str]:
    """The names of the installed adapters (entry points of group ``lifecycle.adapters``)."""
    return sorted(_installed())


def load_adapter(adapter: str | Adapter) -> Adapter:
    """The adapter an entry-point name stands for (a new instance), or ``adapter`` itself.

    Raises ``LifecycleError`` naming the installed adapters when there is none by that name, or
    when the entry point does not load an ``Adapter`` class.
    """
    if isinstance(adapter, Adapter):
        return adapter
    found = _installed().get(adapter)
    if found is None:
        names = ", ".join(sorted(_installed())) or "none"
        raise LifecycleError(
            f"no adapter named {adapter!r}; installed: {names}. Install lifecycle-adapters "
            f"(pip install -e ./adapters) or register a class under the entry-point group "
            f"{ENTRY_POINT_GROUP!r}."
        )
    try:
        cls = found.load()
    except Exception as exc:
        raise LifecycleError(f"adapter {adapter!r} ({found.value}) failed to load: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise LifecycleError(f"adapter {adapter!r} ({found.value}) is not a lifecycle.Adapter")
    instance = cls()
    if not instance.name:
        instance.name = adapter
    return instance
