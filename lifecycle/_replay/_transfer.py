"""Export a store to JSON Lines, and import such a file into a store.

``export`` streams the log in pages into a temporary file beside the target and renames it into
place, so an export file is never half-written: it is the whole prefix of the log that was
committed when the last page was read, or it is not there (an older file of that name is left
as it was).

``import_log`` checks the whole file before writing anything — every line reads, versions are
dense, event ids are unique, every run folds under its dialect — then appends what the target
does not have yet, with the original event ids and times, carrying the rebuilt read-model rows
(``summaries=``). Records the target already has (same stream, version, event id and fact) are
skipped, so a re-import is a no-op and an export taken with ``after=`` continues streams the
target already holds; a stream whose stored content differs is an error and nothing is written.

How many appends: **one** (atomic) once ``Write`` carries per-event times; until then one per
distinct ``recorded_at`` — each atomic and idempotent, and an interrupted import completes when
run again. See ``_batches``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import operator
import os
import secrets
import sys
from collections.abc import Sequence
from typing import IO, Any, Final

import anyio
import anyio.to_thread
import msgspec

from lifecycle import events as ev
from lifecycle._errors import ConcurrencyError, CorruptLog, InvalidFact
from lifecycle._runs import summary_of
from lifecycle._stores import EventStore, RunStore, Write, open_store
from lifecycle._views import Projector, container_stream, parse_stream, run_stream

from ._jsonl import LogReader
from ._replayer import PAGE, store_pages

__all__ = ["export", "import_log"]

_READ_BATCH: Final = 500
"""Streams per ``read`` call while importing (SQL backends bind one parameter per stream)."""

_DRAW_BATCH: Final = 256
"""Run ids drawn at once while moving a target's allocator past imported runs."""

_EVENT_TIMES: Final = "recorded_at" in Write.__struct_fields__
"""Whether ``Write`` carries per-event ``recorded_at`` (a proposed store capability): then an
import keeps every record's original time in one append. Without it, see ``_batches``."""


# -- export ---------------------------------------------------------------------------------------


async def export(
    source: str | EventStore,
    path: str | os.PathLike[str] | None = None,
    *,
    after: int = 0,
    page_size: int = PAGE,
) -> int:
    """Write the log as JSON Lines, one :class:`~lifecycle.events.Recorded` envelope a line, in
    global position order, and return how many records were written.

    ``source`` is a store URL (opened and closed here) or a store object (used as it is).
    ``path`` ``None`` or ``"-"`` writes to standard output; any other path is written
    atomically (temporary file, fsync, rename). ``after`` exports only records with a greater
    position (an incremental export: ``import_log`` continues the streams). Reads
    ``page_size`` records at a time, so memory stays flat however long the log.
    """
    if isinstance(source, EventStore):
        return await _export(source, path, after, page_size)
    async with open_store(source) as store:
        return await _export(store, path, after, page_size)


