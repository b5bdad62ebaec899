"""Reading ``events`` rows of the ``sqlite:///`` store as ``Recorded`` envelopes: the
statements, the stream-name cache, and the decoding of the facts (in one msgspec call when it
can, through the upcasters when it must) — plain ``sqlite3``, run on the store's connection
threads. The column-wise fast path of ``read_all`` and replay is in ``_sqlite_pages.py``."""

from __future__ import annotations

import sqlite3
from typing import Any, Final

import msgspec

from lifecycle import events as ev
from lifecycle._errors import CorruptLog

from ._sqlite_rows import from_us, json_list

__all__ = [
    "CHECK_HINT",
    "DAMAGED",
    "SELECT_ALL",
    "SELECT_READ",
    "check_rows",
    "damaged",
    "decode_rows",
    "is_damage",
    "learn_names",
    "max_position",
    "records_of",
    "upcasting",
]

SELECT_READ: Final = (
    "SELECT e.position, e.stream_id, e.version, e.event_id, e.recorded_at, e.data "
    "FROM json_each(?) AS j CROSS JOIN streams AS s ON s.name = j.value "
    "CROSS JOIN events AS e ON e.stream_id = s.id WHERE e.position > ? ORDER BY e.position"
)
SELECT_ALL: Final = (
    "SELECT position, stream_id, version, event_id, recorded_at, data FROM events "
    "WHERE position > ? ORDER BY position LIMIT ?"
)


def records_of(
    conn: sqlite3.Connection,
    rows: list[Any],
    names: dict[int, str],
    path: str,
    *,
    versions: bool = False,
) -> list[ev.Recorded]:
    """``Recorded`` envelopes of ``events`` rows (position, stream_id, version, event_id,
    recorded_at, data), looking stream names up in ``names`` (and filling it in). Decodes
    every fact in one msgspec call when it can. Raises ``CorruptLog`` for rows a damaged file
    gave (see :func:`check_rows`; ``versions``: the rows are the tails of their streams, in
    position order, so each stream's versions must follow one another)."""
    if not rows:
        return []
    check_rows(rows, path, versions=versions)
    learn_names(conn, {row[1] for row in rows}, names)
    facts = decode_rows(rows, path)
    # the facts of one append share their time: convert each distinct one once
    times = {us: from_us(us) for us in {row[4] for row in rows}}
    Recorded = ev.Recorded
    try:
        return [
            Recorded(
                stream=names[sid],
                version=version,
                position=position,
                event_id=event_id,
                recorded_at=times[us],
                event=fact,
            )
            for (position, sid, version, event_id, us, _), fact in zip(rows, facts, strict=True)
        ]
    except KeyError as exc:
        position = next(row[0] for row in rows if row[1] not in names)
        raise damaged(path, position, f"position {position} names no stream") from exc


DAMAGED: Final = "the store file is damaged"
"""What every ``CorruptLog`` of a damaged SQLite file says (the CLI's tests look for it)."""


def damaged(path: str, position: int, why: str) -> CorruptLog:
    """The ``CorruptLog`` of a damaged store file, at ``position`` (of the log)."""
    return CorruptLog(path, position, f"{DAMAGED}: {why}{CHECK_HINT}")


CHECK_HINT: Final = "; `lifecycle check` reports the damage"


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed because the file is damaged (not busy, full, read-only, …): its
    own verdict (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``), or a text column that is not text."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or str(exc).startswith(
        "Could not decode to UTF-8"
    )


def check_rows(
    rows: list[Any], path: str, *, first: int | None = None, versions: bool = False
) -> None:
    """Raise ``CorruptLog`` unless every ``events`` row has its columns' types (a damaged page
    reads as NULLs and garbage, not as an error), and, given ``first``, their positions run
    ``first, first + 1, …`` (a store's positions are dense: the single writer gives each
    append ``MAX(position) + 1`` in its transaction, and nothing deletes an event, so a gap is
    lost rows); given ``versions``, each stream's versions follow one another (rows in
    position order, as :data:`SELECT_READ` gives them)."""
    expected = first
    last: dict[int, int] = {}
    for row in rows:
        position, sid, version, event_id, us, data = row
        if not (
            type(position) is int
            and type(sid) is int
            and type(version) is int
            and type(event_id) is str
            and type(us) is int
            and type(data) is bytes
        ):
            at = position if type(position) is int else (expected or 0)
            raise damaged(path, at, f"the row at position {position!r} does not hold an event")
        if expected is not None:
            if position != expected:
                raise damaged(path, expected, f"position {expected} is missing from the log")
            expected += 1
        if versions:
            before = last.get(sid)
            if before is not None and version != before + 1:
                raise damaged(
                    path, position, f"stream id {sid} has version {version} after {before}"
                )
            last[sid] = version


def learn_names(conn: sqlite3.Connection, ids: set[int], names: dict[int, str]) -> None:
    """Add the names of the stream ``ids`` that ``names`` lacks (ids never change). One SQLite
    step, not one per name: a step lets go of the GIL, and getting it back from a busy event
    loop can take a switch interval (5 ms)."""
    # Asked for, not cached: a look-up per id asked. (``ids - names.keys()`` walked the whole
    # cache, so a read cost what every earlier read had cached: 10-20x at 100k streams.)
    missing = [i for i in ids if i not in names]
    if missing:
        (found,) = conn.execute(_SELECT_NAMES, (json_list(sorted(missing)),)).fetchone()
        names.update(_names.decode(found))


_SELECT_NAMES: Final = (
    "SELECT json_group_object(s.id, s.name) FROM json_each(?) AS j "
    "CROSS JOIN streams AS s ON s.id = j.value"
)
_names: Final = msgspec.json.Decoder(dict[int, str])


def decode_rows(rows: list[Any], path: str) -> list[ev.FactType]:
    """The facts of ``events`` rows (their ``data``, column 5), through the upcasters.
    Raises ``CorruptLog`` naming the first row that cannot be read."""
    n = len(rows)
    # The blobs are msgpack facts; a msgpack array header in front makes them one array
    # that msgspec decodes in a single call (much cheaper than a call per fact).
    header = b"\xdd" + n.to_bytes(4, "big")
    try:
        facts = ev.decode_facts(header + b"".join([row[5] for row in rows]))
    except msgspec.DecodeError:
        pass  # an old shape somewhere: decode one by one, through the upcasters
    else:
        if not upcasting(facts):
            return facts
    facts = []
    for row in rows:
        try:
            facts.append(ev.decode_fact(row[5]))
        except msgspec.DecodeError as exc:
            why = f"event {row[3]} (position {row[0]}) cannot be read: {exc}"
            raise damaged(path, row[0], why) from exc
    return facts


def upcasting(facts: list[ev.FactType]) -> bool:
    """Whether some of ``facts`` (decoded in bulk, which skips the upcasters) have a tag with
    upcasters: an old shape that still decodes must go through them all the same."""
    tags = ev._UPCASTERS  # the registry of upcasters, by tag
    return bool(tags) and any(type(fact).__name__ in tags for fact in facts)


def max_position(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT MAX(position) FROM events").fetchone()[0] or 0)
