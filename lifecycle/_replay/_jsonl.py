"""Reading event logs from JSON Lines: the input side of replay and import.

Two line formats, one per file (the first non-blank line decides):

- **Recorded envelopes** — what :func:`lifecycle.export` writes: ``{"stream", "version",
  "position", "event_id", "recorded_at", "event": {"type": ..., ...}}``.
- **Bare facts** — one tagged fact a line (``{"type": "ExecutionStarted"}``), as a foreign
  system or a hand-written test history would have them. A bare-fact file is **one run
  stream**, ``run-1``: versions are 1..n in file order, the position of a fact is its line
  number (so ``at=12`` means "as of line 12"), ``recorded_at`` is :data:`UNKNOWN_TIME` (the
  Unix epoch: the file does not say), and event ids are content hashes chained over the facts,
  so the same facts always get the same ids (a re-import is a no-op) and two different
  histories never share them past the point where they differ.

Checked while reading, so every consumer gets them: each line is JSON of the file's format
(upcasters applied, as for msgpack), positions strictly increase, and each stream's versions are
dense (a stream may start above version 1: an export with ``after=`` starts mid-stream). A line
that fails raises :class:`~lifecycle.CorruptLog` with the file, the 1-based line number and why.
Blank lines are skipped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import os
import sys
from collections.abc import Iterator
from typing import IO, Final

import msgspec

from lifecycle import events as ev
from lifecycle._errors import CorruptLog, UnknownRun
from lifecycle._views import parse_stream, run_stream

__all__ = ["BARE_RUN_ID", "UNKNOWN_TIME", "LogReader", "decode_fact_json", "read_log"]

BARE_RUN_ID: Final = 1
"""The run a bare-fact file is read as (its stream is ``run-1``)."""

UNKNOWN_TIME: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
"""``recorded_at`` of a bare fact: the file does not say when it happened."""

_recorded_decoder: Final = msgspec.json.Decoder(ev.Recorded)
_block_decoder: Final = msgspec.json.Decoder(list[ev.Recorded])
_fact_decoder: Final = msgspec.json.Decoder(ev.FactType)
_any_decoder: Final = msgspec.json.Decoder()

_ENVELOPE_SHAPE = 'a Recorded envelope {"stream", "version", "position", "event_id", ...}'
_FACT_SHAPE = 'a tagged fact {"type": "ExecutionStarted", ...}'


decode_fact_json = ev.decode_fact_json
_decode_recorded = ev.decode_recorded_json


class LogReader:
    """Reads one JSONL log, checking it as it goes; iterate :meth:`lines` or :meth:`chunks`.

    ``path`` ``"-"`` reads standard input. ``at`` stops before the first record whose position
    is greater (lines past it are not read, so not checked either). After iteration, ``bare``
    says which format the file had (``None`` for a file with no records).
    """

    def __init__(self, path: str | os.PathLike[str], *, at: int | None = None) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else os.fspath(path)
        self.at = at
        self.bare: bool | None = None

    def _open(self) -> IO[bytes]:
        if self.path == "-":
            return sys.stdin.buffer
        return open(self.path, "rb")  # closed in lines()' finally

    def chunks(self, size: int = 4096) -> Iterator[tuple[list[ev.Recorded], list[int]]]:
        """Records in file order, up to ``size`` at a time, with the line each came from."""
        stream = self._open()
        try:
            numbered = enumerate(stream, 1)
            for number, data in numbered:  # noqa: B007  (used after the loop)
                if not data.isspace():
                    break
            else:
                return  # no records at all
            self.bare = self._sniff(data, number)
            if self.bare:
                body = itertools.chain([(number, data)], numbered)
                yield from _batched(self._facts(body), size)
            else:
                yield from self._envelopes(stream, data, number, size)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    def lines(self) -> Iterator[tuple[int, ev.Recorded]]:
        """``(line number, record)`` in file order."""
        for records, lines in self.chunks():
            yield from zip(lines, records, strict=True)

    def _sniff(self, data: bytes, number: int) -> bool:
        try:
            raw = _any_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise CorruptLog(self.name, number, f"not JSON: {exc}") from exc
        if isinstance(raw, dict) and "event" in raw and "stream" in raw:
            return False
        if isinstance(raw, dict) and "type" in raw:
            return True
        raise CorruptLog(self.name, number, f"expected {_ENVELOPE_SHAPE} or {_FACT_SHAPE}")

    def _envelopes(
        self, stream: IO[bytes], first: bytes, number: int, size: int
    ) -> Iterator[tuple[list[ev.Recorded], list[int]]]:
        """Blocks of ``size`` lines decoded in one call, as one JSON array: most of the cost of
        a JSONL reader is per-call, not per-byte. A block that does not decode that way (a
        blank line, an old shape for the upcasters, a corrupt line) is read again line by line,
        which applies the upcasters or finds the line to blame."""
        checks = _Checks(self.name, self.at)
        block = [first, *itertools.islice(stream, size - 1)]
        while block and not checks.done:
            lines = list(range(number, number + len(block)))
            try:
                records = _block_decoder.decode(b"[" + b",".join(block) + b"]")
            except msgspec.DecodeError:  # ValidationError included
                records = []
            if len(records) != len(block):  # e.g. two objects on one line
                records, lines = self._line_by_line(block, number, checks)
            yield checks.check(records, lines)
            number += len(block)
            block = list(itertools.islice(stream, size))

    def _line_by_line(
        self, block: list[bytes], number: int, checks: _Checks
    ) -> tuple[list[ev.Recorded], list[int]]:
        records: list[ev.Recorded] = []
        lines: list[int] = []
        for line, data in enumerate(block, number):
            if data.isspace():
                continue
            try:
                record = _decode_recorded(data)
            except msgspec.DecodeError as exc:  # ValidationError included
                if checks.beyond(records):
                    break  # past ``at``: this line is not read
                raise CorruptLog(self.name, line, _why(exc, _ENVELOPE_SHAPE)) from exc
            except Exception as exc:  # an upcaster (user code) failed on this line
                raise CorruptLog(self.name, line, f"upcaster failed: {exc!r}") from exc
            records.append(record)
            lines.append(line)
        return records, lines

    def _facts(self, body: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, ev.Recorded]]:
        name, at, target = self.name, self.at, run_stream(BARE_RUN_ID)
        version = 0
        chain = b""
        for number, data in body:
            if at is not None and number > at:
                return
            if data.isspace():
                continue
            try:
                fact = decode_fact_json(data)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise CorruptLog(name, number, _why(exc, _FACT_SHAPE)) from exc
            except Exception as exc:  # an upcaster (user code) failed on this line
                raise CorruptLog(name, number, f"upcaster failed: {exc!r}") from exc
            version += 1
            chain = hashlib.blake2b(chain + ev.encode_fact(fact), digest_size=16).digest()
            yield (
                number,
                ev.Recorded(
                    stream=target,
                    version=version,
                    position=number,
                    event_id=chain.hex(),
                    recorded_at=UNKNOWN_TIME,
                    event=fact,
                ),
            )


class _Checks:
    """What every envelope file must satisfy, checked over decoded blocks: positions increase,
    each stream's versions are dense, stream names are run streams. Stops at ``at``."""

    def __init__(self, name: str, at: int | None) -> None:
        self.name = name
        self.limit = sys.maxsize if at is None else at
        self.done = False
        self.previous = 0
        self.versions: dict[str, int] = {}

    def beyond(self, records: list[ev.Recorded]) -> bool:
        """Whether the records read so far already reached past ``at``."""
        return bool(records) and records[-1].position > self.limit

    def check(
        self, records: list[ev.Recorded], lines: list[int]
    ) -> tuple[list[ev.Recorded], list[int]]:
        get, previous, limit = self.versions.get, self.previous, self.limit
        for record in records:  # the hot loop: no enumerate, no calls but one dict get
            position = record.position
            if position > limit or position <= previous:
                i = _index(records, record)
                if position > limit:
                    self.done = True
                    records, lines = records[:i], lines[:i]
                    break
                raise CorruptLog(
                    self.name,
                    lines[i],
                    f"position {position} does not follow {previous}: "
                    "records must be in increasing position order",
                )
            previous = position
            stream = record.stream
            last = get(stream)
            if last is None:
                why = _bad_stream(record)
                if why:
                    raise CorruptLog(self.name, lines[_index(records, record)], why)
            elif record.version != last + 1:
                raise CorruptLog(
                    self.name,
                    lines[_index(records, record)],
                    f"{stream} version {record.version} follows version {last}: "
                    "versions must be dense (1, 2, 3, …) within a stream",
                )
            self.versions[stream] = record.version
        self.previous = previous
        return records, lines