async def _export(
    store: EventStore, path: str | os.PathLike[str] | None, after: int, size: int
) -> int:
    encode = ev.encode_recorded_json
    if path is None or path == "-":
        sys.stdout.flush()
        out = sys.stdout.buffer
        count = 0
        async for page in store_pages(store, after=after, size=size):
            data = b"".join([encode(r) + b"\n" for r in page])
            await anyio.to_thread.run_sync(out.write, data)
            count += len(page)
        await anyio.to_thread.run_sync(out.flush)
        return count

    target, temp, fd = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as file:
            count = 0
            async for page in store_pages(store, after=after, size=size):
                data = b"".join([encode(r) + b"\n" for r in page])
                await anyio.to_thread.run_sync(file.write, data)
                count += len(page)
            await anyio.to_thread.run_sync(_sync_file, file)
        await anyio.to_thread.run_sync(_publish, temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return count


def _create_temp(path: str | os.PathLike[str]) -> tuple[str, str, int]:
    """The final path, a fresh temporary path beside it (same file system, so the rename is
    atomic), and the temporary file's descriptor. ``os.open`` rather than ``tempfile``: the
    mode honours the umask, as the final file's should."""
    target = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(target)
    temp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
    return target, temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


def _sync_file(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())


def _publish(temp: str, target: str) -> None:
    os.replace(temp, target)
    if os.name == "posix":  # make the rename itself durable
        fd = os.open(os.path.dirname(target), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- import ---------------------------------------------------------------------------------------


async def import_log(path: str | os.PathLike[str], target: str | RunStore) -> int:
    """Append a JSONL log (what :func:`export` writes, or bare facts) to a store; return how
    many records were appended (``0`` when the target already had them all).

    Nothing is written unless the whole file checks out: :class:`~lifecycle.CorruptLog` (file,
    line, why) for a line that cannot be read, a duplicate event id, or a fact its run's dialect
    does not accept (replay the file to see every divergence);
    :class:`~lifecycle.ConcurrencyError` when the target holds a stream of the file with other
    content, or moved while importing; :class:`~lifecycle.UnknownDialect` for a run whose
    dialect is not registered. Imported runs keep their ids, event ids and times (bare facts are
    stamped with the import time), their ``runs`` read-model rows are written with them, and the
    target's run-id allocator is moved past them. ``target`` is a URL (opened and closed here)
    or a store object (used as it is).

    Atomic as a whole where the store takes per-event times (one append); otherwise one atomic
    append per distinct ``recorded_at``, and an interrupted import completes when run again.
    """
    name, records, lines = await anyio.to_thread.run_sync(_load, path)
    if isinstance(target, RunStore):
        return await _import(target, name, records, lines)
    async with open_store(target) as store:
        return await _import(store, name, records, lines)


def _load(path: str | os.PathLike[str]) -> tuple[str, list[ev.Recorded], list[int]]:
    """The whole file, checked (in a worker thread: it is file I/O and decoding)."""
    reader = LogReader(path)
    records: list[ev.Recorded] = []
    lines: list[int] = []
    for chunk, numbers in reader.chunks():
        records += chunk
        lines += numbers
    if reader.bare:  # the file does not say when; the target records them now
        now = _dt.datetime.now(_dt.UTC)
        records = [msgspec.structs.replace(r, recorded_at=now) for r in records]
    _check_unique(reader.name, records, lines)
    _check_storable(reader.name, records, lines)
    return reader.name, records, lines


def _check_storable(name: str, records: Sequence[ev.Recorded], lines: Sequence[int]) -> None:
    """Every fact can be stored and read back (a JSON line can hold what msgpack cannot: an
    int past 64 bits in ``params``): the store would refuse it with ``InvalidFact``, here it is
    the line that is named."""
    for record, line in zip(records, lines, strict=True):
        try:
            ev.validate(record.event)
        except InvalidFact as exc:
            raise CorruptLog(name, line, str(exc)) from None


def _check_unique(name: str, records: Sequence[ev.Recorded], lines: Sequence[int]) -> None:
    seen: dict[str, int] = {}
    for record, line in zip(records, lines, strict=True):
        first = seen.setdefault(record.event_id, line)
        if first != line:
            raise CorruptLog(name, line, f"event id {record.event_id} already used on line {first}")


async def _import(store: RunStore, name: str, records: list[ev.Recorded], lines: list[int]) -> int:
    # 1. what the target already holds of every run in the file
    runs = {parse_stream(r.stream)[0] for r in records}
    streams = {r.stream for r in records} | {run_stream(run_id) for run_id in runs}
    stored = await _read_streams(store, streams)
    wanted: set[str] = set()
    for record in itertools.chain(records, (s[0] for s in stored.values())):
        if isinstance(record.event, ev.Requested) and "/" not in record.stream:
            run_id = parse_stream(record.stream)[0]
            wanted.update(container_stream(run_id, c) for c in record.event.containers)
    stored.update(await _read_streams(store, wanted - streams))

    # 2. skip what is there already; anything else must continue the stored stream
    fresh: list[tuple[ev.Recorded, int]] = []
    for record, line in zip(records, lines, strict=True):
        have = stored.get(record.stream, [])
        if record.version <= len(have):
            old = have[record.version - 1]
            if old.event_id != record.event_id or old.event != record.event:
                raise ConcurrencyError(
                    f"{name}:{line}: the target already has {record.stream} version "
                    f"{record.version} with other content (event id {old.event_id}); "
                    "it is another run with the same id; nothing was imported. Import into a "
                    "store that does not have that run",
                    stream=record.stream,
                    expected=record.version - 1,
                    actual=len(have),
                )
        else:
            fresh.append((record, line))
    if not fresh:
        await _reserve_run_ids(store, max(runs, default=0))
        return 0
    first_new: dict[str, int] = {}
    for record, line in fresh:
        first_new.setdefault(record.stream, record.version)
        at_version = len(stored.get(record.stream, ()))
        if first_new[record.stream] == record.version and record.version != at_version + 1:
            raise ConcurrencyError(
                f"{name}:{line}: {record.stream} continues from version {record.version - 1} "
                f"in the file, but the target has it at version {at_version}; "
                "nothing was imported",
                stream=record.stream,
                expected=record.version - 1,
                actual=at_version,
            )

    # 3. every touched run must fold: what is stored, then what is new
    touched = {parse_stream(r.stream)[0] for r, _ in fresh}
    projector = Projector(strict=False)
    projector.feed(
        sorted(
            (r for s, rs in stored.items() if parse_stream(s)[0] in touched for r in rs),
            key=lambda r: r.position,
        )
    )
    projector.feed(r for r, _ in fresh)
    if projector.errors:
        bad, exc = next(iter(projector.errors.values()))  # the first, in feeding order
        where = next((ln for r, ln in fresh if r is bad), None)
        if where is None:  # the target's own history does not fold: not this file's fault
            raise exc
        raise CorruptLog(
            name, where, f"{exc} (replay the file to see every divergence; nothing was imported)"
        ) from exc
    summaries = [summary_of(projector.view(run_id)) for run_id in sorted(touched)]

    # 4. one atomic append (see _batches for stores without per-event times)
    count = 0
    batches = _batches([r for r, _ in fresh])
    for i, batch in enumerate(batches):
        last = i == len(batches) - 1
        written = await store.append(
            batch.writes,
            summaries=summaries if last else (),
            at=batch.at,
        )
        count += len(written)
    await _reserve_run_ids(store, max(runs))
    return count


async def _read_streams(store: EventStore, streams: set[str]) -> dict[str, list[ev.Recorded]]:
    found: dict[str, list[ev.Recorded]] = {}
    names = sorted(streams)
    for i in range(0, len(names), _READ_BATCH):
        for record in await store.read(names[i : i + _READ_BATCH]):
            found.setdefault(record.stream, []).append(record)
    return found


class _Batch(msgspec.Struct):
    writes: list[Write]
    at: _dt.datetime | None = None


def _batches(records: list[ev.Recorded]) -> list[_Batch]:
    """The appends that store ``records`` (file order kept, so the target's global order follows
    the file's): one ``Write`` per run of consecutive records of a stream, the first ``Write``
    of each stream carrying its expected version.

    With per-event times (``_EVENT_TIMES``) that is **one** append: atomic. Without, an append
    has a single ``at``, so records are grouped by ``recorded_at`` (one group per original
    append, as the source recorded them) and each group is one atomic append. Then an import
    interrupted half-way (a crash, a full disk) leaves a prefix of whole groups; running it
    again completes it, since every group is an idempotent retry or continues its streams.
    """
    if _EVENT_TIMES:
        return [_Batch(_writes(records, times=True))]
    return [
        _Batch(_writes(list(group), times=False), at=at)
        for at, group in itertools.groupby(records, key=_recorded_at)
    ]


_stream: Final = operator.attrgetter("stream")
_recorded_at: Final = operator.attrgetter("recorded_at")


def _writes(records: list[ev.Recorded], *, times: bool) -> list[Write]:
    writes: list[Write] = []
    checked: set[str] = set()
    for stream, group in itertools.groupby(records, key=_stream):
        run = list(group)
        extra: dict[str, Any] = {}
        if times:
            extra["recorded_at"] = tuple([r.recorded_at for r in run])
        writes.append(
            Write(
                stream=stream,
                events=tuple([r.event for r in run]),
                expected_version=None if stream in checked else run[0].version - 1,
                event_ids=tuple([r.event_id for r in run]),
                **extra,
            )
        )
        checked.add(stream)
    return writes


async def _reserve_run_ids(store: RunStore, upto: int) -> None:
    """Move the target's run-id allocator past ``upto``, so it never hands out an imported
    run's id. The interface has no call for that yet, so ids are drawn
    until one reaches it: concurrently, so a group-committing store (SQLite) draws a few
    hundred per transaction. Costs one call when the allocator is already ahead."""
    if upto <= 0:
        return
    last = await store.next_run_id()
    while last < upto:
        drawn: list[int] = []
        async with anyio.create_task_group() as tg:
            for _ in range(min(upto - last, _DRAW_BATCH)):
                tg.start_soon(_draw, store, drawn)
        last = max(drawn)


async def _draw(store: RunStore, into: list[int]) -> None:
    into.append(await store.next_run_id())
