"""Facts: what happened to a run or a container, shared by every dialect.

Each fact is a frozen, keyword-only, tagged :class:`msgspec.Struct`. The tag is the class name and
is the stable storage token: renaming a class is a breaking change, adding a field *with a default*
is not (msgspec's schema-evolution rules). Old shapes that cannot be read that way are mapped to
new ones by the upcasters registered with :func:`register_upcaster`.

A store wraps every fact it keeps in a :class:`Recorded` envelope: which stream, which version of
that stream, which global position, which idempotency key, and when.

Encoders and decoders are built once, here, and shared (msgspec's performance advice).
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable
from typing import Any, Final, Literal, TypeAlias

import msgspec

from lifecycle._errors import InvalidFact

__all__ = [
    "BuildFailed",
    "BuildStarted",
    "BuildSucceeded",
    "ContainerAdded",
    "ExecutionFailed",
    "ExecutionStarted",
    "ExecutionSucceeded",
    "Fact",
    "FactType",
    "FinishingStarted",
    "ImagePullStarted",
    "InfrastructureFailed",
    "LogRecorded",
    "OutOfMemory",
    "PreparationStarted",
    "Recorded",
    "Requested",
    "Requeued",
    "ResourcesAssigned",
    "ResourcesRequested",
    "ResultStored",
    "ScheduleArmed",
    "ScheduleExpired",
    "SchedulePaused",
    "ScheduleResumed",
    "StopRequested",
    "Stopped",
    "StoppingStarted",
    "decode_fact",
    "decode_fact_json",
    "decode_facts",
    "decode_recorded_json",
    "encode_fact",
    "encode_recorded_json",
    "fact_types",
    "new_event_id",
    "new_event_ids",
    "register_upcaster",
    "upcast",
    "validate",
]


class Fact(msgspec.Struct, frozen=True, kw_only=True, tag=True, gc=False):
    """Base of every fact. Never instantiated itself; its subclasses form one tagged union.

    Facts are not tracked by the cyclic GC (``gc=False``, inherited): they hold data only, and
    a replay decodes millions of them — each would otherwise count towards the next collection.
    (A fact put inside its own ``params`` would never be freed.)
    """


# -- the stream is created ------------------------------------------------------------------------


class Requested(Fact, frozen=True, kw_only=True, tag=True):
    """The stream is created: a run (or one container of a run) was asked for.

    ``mode`` says why: a ``new`` run, or a ``rerun`` / ``resume`` of ``original_run_id`` (whose
    lineage starts at ``root_run_id``). ``build`` asks for an image build first (Datatailr).
    """

    dialect: str
    operation: str = "run"
    name: str = ""
    containers: tuple[str, ...] = ()
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    mode: Literal["new", "rerun", "resume"] = "new"
    original_run_id: int | None = None
    root_run_id: int | None = None
    job_version: int | None = None
    build: bool = False


# -- build and schedule ---------------------------------------------------------------------------


class BuildStarted(Fact, frozen=True, kw_only=True, tag=True):
    """An image build began."""

    image: str = ""


class BuildSucceeded(Fact, frozen=True, kw_only=True, tag=True):
    """The image is built."""

    image: str = ""
    version: int | None = None


class BuildFailed(Fact, frozen=True, kw_only=True, tag=True):
    """The build failed (a bad dependency, a syntax error)."""

    reason: str = ""


class ScheduleArmed(Fact, frozen=True, kw_only=True, tag=True):
    """Waiting for the next scheduled time, ``due_at``. The scheduler records it twice in one
    append: on the armed run (which waits in Scheduled and starts at ``due_at``) and on the
    job's deploy run (``run_id``: the run armed; the deploy run's stream is the schedule's
    ledger). ``skipped``: due times passed over (missed while no scheduler ran, or while the job
    was paused) since the previous arming."""

    due_at: _dt.datetime | None = None
    run_id: int | None = None
    skipped: tuple[_dt.datetime, ...] = ()


class ScheduleExpired(Fact, frozen=True, kw_only=True, tag=True):
    """The schedule's end date has passed."""

    end: _dt.datetime | None = None