def _index(records: list[ev.Recorded], record: ev.Recorded) -> int:
    return next(i for i, r in enumerate(records) if r is record)


def _batched(
    items: Iterator[tuple[int, ev.Recorded]], size: int
) -> Iterator[tuple[list[ev.Recorded], list[int]]]:
    while True:
        batch = list(itertools.islice(items, size))
        if not batch:
            return
        yield [r for _, r in batch], [n for n, _ in batch]


def _why(exc: Exception, shape: str) -> str:
    if isinstance(exc, msgspec.ValidationError):  # a subclass of DecodeError: test it first
        return f"{exc} (each line of this file must be {shape})"
    return f"not JSON: {exc}"


def _bad_stream(record: ev.Recorded) -> str:
    """Why the first record of a stream cannot start it there ("" when it can)."""
    try:
        parse_stream(record.stream)
    except UnknownRun as exc:
        return str(exc)
    if record.version < 1:
        return f"{record.stream} version {record.version} is not ≥ 1"
    return ""


def read_log(path: str | os.PathLike[str]) -> Iterator[ev.Recorded]:
    """The records of a JSONL event log, in file order, checked as they are read.

    ``path`` holds :class:`~lifecycle.events.Recorded` envelopes (what ``export`` writes) or
    bare tagged facts, one per line (read as the single run stream ``run-1``; see the module
    docs). ``"-"`` reads standard input. Raises :class:`~lifecycle.CorruptLog` (file, 1-based
    line, why) at the first line that cannot be read: not JSON, not the file's format even
    after upcasters, a position that does not increase, a version that skips. Lazy: nothing is
    read until iterated.
    """
    for _, record in LogReader(path).lines():
        yield record
