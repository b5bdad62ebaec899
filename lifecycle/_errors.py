"""The one exception tree. Every error the library raises on purpose is a ``LifecycleError``::

    LifecycleError
     ├── InvalidTransition      a fact the stream's dialect does not accept in its current state
     │    ├── StreamClosed      the stream is terminal: no fact is accepted any more
     │    └── PolicyViolation   a run-level outcome its containers' outcomes contradict
     ├── InvalidDialect         a dialect declaration that fails validation
 ├── InvalidSchedule        a cron expression, time zone or end date that cannot be evaluated
     ├── ConcurrencyError       the expected version of a stream did not match
     │    └── IdempotencyConflict   some, not all, of a batch's event ids were already stored
     ├── UnknownRun             no run by that id
     ├── UnknownContainer       the run exists, but has no container by that name
     ├── UnknownDialect         no dialect registered under that name
     ├── InvalidFact            a fact whose fields do not have their declared types (not written)
     ├── CorruptLog             a replay or import input line that cannot be read
     └── StoreError             the store itself failed (full disk, read-only file, not our file)

Foreign errors (sqlite3, msgspec, OS) are translated where they enter, with the cause chained
(``raise StoreError(...) from exc``). Every rejected append writes nothing.
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "CorruptLog",
    "IdempotencyConflict",
    "InvalidDialect",
    "InvalidFact",
    "InvalidSchedule",
    "InvalidTransition",
    "LifecycleError",
    "PolicyViolation",
    "StoreError",
    "StreamClosed",
    "UnknownContainer",
    "UnknownDialect",
    "UnknownRun",
]


class LifecycleError(Exception):
    """Root of every error this library raises on purpose."""


class InvalidTransition(LifecycleError):
    """A fact that the stream's dialect neither handles nor tolerates in the current state.

    Carries what is needed to find it: ``dialect``, ``stream``, ``version`` (of the stream before
    the fact), ``state`` and ``fact`` (the fact's type name).
    """

    def __init__(
        self,
        *,
        dialect: str,
        state: str,
        fact: str,
        stream: str | None = None,
        version: int | None = None,
        hint: str = "",
    ) -> None:
        self.dialect, self.state, self.fact = dialect, state, fact
        self.stream, self.version = stream, version
        where = f" on {stream!r} at version {version}" if stream is not None else ""
        message = f"{dialect}: {fact} is not accepted in state {state!r}{where}"
        super().__init__(f"{message}. {hint}" if hint else message)


class StreamClosed(InvalidTransition):
    """The stream is in a terminal state; terminal is final. Start a rerun or resume instead."""


class PolicyViolation(InvalidTransition):
    """A run-level outcome that contradicts the dialect's aggregation policy: a Datatailr run
    whose task failed cannot end Completed. ``container`` names the container that decides the
    outcome, ``expected`` is the outcome the policy derives (``failed`` or ``cancelled``).
    Record the run's ending accordingly, or let ``finish(run_id)`` derive it."""

    def __init__(self, *, container: str, expected: str, **kwargs: object) -> None:
        self.container, self.expected = container, expected
        super().__init__(**kwargs)  # type: ignore[arg-type]


class InvalidDialect(LifecycleError):
    """A dialect declaration failed validation; the message names the problem."""


class InvalidSchedule(LifecycleError, ValueError):
    """A schedule that cannot be evaluated: a bad cron expression, an unknown time zone, an end
    that is neither a date nor an aware datetime. The message names which."""


class ConcurrencyError(LifecycleError):
    """The stream's version was not the one the append expected: someone else wrote first.
    Re-read the stream and decide again."""

    def __init__(
        self,
        message: str,
        *,
        stream: str = "",
        expected: int | None = None,
        actual: int | None = None,
    ) -> None:
        self.stream, self.expected, self.actual = stream, expected, actual
        super().__init__(message)


class IdempotencyConflict(ConcurrencyError):
    """A retried append overlapped only partly with what was stored: some event ids were
    already there, others were not. A retry must re-send exactly the acknowledged batch."""


class UnknownRun(LifecycleError):
    """No run with that id (an unknown container of a run is ``UnknownContainer``)."""


class UnknownDialect(LifecycleError):
    """No dialect registered under that name."""


class InvalidFact(LifecycleError):
    """A fact that does not match its declared field types (msgspec Structs do not check them
    when built), or that cannot be stored at all: ``fact`` (its type name), ``field`` (the
    field, with a path inside it when nested: ``params``, ``text``; ``""`` when the whole fact
    is wrong) and ``why``. Raised before anything is written, by every store and every write
    path, so a store never keeps a fact it could not read back."""

    def __init__(self, fact: str, field: str, why: str, *, stream: str | None = None) -> None:
        self.fact, self.field, self.why, self.stream = fact, field, why, stream
        where = f" on {stream!r}" if stream is not None else ""
        what = f"{fact}.{field}" if field else fact
        super().__init__(f"{what}{where}: {why}; nothing was written")


class CorruptLog(LifecycleError):
    """A line of a replay or import input that cannot be read: ``file``, ``line`` and why."""

    def __init__(self, file: str, line: int, why: str) -> None:
        self.file, self.line, self.why = file, line, why
        super().__init__(f"{file}:{line}: {why}")


class StoreError(LifecycleError):
    """The store could not do what was asked (full disk, read-only file, a file that is not a
    lifecycle database, a newer schema). The cause is chained; nothing was partly written."""


class UnknownContainer(LifecycleError):
    """The run exists but has no container by that name: declare it in ``create(containers=...)``
    or add it with a ``ContainerAdded`` fact on the run. Carries ``run_id`` and ``container``."""

    def __init__(self, message: str, *, run_id: int, container: str) -> None:
        self.run_id, self.container = run_id, container
        super().__init__(message)
