"""The log of the ``sqlite:///`` store as columns: replay's and ``read_all``'s fast path. SQLite
gathers a page of rows into a few big values in one step (:class:`Page`), decoded on the thread
that uses them into :class:`Columns` — plain ``sqlite3``, run on the store's reader thread."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from typing import Final

import msgspec

from lifecycle import events as ev

from ._sqlite_read import (
    SELECT_ALL,
    check_rows,
    damaged,
    decode_rows,
    learn_names,
    max_position,
    upcasting,
)
from ._sqlite_rows import from_us

__all__ = [
    "SELECT_COLUMNS",
    "SELECT_NAMES_AFTER",
    "SELECT_RANGE",
    "Columns",
    "Page",
    "columns_of",
    "columns_of_rows",
    "names_after",
    "read_page",
    "read_range",
    "records_of_columns",
]

_names: Final = msgspec.json.Decoder(dict[int, str])

SELECT_COLUMNS: Final = (
    "SELECT count(*), max(stream_id), json_group_array(position), json_group_array(stream_id), "
    "json_group_array(version), group_concat(event_id, x'00'), json_group_array(recorded_at), "
    "CAST(group_concat(data, '') AS BLOB) FROM (SELECT position, stream_id, version, event_id, "
    "recorded_at, data FROM events WHERE position > ? ORDER BY position LIMIT ?)"
)
"""The rows :data:`SELECT_ALL` reads, as one row: SQLite gathers each column of the page into
one value (JSON arrays of the numbers, the event ids joined by NUL, the msgpack blobs end to end;
the aggregates see the rows in the subquery's order). One ``sqlite3_step`` for the whole page
instead of one per row: the reading thread works without the GIL, and needs it back only a
few times a page — each time it may wait a switch interval (5 ms) for a busy event loop to
let go — to hand over a few big values rather than thousands of tuples."""

SELECT_RANGE: Final = (
    "SELECT count(*), max(stream_id), json_group_array(stream_id), json_group_array(version), "
    "group_concat(event_id, x'00'), json_group_array(recorded_at), "
    "CAST(group_concat(data, '') AS BLOB), (SELECT max(position) FROM events) "
    "FROM events WHERE position > ? AND position <= ?"
)
"""The rows whose position is in ``(?, ?]``, gathered as :data:`SELECT_COLUMNS` gathers a page
(the positions themselves left out: they are the range when they are dense, as a store makes
them), and the log's last position in the same snapshot. Replay's pages: a range of the
primary key is scanned in position order, with no subquery to feed the aggregates — a quarter
cheaper than :data:`SELECT_COLUMNS` here."""

SELECT_RANGE_ROWS: Final = (
    "SELECT position, stream_id, version, event_id, recorded_at, data FROM events "
    "WHERE position > ? AND position <= ? ORDER BY position"
)

SELECT_NAMES_AFTER: Final = "SELECT json_group_object(id, name), max(id) FROM streams WHERE id > ?"
"""The names of the streams whose id is above ``?``, as a JSON object, and the highest id: one
step, not one per name (each step lets go of the GIL, and getting it back from a busy event
loop can take a switch interval)."""

_ints: Final = msgspec.json.Decoder(list[int])


class Columns:
    """One page of the log by column: row ``i`` is fact ``facts[i]`` of the stream with id
    ``stream_ids[i]`` (named ``names[id]``), at ``positions[i]``, recorded at ``times[i]``
    (microseconds since the epoch, UTC); :meth:`record` adds its version and event id (decoded
    only when asked for: a replay needs them only for the facts that do not fit)."""

    __slots__ = ("_event_ids", "_versions", "facts", "names", "positions", "stream_ids", "times")

    def __init__(
        self,
        positions: Sequence[int],
        stream_ids: list[int],
        times: list[int],
        facts: list[ev.FactType],
        names: dict[int, str],
        *,
        versions: list[int] | str,
        event_ids: list[str] | str,
    ) -> None:
        self.positions = positions
        self.stream_ids = stream_ids
        self.times = times
        self.facts = facts
        self.names = names
        self._versions = versions  # or their JSON array
        self._event_ids = event_ids  # or joined by NUL

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def versions(self) -> list[int]:
        if isinstance(self._versions, str):
            self._versions = _ints.decode(self._versions)
        return self._versions

    @property
    def event_ids(self) -> list[str]:
        if isinstance(self._event_ids, str):
            self._event_ids = self._event_ids.split("\x00")
        return self._event_ids

    def record(self, i: int) -> ev.Recorded:
        """Row ``i`` as a ``Recorded`` envelope."""
        return ev.Recorded(
            stream=self.names[self.stream_ids[i]],
            version=self.versions[i],
            position=self.positions[i],
            event_id=self.event_ids[i],
            recorded_at=from_us(self.times[i]),
            event=self.facts[i],
        )

    def head(self, n: int) -> Columns:
        """The first ``n`` rows."""
        return Columns(
            self.positions[:n],
            self.stream_ids[:n],
            self.times[:n],
            self.facts[:n],
            self.names,
            versions=self.versions[:n],
            event_ids=self.event_ids[:n],
        )


@dataclasses.dataclass(slots=True)
class Page:
    """A page of the log as SQLite gathered it (:func:`read_page`, :func:`read_range`), not yet
    decoded: :meth:`columns` decodes it on the thread that will use the facts (objects made on
    one core and used on another cost more). ``last_stream`` is its highest stream id;
    ``positions`` the JSON array of its positions, or the range of positions it covers;
    ``head`` the log's last position when it was read (:func:`read_range` only). A ``count``
    of -1 says the page was too big to gather: read its rows one by one."""

    count: int
    last_stream: int
    positions: str | range
    stream_ids: str
    versions: str
    event_ids: str
    times: str
    data: bytes
    head: int = 0

    def columns(self, names: dict[int, str]) -> Columns | None:
        """The page as :class:`Columns`, naming streams from ``names`` (which must know them
        all, e.g. from :func:`names_after`); ``None`` when it must be read row by row instead
        (:func:`columns_of_rows`): its values do not add up (an event id holding a NUL, a
        range with gaps), a fact cannot be read in bulk (an old shape, a damaged row) or has
        upcasters."""
        count = self.count
        if count < 0:
            return None  # too big to gather
        if not count:
            return Columns([], [], [], [], names, versions=[], event_ids=[])
        if isinstance(self.positions, range):
            if len(self.positions) != count:
                return None  # positions missing from the range: which, the rows say
            positions: Sequence[int] = self.positions
        else:
            positions = _positions(self.positions, count)
        if self.event_ids.count("\x00") != count - 1:
            return None
        try:
            facts = ev.decode_facts(b"\xdd" + count.to_bytes(4, "big") + self.data)
            stream_ids = _ints.decode(self.stream_ids)
            times = _ints.decode(self.times)
        except msgspec.DecodeError:  # ValidationError included: NULLs of a damaged page
            return None
        if upcasting(facts) or self.last_stream not in names or min(stream_ids) < 1:
            return None  # stream ids are 1, 2, …: one out of them is damage, the rows say where
        return Columns(
            positions,
            stream_ids,
            times,
            facts,
            names,
            versions=self.versions,
            event_ids=self.event_ids,
        )


def _positions(array: str, count: int) -> Sequence[int]:
    """The positions of a page from their JSON array: a ``range`` when they are dense (the
    usual case: a store allocates them one by one), found from the first and last alone as
    they are distinct and in order."""
    first = int(array[1 : array.find(",")] if count > 1 else array[1:-1])
    last = int(array[array.rfind(",") + 1 : -1] if count > 1 else array[1:-1])
    if last - first + 1 == count:
        return range(first, last + 1)
    return _ints.decode(array)


def read_page(conn: sqlite3.Connection, after: int, limit: int) -> Page | None:
    """The rows :data:`SELECT_ALL` reads (``limit`` -1: no limit) as one :class:`Page`: one
    statement, nothing decoded. ``None`` if a gathered value would pass SQLite's length limit
    (1 GB by default: huge facts, or no limit on a huge log): read those rows one by one."""
    try:
        row = conn.execute(SELECT_COLUMNS, (after, limit)).fetchone()
    except sqlite3.DataError as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_TOOBIG:
            return None
        raise
    count, last, positions, stream_ids, versions, event_ids, times, data = row
    return Page(
        count, last or 0, positions, stream_ids, versions, event_ids or "", times, data or b""
    )


def read_range(conn: sqlite3.Connection, after: int, upto: int) -> Page:
    """The rows with a position in ``(after, upto]`` as one :class:`Page` (:data:`SELECT_RANGE`),
    with the log's last position. Past SQLite's length limit (see :func:`read_page`), a page
    whose ``count`` is -1: read those rows one by one."""
    try:
        row = conn.execute(SELECT_RANGE, (after, upto)).fetchone()
    except sqlite3.DataError as exc:
        if exc.sqlite_errorcode != sqlite3.SQLITE_TOOBIG:
            raise
        return Page(-1, 0, range(after + 1, upto + 1), "", "", "", "", b"", max_position(conn))
    count, last, stream_ids, versions, event_ids, times, data, head = row
    head = head or 0
    return Page(
        count,
        last or 0,
        range(after + 1, max(after, min(upto, head)) + 1),
        stream_ids,
        versions,
        event_ids or "",
        times,
        data or b"",
        head,
    )


def names_after(conn: sqlite3.Connection, after: int) -> tuple[dict[int, str], int]:
    """The names of the streams with an id above ``after``, and the highest id (``after`` if
    none): in one step (:data:`SELECT_NAMES_AFTER`), or row by row past SQLite's length limit.
    The writer gives a new stream the highest id yet, so every stream id up to the one
    returned is named once this is known."""
    try:
        found, last = conn.execute(SELECT_NAMES_AFTER, (after,)).fetchone()
    except sqlite3.DataError as exc:
        if exc.sqlite_errorcode != sqlite3.SQLITE_TOOBIG:
            raise
        names = dict(conn.execute("SELECT id, name FROM streams WHERE id > ?", (after,)))
        return names, max(names, default=after)
    return _names.decode(found), max(after, last or 0)


def columns_of_rows(
    conn: sqlite3.Connection,
    after: int,
    limit: int,
    names: dict[int, str],
    path: str,
    *,
    upto: int | None = None,
) -> Columns:
    """The rows :data:`SELECT_ALL` reads (or, given ``upto``, the rows with a position in
    ``(after, upto]``), read row by row into :class:`Columns` as :func:`records_of` reads them
    (upcasters, ``CorruptLog``)."""
    if upto is None:
        rows = conn.execute(SELECT_ALL, (after, limit)).fetchall()
    else:
        rows = conn.execute(SELECT_RANGE_ROWS, (after, upto)).fetchall()
    # the positions are dense (see check_rows): these rows must be every one up to `end`
    end = max_position(conn)
    if upto is not None:
        end = min(end, upto)
    elif limit >= 0:
        end = min(end, after + limit)
    check_rows(rows, path, first=after + 1)
    if len(rows) < end - after:
        raise damaged(path, after + len(rows) + 1, f"position {after + len(rows) + 1} is missing")
    learn_names(conn, {row[1] for row in rows}, names)
    if not all(row[1] in names for row in rows):
        position = next(row[0] for row in rows if row[1] not in names)
        raise damaged(path, position, f"position {position} names no stream")
    return Columns(
        [row[0] for row in rows],
        [row[1] for row in rows],
        [row[4] for row in rows],
        decode_rows(rows, path) if rows else [],
        names,
        versions=[row[2] for row in rows],
        event_ids=[row[3] for row in rows],
    )


def columns_of(
    conn: sqlite3.Connection, after: int, limit: int, names: dict[int, str], path: str
) -> Columns:
    """The rows ``SELECT_ALL`` reads (``limit`` -1: no limit), as :class:`Columns`, exactly as
    :func:`records_of` reads them: by :func:`read_range` when their positions are dense (the
    ``limit`` positions after ``after`` are then those rows), else :func:`read_page`, else
    row by row (:func:`columns_of_rows`)."""
    ranged = read_range(conn, after, min(after + limit, _NO_LIMIT) if limit >= 0 else _NO_LIMIT)
    page: Page | None = ranged
    if ranged.count < 0:
        page = read_page(conn, after, limit)  # too big to gather
    elif ranged.count != len(ranged.positions):
        page = None  # gaps: rows lost to damage, which the rows say
    columns = None
    if page is not None:
        if page.count > 0:
            try:
                learn_names(conn, set(_ints.decode(page.stream_ids)), names)
            except msgspec.DecodeError:
                page = None  # NULLs of a damaged page: the rows say where
        if page is not None:
            columns = page.columns(names)
    return columns if columns is not None else columns_of_rows(conn, after, limit, names, path)


_NO_LIMIT: Final = 2**63 - 1  # SQLite's largest integer


def records_of_columns(columns: Columns) -> list[ev.Recorded]:
    """The ``Recorded`` envelopes of :class:`Columns` (what :func:`records_of` makes of the
    same rows)."""
    if not len(columns):
        return []
    # the facts of one append share their time: convert each distinct one once
    times = {us: from_us(us) for us in set(columns.times)}
    names = columns.names
    Recorded = ev.Recorded
    return [
        Recorded(
            stream=names[sid],
            version=version,
            position=position,
            event_id=event_id,
            recorded_at=times[us],
            event=fact,
        )
        for sid, version, position, event_id, us, fact in zip(
            columns.stream_ids,
            columns.versions,
            columns.positions,
            columns.event_ids,
            columns.times,
            columns.facts,
            strict=True,
        )
    ]