class SchedulePaused(Fact, frozen=True, kw_only=True, tag=True):
    """A scheduled job stops firing (``lifecycle job pause``) until ``ScheduleResumed``; its
    state stays what it was (Ready or Scheduled). An extension: the seed has no pause."""

    by: str = "user"


class ScheduleResumed(Fact, frozen=True, kw_only=True, tag=True):
    """A paused job fires again, from its next due time after ``at`` (the due times that
    passed while it was paused are skipped, not caught up; ``None``: when it was recorded)."""

    by: str = "user"
    at: _dt.datetime | None = None


# -- getting onto a machine -----------------------------------------------------------------------


class ResourcesRequested(Fact, frozen=True, kw_only=True, tag=True):
    """Waiting for compute of a hardware ``tier``."""

    tier: str = ""


class ResourcesAssigned(Fact, frozen=True, kw_only=True, tag=True):
    """A node or executor took the work."""

    node: str = ""


class PreparationStarted(Fact, frozen=True, kw_only=True, tag=True):
    """Files are being copied to the executor."""


class ImagePullStarted(Fact, frozen=True, kw_only=True, tag=True):
    """The image is being fetched."""

    image: str = ""


# -- execution ------------------------------------------------------------------------------------


class ExecutionStarted(Fact, frozen=True, kw_only=True, tag=True, omit_defaults=True):
    """User code is running. ``process``: the identity of the OS process it runs as, when an
    adapter runs it in one of its own (``linux:BOOT:PIDNS:PID:START``, pid *and* start time),
    so that the engine reconciling a dead engine's run can kill what was left of it. Left out
    of the encoding when unset (``omit_defaults``): older logs and most facts look as before."""

    process: str | None = None


class LogRecorded(Fact, frozen=True, kw_only=True, tag=True):
    """One log entry. ``level`` is a logging level name in lower case (``warning`` and above set
    the Warning indicator of a run that ends well); ``stream`` is where it came from."""

    level: str = "info"
    stream: Literal["stdout", "stderr", "system"] = "system"
    text: str = ""


class ResultStored(Fact, frozen=True, kw_only=True, tag=True):
    """A container's return value was cached under ``key`` (``codec`` says how to read it)."""

    key: str
    codec: str = "msgpack"
    size: int = 0
    sha256: str = ""


class FinishingStarted(Fact, frozen=True, kw_only=True, tag=True):
    """Outputs are being copied back."""


class ExecutionSucceeded(Fact, frozen=True, kw_only=True, tag=True):
    """Finished without error; ``cached_from`` names the run whose result was reused, if any."""

    cached_from: int | None = None


class ExecutionFailed(Fact, frozen=True, kw_only=True, tag=True):
    """User code raised or exited non-zero."""

    error: str = ""
    exit_code: int | None = None
    traceback: str = ""


class OutOfMemory(Fact, frozen=True, kw_only=True, tag=True):
    """The memory limit was exceeded."""

    limit_bytes: int | None = None


class InfrastructureFailed(Fact, frozen=True, kw_only=True, tag=True):
    """A problem outside user code: ``worker_lost``, ``start_timeout``, ``engine_lost``, …"""

    reason: str = ""


# -- stopping -------------------------------------------------------------------------------------


class StopRequested(Fact, frozen=True, kw_only=True, tag=True):
    """Someone asked to stop (or abort)."""

    by: str = ""


class StoppingStarted(Fact, frozen=True, kw_only=True, tag=True):
    """Stopping; outputs are being synced."""


class Stopped(Fact, frozen=True, kw_only=True, tag=True):
    """It is stopped: ``user``, ``upstream_failed``, ``timeout``, …"""

    reason: str = "user"


# -- embedding (issue 13) -------------------------------------------------------------------------


class ContainerAdded(Fact, frozen=True, kw_only=True, tag=True):
    """A run-level fact: container ``name`` joins an active run (an orchestrator that learns its
    tasks as it goes: Prefect's dynamic tasks, Dask's keys graph by graph). ``depends_on`` names
    containers it waits for (informational). ``name`` must be non-empty (the default exists only
    so that every fact class can be made without arguments). The run service writes the
    container's own ``Requested`` in the same append. A dialect extension in every built-in
    dialect."""

    name: str = ""
    depends_on: tuple[str, ...] = ()


