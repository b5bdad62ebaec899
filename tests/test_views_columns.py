"""The projector's column feed (replay's fast path for SQLite logs) folds exactly as ``feed``
does, and the views' fast paths build what the general ones would."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE, STOP_SEQUENCE
from lifecycle._dialects import resolve
from lifecycle._views import Projector, StreamFold, _guarded

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OPERATION = {"datatailr": "run", "domino": "run", "qualytics": "scan"}
LEVELS = ["info", "info", "debug", "warning", "error"]


def _body(rnd: random.Random) -> list[ev.Fact]:
    """A canonical history after ``Requested``: maybe cut short, maybe with a fact that does
    not fit somewhere (a schedule Qualytics and Domino do not have, a fact after the end)."""
    facts: list[ev.Fact] = []
    for fact in START_SEQUENCE:
        facts.append(fact)
        facts += [ev.LogRecorded(level=rnd.choice(LEVELS)) for _ in range(rnd.randint(0, 2))]
    end = rnd.random()
    if end < 0.4:
        facts.append(ev.ExecutionSucceeded(cached_from=rnd.choice([None, 3])))
    elif end < 0.55:
        facts.append(ev.ExecutionFailed(error=rnd.choice(["", "boom"]), exit_code=2))
    elif end < 0.65:
        facts.append(ev.OutOfMemory(limit_bytes=rnd.choice([None, 2**20])))
    elif end < 0.75:
        facts += STOP_SEQUENCE(reason="timeout")
    elif end < 0.85:
        facts.append(ev.InfrastructureFailed(reason="worker_lost"))
    else:
        facts = facts[: rnd.randint(0, len(facts))]  # still running
    if rnd.random() < 0.15:
        facts.insert(rnd.randint(0, len(facts)), ev.ScheduleArmed())
    if rnd.random() < 0.1:
        facts.append(ev.LogRecorded(text="after the end, or not"))
    return facts


def random_log(seed: int, runs: int = 60) -> list[tuple[str, ev.Fact, dt.datetime]]:
    """Many runs' streams interleaved at random (each stream in order): every dialect, reruns,
    params, containers (Qualytics profiles), invalid facts, runs that cannot be opened, and
    facts sharing their time as the facts of one append do."""
    rnd = random.Random(seed)
    streams: list[list[tuple[str, ev.Fact]]] = []
    for run_id in range(1, runs + 1):
        name = f"run-{run_id}"
        dialect = rnd.choice(list(OPERATION))
        if rnd.random() < 0.05:  # no Requested: the run cannot be opened
            streams.append([(name, ev.ExecutionStarted()), (name, ev.LogRecorded())])
            continue
        containers: tuple[str, ...] = ()
        operation = OPERATION[dialect]
        if dialect == "qualytics" and rnd.random() < 0.4:
            operation, containers = "profile", ("orders", "users")[: rnd.randint(1, 2)]
        lineage: dict[str, Any] = {}
        if rnd.random() < 0.2:
            lineage = {"mode": "rerun", "original_run_id": run_id - 1, "root_run_id": 1}
        requested = ev.Requested(
            dialect=dialect,
            operation=operation,
            name=f"job-{run_id % 7}",
            containers=containers,
            params={"n": run_id} if rnd.random() < 0.3 else {},
            job_version=rnd.choice([None, None, 4]),
            build=dialect == "datatailr" and rnd.random() < 0.3,
            **lineage,
        )
        streams.append([(name, requested), *((name, f) for f in _body(rnd))])
        for c in containers:
            child = ev.Requested(dialect="qualytics", operation="profile")
            streams.append([(f"{name}/{c}", child), *((f"{name}/{c}", f) for f in _body(rnd))])
    log: list[tuple[str, ev.Fact, dt.datetime]] = []
    at = EPOCH
    while streams:
        if rnd.random() < 0.3:
            at += dt.timedelta(seconds=rnd.randint(1, 90), microseconds=rnd.randint(0, 999))
        stream = rnd.choice(streams)
        name, fact = stream.pop(0)
        log.append((name, fact, at))
        if not stream:
            streams.remove(stream)
    return log


def recorded(log: Sequence[tuple[str, ev.Fact, dt.datetime]]) -> list[ev.Recorded]:
    versions: dict[str, int] = {}
    out = []
    for position, (stream, fact, at) in enumerate(log, 1):
        versions[stream] = versions.get(stream, 0) + 1
        out.append(
            ev.Recorded(
                stream=stream,
                version=versions[stream],
                position=position,
                event_id=f"e{position}",
                recorded_at=at,
                event=fact,  # type: ignore[arg-type]
            )
        )
    return out


def _us(at: dt.datetime) -> int:
    return (at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _time(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)


def feed_columns(projector: Projector, records: list[ev.Recorded], page: int) -> None:
    """Feed ``records`` through the column path, ``page`` at a time, as the replayer does."""
    keys: dict[str, int] = {}
    names: dict[int, str] = {}
    accs: dict[int, StreamFold] = {}
    run_ids: dict[int, int] = {}
    by_position = {r.position: r for r in records}
    for start in range(0, len(records), page):
        chunk = records[start : start + page]
        for r in chunk:
            key = keys.setdefault(r.stream, len(keys) + 7)
            names[key] = r.stream
        projector._feed_columns(
            accs=accs,
            run_ids=run_ids,
            names=names,
            keys=[keys[r.stream] for r in chunk],
            positions=[r.position for r in chunk],
            times=[_us(r.recorded_at) for r in chunk],
            facts=[r.event for r in chunk],
            to_time=_time,
            record=by_position.__getitem__,
        )


def _errors(projector: Projector) -> list[tuple[int, int, str, str, str]]:
    return [
        (run_id, record.position, exc.dialect, exc.state, str(exc))
        for run_id, (record, exc) in projector.errors.items()
    ]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dialect", [None, "qualytics"])
def test_the_column_feed_folds_as_feed_does(seed: int, dialect: str | None) -> None:
    records = recorded(random_log(seed))
    expected = Projector(dialect, strict=False)
    expected.feed(records)
    views = list(expected.views())
    assert expected.errors and any(v.containers for v in views) and any(v.warning for v in views)
    for page in (1, 7, len(records)):
        got = Projector(dialect, strict=False)
        feed_columns(got, records, page)
        assert list(got.views()) == list(expected.views())
        assert _errors(got) == _errors(expected)
        assert got.position == expected.position
        assert got.runs.keys() == expected.runs.keys()


@pytest.mark.parametrize("seed", range(12))
def test_strict_column_feed_raises_where_feed_does(seed: int) -> None:
    records = recorded(random_log(seed, runs=20))
    expected = Projector()
    try:
        expected.feed(records)
        error: lifecycle.InvalidTransition | None = None
    except lifecycle.InvalidTransition as exc:
        error = exc
    got = Projector()
    if error is None:
        feed_columns(got, records, 5)
    else:
        with pytest.raises(type(error)) as caught:
            feed_columns(got, records, 5)
        assert str(caught.value) == str(error)
    assert got.position == expected.position
    assert list(got.views()) == list(expected.views())


def test_a_log_fed_in_part_as_records_then_as_columns_folds_once() -> None:
    records = recorded(random_log(3))
    expected = Projector(strict=False)
    expected.feed(records)
    got = Projector(strict=False)
    half = len(records) // 2
    got.feed(records[:half])
    keyed = records[half:]
    feed_columns(got, keyed, 9)
    assert list(got.views()) == list(expected.views())
    assert _errors(got) == _errors(expected)


def test_the_guard_shortcut_resolves_as_the_dialects_do() -> None:
    guarded = 0
    facts = [
        ev.Requested(dialect="x", operation=op, build=build)
        for op in ("run", "scan", "promote", "sync", "nope")
        for build in (False, True)
    ]
    for name in ("datatailr", "domino", "qualytics"):
        d = lifecycle.dialect(name)
        for table in (d.table, *([d.containers.table] if d.containers else [])):
            for row in table.rows.values():
                for cls, entry in row.items():
                    if isinstance(entry, str):
                        continue  # the hot path takes plain moves before asking
                    for fact in [f for f in facts if isinstance(f, cls)] or [cls()]:
                        assert _guarded(entry, fact) == resolve(entry, fact)
                        guarded += 1
    assert guarded > 4
    assert _guarded(None, ev.ExecutionStarted()) is None


def _general_view(run: lifecycle.RunView) -> dict[str, Any]:
    return msgspec.structs.asdict(run)


@pytest.mark.parametrize("lineage", [{}, {"mode": "resume", "original_run_id": 3}])
def test_views_with_and_without_lineage_or_containers(lineage: dict[str, Any]) -> None:
    """The fast path of ``RunFold.view`` (no lineage, no containers) and the general one."""
    requested = ev.Requested(dialect="qualytics", operation="scan", params={"a": [1]}, **lineage)
    view = lifecycle.fold(None, [requested, ev.ExecutionStarted(), ev.ExecutionSucceeded()])
    fields = _general_view(view)
    assert fields["mode"] == lineage.get("mode", "new")
    assert fields["original_run_id"] == lineage.get("original_run_id")
    assert fields["params"] == {"a": [1]} and fields["params"] is not requested.params
    assert (fields["state"], fields["warning"], fields["containers"]) == ("Success", False, {})


def test_a_run_that_could_not_be_opened_is_not_opened_later() -> None:
    """Its first fact (by position) is a container's: the run has no view, as when its first
    fact is not ``Requested`` — even though its ``Requested`` comes next."""
    requested = ev.Requested(dialect="qualytics", operation="profile", containers=("c",))
    records = recorded(
        [
            ("run-1/c", ev.Requested(dialect="qualytics", operation="profile"), EPOCH),
            ("run-1", requested, EPOCH),
            ("run-1/c", ev.ExecutionStarted(), EPOCH),
            ("run-2", ev.Requested(dialect="domino"), EPOCH),
        ]
    )
    for feed in (Projector.feed, lambda p, rs: feed_columns(p, rs, 2)):
        projector = Projector(strict=False)
        feed(projector, records)
        assert list(projector.runs) == [2] and list(projector.errors) == [1]
        assert projector.errors[1][0].position == 1