class Requeued(Fact, frozen=True, kw_only=True, tag=True):
    """A retry: the run or container goes back from its running states to its waiting state and
    will start again (Dask: processing → released → waiting; Prefect: ``AwaitingRetry``). Views
    count attempts from 1, one more per ``Requeued``. ``reason`` says why (``retry``,
    ``worker_lost``, …). A dialect extension in every built-in dialect; a retry that then
    succeeds is a success, without the Warning indicator (see the README, "Retries")."""

    reason: str = "retry"


FactType: TypeAlias = (
    Requested
    | BuildStarted
    | BuildSucceeded
    | BuildFailed
    | ScheduleArmed
    | ScheduleExpired
    | SchedulePaused
    | ScheduleResumed
    | ResourcesRequested
    | ResourcesAssigned
    | PreparationStarted
    | ImagePullStarted
    | ExecutionStarted
    | LogRecorded
    | ResultStored
    | FinishingStarted
    | ExecutionSucceeded
    | ExecutionFailed
    | OutOfMemory
    | InfrastructureFailed
    | StopRequested
    | StoppingStarted
    | Stopped
    | ContainerAdded
    | Requeued
)
"""The tagged union of every fact (what a decoder accepts)."""

_FACT_CLASSES: Final[tuple[type[Fact], ...]] = FactType.__args__


def fact_types() -> dict[str, type[Fact]]:
    """Every fact class by its storage token (the class name)."""
    return {cls.__name__: cls for cls in _FACT_CLASSES}


# -- the envelope ---------------------------------------------------------------------------------


class Recorded(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A fact as a store keeps it.

    ``version`` is 1..n and gap-free within ``stream``; ``position`` is global and strictly
    increasing in commit order; ``event_id`` is the idempotency key; ``recorded_at`` is UTC.
    Not tracked by the cyclic GC (it holds no cycles): replaying a million of them would
    otherwise trigger full collections over the whole heap.
    """

    stream: str
    version: int
    position: int
    event_id: str
    recorded_at: _dt.datetime
    event: FactType


# -- ids ------------------------------------------------------------------------------------------


def new_event_id() -> str:
    """A fresh, time-ordered event id: 48 bits of milliseconds then 80 random bits, as 32 hex
    digits (the layout of UUIDv7). Time order keeps a store's unique index append-mostly."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def new_event_ids(n: int) -> list[str]:
    """``n`` fresh ids as :func:`new_event_id` makes them, from one read of the system's
    randomness (a store making the ids of a whole batch: ~0.3 µs an id instead of ~1.3)."""
    prefix = f"{time.time_ns() // 1_000_000:012x}"
    pool = os.urandom(10 * n).hex()
    return [prefix + pool[i : i + 20] for i in range(0, 20 * n, 20)]


# -- encoding -------------------------------------------------------------------------------------

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Maps one old-shape fact (a plain dict with its ``type`` tag) to the current shape."""

_UPCASTERS: dict[str, list[Upcaster]] = {}

_msgpack_encoder: Final = msgspec.msgpack.Encoder()
_msgpack_decoder: Final = msgspec.msgpack.Decoder(FactType)
_msgpack_list_decoder: Final = msgspec.msgpack.Decoder(list[FactType])
_raw_msgpack_decoder: Final = msgspec.msgpack.Decoder(dict[str, Any])
_json_encoder: Final = msgspec.json.Encoder()
_json_recorded_decoder: Final = msgspec.json.Decoder(Recorded)
_json_fact_decoder: Final = msgspec.json.Decoder(FactType)
_json_raw_decoder: Final = msgspec.json.Decoder(dict[str, Any])


def register_upcaster(tag: str, upcaster: Upcaster) -> None:
    """Register a function that rewrites an old shape of fact ``tag`` (a dict with its ``type``)
    into the current one. Upcasters of a tag run, in registration order, on every read of that
    tag, so each must leave a current shape unchanged; reads of other tags pay nothing."""
    _UPCASTERS.setdefault(tag, []).append(upcaster)


def upcast(raw: dict[str, Any]) -> FactType:
    """Run the registered upcasters on one fact given as a plain dict, then convert it."""
    for upcaster in _UPCASTERS.get(str(raw.get("type")), ()):
        raw = upcaster(raw)
    # Typed locals, not ``type: ignore``: msgspec 0.22 types these calls as ``Any`` and 0.23 as the
    # union, and an ignore that one of them needs is an unused ignore under the other.
    fact: FactType = msgspec.convert(raw, FactType)
    return fact


def encode_fact(fact: Fact) -> bytes:
    """The fact as msgpack (the storage format)."""
    return _msgpack_encoder.encode(fact)


def validate(fact: object, *, stream: str | None = None) -> bytes:
    """Check that ``fact`` is a fact of this vocabulary whose fields have their declared types,
    and return its storage encoding (msgpack). Raises :class:`~lifecycle.InvalidFact` naming
    the fact and the field otherwise.

    msgspec Structs do not validate when they are built (``LogRecorded(text=b"...")`` is
    accepted), and a fact written that way could never be read back: every store calls this on
    every fact before writing it. It is the storage round trip itself — encode, then decode with
    the typed decoder — so what passes is exactly what a read accepts (~0.3-0.7 µs a fact).
    """
    if not isinstance(fact, Fact):
        raise InvalidFact(type(fact).__name__, "", "not a lifecycle fact", stream=stream)
    name = type(fact).__name__
    try:
        data = _msgpack_encoder.encode(fact)
        _msgpack_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise InvalidFact(name, _field(str(exc)), str(exc), stream=stream) from None
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        # Cannot be encoded at all: an object in ``params``, a lone surrogate, a huge int.
        raise InvalidFact(name, "", f"cannot be stored: {exc}", stream=stream) from None
    return data


def _field(message: str) -> str:
    """The field a msgspec validation message points at (``... - at `$.params[...]` `` →
    ``params``); ``type`` for a tag no decoder knows (a subclass of :class:`Fact` that is not in
    :data:`FactType`)."""
    _, at, path = message.rpartition("`$.")
    if not at:
        return ""
    field = path.rstrip("`").split("[", 1)[0].split(".", 1)[0]
    return field


def decode_fact(data: bytes) -> FactType:
    """Read one msgpack fact, through the upcasters of its tag if any are registered.

    Raises :class:`msgspec.ValidationError` or :class:`msgspec.DecodeError` when the bytes are
    not a fact even after upcasting (stores translate these into ``CorruptLog``).
    """
    fact: FactType
    if not _UPCASTERS:
        fact = _msgpack_decoder.decode(data)
        return fact
    try:
        fact = _msgpack_decoder.decode(data)
    except msgspec.ValidationError:
        return upcast(_raw_msgpack_decoder.decode(data))
    if type(fact).__name__ in _UPCASTERS:
        return upcast(_raw_msgpack_decoder.decode(data))
    return fact


def decode_facts(data: bytes) -> list[FactType]:
    """Read a msgpack array of facts in one call (the fast path for bulk replay)."""
    return _msgpack_list_decoder.decode(data)


def encode_recorded_json(record: Recorded) -> bytes:
    """One ``Recorded`` envelope as a line of JSON (the export format), without the newline."""
    return _json_encoder.encode(record)


def decode_fact_json(data: bytes | str) -> FactType:
    """One fact from JSON, through the upcasters of its tag if any are registered — the JSON
    twin of :func:`decode_fact`."""
    fact: FactType
    if not _UPCASTERS:
        fact = _json_fact_decoder.decode(data)
        return fact
    try:
        fact = _json_fact_decoder.decode(data)
    except msgspec.ValidationError:
        return upcast(_json_raw_decoder.decode(data))
    if type(fact).__name__ in _UPCASTERS:
        return upcast(_json_raw_decoder.decode(data))
    return fact


def decode_recorded_json(line: bytes | str) -> Recorded:
    """Read one exported JSON line back into a ``Recorded`` envelope (upcasting its fact)."""
    if not _UPCASTERS:
        return _json_recorded_decoder.decode(line)
    try:
        record: Recorded | None = _json_recorded_decoder.decode(line)
    except msgspec.ValidationError:
        record = None
    if record is not None and type(record.event).__name__ not in _UPCASTERS:
        return record
    raw = _json_raw_decoder.decode(line)
    if isinstance(raw.get("event"), dict):
        raw["event"] = msgspec.to_builtins(upcast(raw["event"]))
    return msgspec.convert(raw, Recorded)
