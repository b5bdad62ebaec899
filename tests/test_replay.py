"""Export, import and replay of JSONL event logs: memory stores on asyncio and trio; the same
round trips through ``sqlite:///`` URLs (asyncio only) once the SQLite store exists."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._replay import (
    BARE_RUN_ID,
    Divergence,
    ReplayReport,
    areplay,
    export,
    import_log,
    read_log,
    replay,
    replay_records,
)
from lifecycle._stores import MemoryStore

pytestmark = pytest.mark.anyio


async def _history(runs: lifecycle.AsyncRuns) -> list[int]:
    """A few runs of every built-in dialect: containers, warnings, failures, aborts, a rerun."""
    ids: list[int] = []
    a = await runs.create("qualytics", operation="profile", containers=["orders", "users"])
    await runs.record(a.id, ev.ExecutionStarted())
    for name in ("orders", "users"):
        await runs.record(a.id, ev.ExecutionStarted(), container=name)
    await runs.record(a.id, ev.LogRecorded(level="warning", text="slow"), container="orders")
    await runs.record(a.id, ev.ExecutionSucceeded(), container="orders")
    await runs.record(a.id, ev.ExecutionFailed(error="boom"), container="users")
    await runs.record(a.id, ev.ExecutionSucceeded())
    ids.append(a.id)
    b = await runs.create("datatailr", name="nightly", build=True)
    await runs.record(b.id, [ev.BuildStarted(image="x"), ev.BuildSucceeded(image="x", version=3)])
    await runs.record(b.id, [ev.ScheduleArmed(due_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))])
    await runs.record(b.id, [ev.ResourcesRequested(tier="s"), ev.ResourcesAssigned(node="n1")])
    await runs.record(b.id, [ev.ExecutionStarted(), ev.OutOfMemory(limit_bytes=2**20)])
    ids.append(b.id)
    c = await runs.create("domino", name="train")
    await runs.record(c.id, [ev.ResourcesAssigned(), ev.PreparationStarted()])
    await runs.abort(c.id)
    ids.append(c.id)
    d = await runs.rerun(c.id)
    await runs.record(d.id, [ev.ResourcesAssigned(), ev.PreparationStarted()])
    await runs.record(d.id, ev.ExecutionStarted())
    ids.append(d.id)
    return ids


async def _source() -> tuple[MemoryStore, list[int]]:
    store = MemoryStore()
    async with lifecycle.AsyncRuns(store) as runs:
        return store, await _history(runs)


async def _views(store: lifecycle.RunStore, ids: Sequence[int]) -> dict[int, lifecycle.RunView]:
    runs = lifecycle.AsyncRuns(store)
    return {run_id: await runs.get(run_id) for run_id in ids}


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


# -- export and import ----------------------------------------------------------------------------


async def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    source, ids = await _source()
    path = tmp_path / "log.jsonl"
    count = await export(source, path)
    original = await source.read_all()
    assert count == len(original) == len(_lines(path))
    assert list(read_log(path)) == original

    target = MemoryStore()
    assert await import_log(path, target) == count
    assert await target.read_all() == original  # ids, versions, positions and times kept
    assert await _views(target, ids) == await _views(source, ids)
    assert await target.list_runs() == await source.list_runs()  # the read model, rebuilt
    assert replay(path).views == await _views(source, ids)


async def test_reimport_is_a_no_op(tmp_path: Path) -> None:
    source, _ = await _source()
    path = tmp_path / "log.jsonl"
    await export(source, path)
    target = MemoryStore()
    await import_log(path, target)
    before, summaries = await target.read_all(), await target.list_runs()
    assert await import_log(path, target) == 0
    assert await target.read_all() == before
    assert await target.list_runs() == summaries


async def test_imported_run_ids_are_not_handed_out_again(tmp_path: Path) -> None:
    source, ids = await _source()
    path = tmp_path / "log.jsonl"
    await export(source, path)
    target = MemoryStore()
    await import_log(path, target)
    async with lifecycle.AsyncRuns(target) as runs:
        fresh = await runs.create("qualytics", operation="scan")
    assert fresh.id > max(ids)


async def test_incremental_export_continues_the_streams(tmp_path: Path) -> None:
    source = MemoryStore()
    target = MemoryStore()
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    async with lifecycle.AsyncRuns(source) as runs:
        run = await runs.create("qualytics", operation="profile", containers=["orders"])
        await runs.record(run.id, ev.ExecutionStarted())
        await export(source, first)
        head = (await source.read_all())[-1].position
        await runs.record(run.id, ev.ExecutionStarted(), container="orders")
        await runs.record(run.id, ev.ExecutionSucceeded(), container="orders")
        await runs.record(run.id, ev.ExecutionSucceeded())
        assert await export(source, second, after=head) == 3
    assert await import_log(first, target) == 3
    assert await import_log(second, target) == 3
    assert await target.read_all() == await source.read_all()
    assert await target.list_runs() == await source.list_runs()
    # and a full export over the combined target is all already there
    again = tmp_path / "3.jsonl"
    await export(source, again)
    assert await import_log(again, target) == 0


async def test_import_refuses_a_stream_the_target_holds_differently(tmp_path: Path) -> None:
    source, _ = await _source()
    path = tmp_path / "log.jsonl"
    await export(source, path)
    target = MemoryStore()
    async with lifecycle.AsyncRuns(target) as runs:
        await runs.create("domino")  # run 1, other content
    before = await target.read_all()
    with pytest.raises(lifecycle.ConcurrencyError, match="run-1 version 1 with other content"):
        await import_log(path, target)
    assert await target.read_all() == before


async def test_import_refuses_an_invalid_history_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type":"Requested","dialect":"qualytics","operation":"scan"}\n\n')
    with path.open("a") as f:
        f.write('{"type":"ExecutionSucceeded"}\n')  # line 3: Queued → Success is not an arrow
    target = MemoryStore()
    with pytest.raises(lifecycle.CorruptLog, match=r"bad\.jsonl:3:.*ExecutionSucceeded") as info:
        await import_log(path, target)
    assert (info.value.line, isinstance(info.value.__cause__, lifecycle.InvalidTransition)) == (
        3,
        True,
    )
    assert await target.read_all() == []


async def test_import_refuses_duplicate_event_ids(tmp_path: Path) -> None:
    source, _ = await _source()
    path = tmp_path / "log.jsonl"
    await export(source, path)
    lines = _lines(path)
    second = msgspec.json.decode(lines[1])
    second["event_id"] = msgspec.json.decode(lines[0])["event_id"]
    lines[1] = msgspec.json.encode(second)
    path.write_bytes(b"\n".join(lines) + b"\n")
    target = MemoryStore()
    with pytest.raises(lifecycle.CorruptLog, match="already used on line 1") as info:
        await import_log(path, target)
    assert info.value.line == 2
    assert await target.read_all() == []


def _far_run(tmp_path: Path, run_id: int) -> Path:
    path = tmp_path / "far.jsonl"
    record = ev.Recorded(
        stream=f"run-{run_id}",
        version=1,
        position=1,
        event_id=ev.new_event_id(),
        recorded_at=dt.datetime.now(dt.UTC),
        event=ev.Requested(dialect="domino"),
    )
    path.write_bytes(ev.encode_recorded_json(record) + b"\n")
    return path


async def test_the_allocator_moves_past_a_far_imported_run(tmp_path: Path) -> None:
    target = MemoryStore()
    await import_log(_far_run(tmp_path, 1000), target)
    assert await target.next_run_id() > 1000


def _shape(records: Sequence[ev.Recorded]) -> list[tuple[Any, ...]]:
    return [(r.stream, r.version, r.position, r.event_id, r.event) for r in records]


async def test_all_writes_in_one_append_reproduce_the_log() -> None:
    """The single-append import (once ``Write`` carries per-event times): one ``Write`` per run
    of consecutive records of a stream, later writes of a stream without expected version."""
    from lifecycle._replay._transfer import _writes

    source, _ = await _source()
    records = await source.read_all()
    target = MemoryStore()
    await target.append(_writes(records, times=False))
    assert _shape(await target.read_all()) == _shape(records)


# -- corrupt input --------------------------------------------------------------------------------


def _corrupt(lines: list[bytes], how: str) -> list[bytes]:
    lines = list(lines)
    if how == "truncated":
        lines[4] = lines[4][: len(lines[4]) // 2]
    elif how == "not an envelope":
        lines[4] = b'{"type":"ExecutionStarted"}'
    elif how == "position goes back":
        lines[4] = lines[4].replace(b'"position":5', b'"position":2')
    elif how == "version skips":
        record = msgspec.json.decode(lines[4])
        record["version"] += 1
        lines[4] = msgspec.json.encode(record)
    return lines


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("truncated", "not JSON"),
        ("not an envelope", "missing required field `stream`"),
        ("position goes back", "position 2 does not follow 4"),
        ("version skips", "versions must be dense"),
    ],
)
async def test_corrupt_line_names_its_line_and_nothing_is_imported(
    tmp_path: Path, how: str, why: str
) -> None:
    source, _ = await _source()
    path = tmp_path / "log.jsonl"
    await export(source, path)
    lines = _corrupt(_lines(path), how)
    lines.insert(2, b"   ")  # blank lines are skipped but counted: record 5 is on line 6
    path.write_bytes(b"\n".join(lines) + b"\n")
    for attempt in (lambda: list(read_log(path)), lambda: replay(path)):
        with pytest.raises(lifecycle.CorruptLog, match=why) as info:
            attempt()
        assert (info.value.file, info.value.line) == (str(path), 6)
    target = MemoryStore()
    with pytest.raises(lifecycle.CorruptLog, match=f"log.jsonl:6: .*{why}"):
        await import_log(path, target)
    assert await target.read_all() == []


async def test_lines_past_at_are_not_read(tmp_path: Path) -> None:
    source, _ = await _source()
    path = tmp_path / "log.jsonl"
    await export(source, path)
    lines = _lines(path)
    path.write_bytes(b"\n".join([*lines, b"{truncated"]) + b"\n")
    assert replay(path, at=3).records == 3
    with pytest.raises(lifecycle.CorruptLog) as info:
        replay(path)
    assert info.value.line == len(lines) + 1


def test_a_line_that_is_neither_format(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("\n[1, 2]\n")
    with pytest.raises(lifecycle.CorruptLog, match=r"x\.jsonl:2: expected a Recorded envelope"):
        list(read_log(path))


# -- replay ---------------------------------------------------------------------------------------


async def test_replay_of_a_store_equals_replay_of_its_export(tmp_path: Path) -> None:
    source, ids = await _source()
    path = tmp_path / "log.jsonl"
    await export(source, path)
    from_store = await areplay(source)
    from_file = await areplay(path)
    assert from_store.ok and from_file.ok
    assert from_store.views == from_file.views == await _views(source, ids)
    assert from_store.records == from_file.records == len(await source.read_all())


async def test_time_travel_equals_folding_the_prefix(tmp_path: Path) -> None:
    source, _ = await _source()
    path = tmp_path / "log.jsonl"
    await export(source, path)
    records = await source.read_all()
    for at in (0, 1, 2, 7, len(records) // 2, len(records) - 1, len(records), 10**6):
        prefix = [r for r in records if r.position <= at]
        by_run: dict[int, list[ev.Recorded]] = {}
        for r in prefix:
            by_run.setdefault(int(r.stream.split("/")[0][4:]), []).append(r)
        expected = {run_id: lifecycle.fold(None, rs) for run_id, rs in by_run.items()}
        for report in (replay(path, at=at), await areplay(source, at=at)):
            assert report.views == expected, at
            assert report.records == len(prefix)
            assert report.at == at


async def test_replay_under_another_dialect_finds_the_first_invalid_fact(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    async with lifecycle.AsyncRuns(store) as runs:
        ok = await runs.create("datatailr", operation="scan")
        await runs.record(ok.id, [ev.ResourcesRequested(), ev.ResourcesAssigned()])
        armed = await runs.create("datatailr", operation="scan")
        await runs.record(armed.id, ev.ScheduleArmed())  # Qualytics has no schedules
        await runs.record(armed.id, [ev.ResourcesRequested(), ev.ResourcesAssigned()])
        await runs.record(armed.id, [ev.ExecutionStarted(), ev.ExecutionSucceeded()])
    path = tmp_path / "datatailr.jsonl"
    await export(store, path)

    own = replay(path)
    assert own.ok and own.views[armed.id].state == "Completed"
    report = replay(path, dialect="qualytics")
    assert report.dialect == "qualytics" and not report.ok
    assert report.divergences == [
        Divergence(
            run_id=armed.id,
            stream=f"run-{armed.id}",
            position=5,
            version=2,
            line=5,
            dialect="qualytics",
            state="Queued",
            fact="ScheduleArmed",
            message=report.divergences[0].message,
        )
    ]
    assert "not accepted in state 'Queued'" in report.divergences[0].message
    # the diverged run stops where it diverged; the other folds on
    assert (report.views[armed.id].state, report.views[armed.id].version) == ("Queued", 1)
    assert report.views[ok.id].state == "Queued" and report.views[ok.id].version == 3
    text = str(report)
    assert "under qualytics" in text and "1 divergence" in text
    assert f"run {armed.id}: run-{armed.id} v2 (line 5, position 5): ScheduleArmed" in text
    # the same through the store, where there are no lines
    from_store = await areplay(store, dialect=lifecycle.dialect("qualytics"))
    assert [d.line for d in from_store.divergences] == [None]
    assert from_store.views == report.views


async def test_replay_reports_every_diverged_run_in_position_order() -> None:
    facts = [ev.ExecutionStarted(), ev.ExecutionSucceeded(), ev.LogRecorded()]
    records = []
    for position, (stream, version, fact) in enumerate(
        [
            ("run-1", 1, ev.Requested(dialect="qualytics", operation="scan")),
            ("run-2", 1, ev.ExecutionStarted()),  # no Requested: the run cannot be opened
            ("run-1", 2, facts[0]),
            ("run-1", 3, facts[1]),
            ("run-1", 4, facts[2]),  # terminal is final
            ("run-1", 5, facts[2]),
        ],
        1,
    ):
        records.append(
            ev.Recorded(
                stream=stream,
                version=version,
                position=position,
                event_id=str(position),
                recorded_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                event=fact,  # type: ignore[arg-type]
            )
        )
    report = replay_records(records)
    assert [(d.run_id, d.position, d.state, d.fact) for d in report.divergences] == [
        (2, 2, "[*]", "ExecutionStarted"),
        (1, 5, "Success", "LogRecorded"),
    ]
    assert list(report.views) == [1]
    assert report.views[1].version == 3
    assert report.divergence(2) is not None and report.divergence(3) is None


# -- bare facts and upcasters ---------------------------------------------------------------------

_BARE = b"""\
{"type": "Requested", "dialect": "qualytics", "operation": "scan", "name": "q"}

{"type": "ResourcesRequested"}
{"type": "ExecutionStarted"}
{"type": "LogRecorded", "level": "warning", "text": "careful"}
{"type": "ExecutionSucceeded"}
"""


async def test_a_bare_fact_file_is_one_run_stream(tmp_path: Path) -> None:
    path = tmp_path / "facts.jsonl"
    path.write_bytes(_BARE)
    records = list(read_log(path))
    assert {r.stream for r in records} == {f"run-{BARE_RUN_ID}"}
    assert [r.version for r in records] == [1, 2, 3, 4, 5]
    assert [r.position for r in records] == [1, 3, 4, 5, 6]  # positions are line numbers
    facts = [r.event for r in records]
    report = replay(path)
    expected = lifecycle.fold(None, facts, run_id=BARE_RUN_ID)
    view = report.views[BARE_RUN_ID]
    assert msgspec.structs.replace(view, position=0) == expected
    assert (view.state, view.warning, view.created_at) == ("Success", True, None)
    assert replay(path, at=4).views[BARE_RUN_ID].state == "Running"  # as of line 4
    assert replay(path, dialect="domino").divergences[0].line == 4
    # the same facts always get the same ids, so a re-import changes nothing
    assert [r.event_id for r in read_log(path)] == [r.event_id for r in records]
    target = MemoryStore()
    assert await import_log(path, target) == 5
    assert await import_log(path, target) == 0
    async with lifecycle.AsyncRuns(target) as runs:
        imported = await runs.get(BARE_RUN_ID)
        assert (imported.state, imported.warning) == ("Success", True)
        assert imported.created_at is not None  # stamped when imported


async def test_upcasters_apply_to_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ev, "_UPCASTERS", {})  # restored after the test

    def renamed(raw: dict[str, Any]) -> dict[str, Any]:  # an old tag for ExecutionStarted
        return {**raw, "type": "ExecutionStarted"}

    def old_result(raw: dict[str, Any]) -> dict[str, Any]:  # ResultStored once said "name"
        raw = dict(raw)
        if "key" not in raw:
            raw["key"] = raw.pop("name")
        return raw

    ev.register_upcaster("JobStarted", renamed)
    ev.register_upcaster("ResultStored", old_result)
    bare = tmp_path / "old.jsonl"
    bare.write_text(
        '{"type": "Requested", "dialect": "qualytics", "operation": "scan"}\n'
        '{"type": "JobStarted"}\n'
        '{"type": "ResultStored", "name": "r1"}\n'
    )
    facts = [r.event for r in read_log(bare)]
    assert facts[1:] == [ev.ExecutionStarted(), ev.ResultStored(key="r1")]

    source, _ = await _source()
    envelopes = tmp_path / "log.jsonl"
    await export(source, envelopes)
    lines = _lines(envelopes)
    old = msgspec.json.decode(lines[3])
    assert old["event"]["type"] == "ExecutionStarted"
    old["event"]["type"] = "JobStarted"
    lines[3] = msgspec.json.encode(old)
    envelopes.write_bytes(b"\n".join(lines) + b"\n")
    assert list(read_log(envelopes)) == await source.read_all()

    def broken(raw: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("nope")

    ev.register_upcaster("JobStarted", broken)
    with pytest.raises(lifecycle.CorruptLog, match=r"old\.jsonl:2: upcaster failed"):
        list(read_log(bare))


def test_without_upcasters_an_old_shape_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text('{"type": "JobStarted"}\n')
    with pytest.raises(lifecycle.CorruptLog, match=r"old\.jsonl:1: Invalid value 'JobStarted'"):
        list(read_log(path))


# -- export files ---------------------------------------------------------------------------------


class _FailingStore(MemoryStore):
    """Fails on the second page read: an export that dies half-way."""

    reads = 0

    async def read_all(self, *, after: int = 0, limit: int | None = None) -> list[ev.Recorded]:
        self.reads += 1
        if self.reads == 2:
            raise OSError("disk went away")
        return await super().read_all(after=after, limit=limit)


async def test_export_is_never_half_written(tmp_path: Path) -> None:
    store = _FailingStore()
    async with lifecycle.AsyncRuns(store) as runs:
        await _history(runs)
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"the previous export\n")
    with pytest.raises(OSError, match="disk went away"):
        await export(store, path, page_size=5)
    assert path.read_bytes() == b"the previous export\n"
    assert os.listdir(tmp_path) == ["log.jsonl"]  # no temporary file left behind
    # and a successful export replaces it whole, paging through the log
    store.reads = 10
    count = await export(store, path, page_size=5)
    assert count == len(await store.read_all()) == len(_lines(path))
    assert os.listdir(tmp_path) == ["log.jsonl"]


async def test_export_to_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source, _ = await _source()
    assert await export(source, after=3) == len(await source.read_all()) - 3
    out = capsysbinary.readouterr().out.splitlines()
    assert [ev.decode_recorded_json(line) for line in out] == (await source.read_all())[3:]


async def test_empty_sources(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    assert await export("memory://", path) == 0  # a URL is opened and closed here
    assert path.read_bytes() == b""
    for report in (replay(path), await areplay("memory://"), await areplay(MemoryStore())):
        assert (report.records, report.views, report.ok) == (0, {}, True)
    assert await import_log(path, MemoryStore()) == 0


def test_read_log_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    stdin = io.TextIOWrapper(io.BytesIO(_BARE))
    monkeypatch.setattr("sys.stdin", stdin)
    assert len(list(read_log("-"))) == 5
    stdin = io.TextIOWrapper(io.BytesIO(b"{oops\n"))
    monkeypatch.setattr("sys.stdin", stdin)
    with pytest.raises(lifecycle.CorruptLog, match="<stdin>:1: not JSON"):
        replay("-")


def test_an_unregistered_dialect_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"type": "Requested", "dialect": "nope"}\n')
    with pytest.raises(lifecycle.UnknownDialect, match="no dialect named 'nope'"):
        replay(path)
    assert replay(path, dialect="domino").views[BARE_RUN_ID].state == "Queued"


def test_report_is_a_plain_struct() -> None:
    report = ReplayReport(
        source="x", dialect=None, at=None, records=0, position=0, views={}, divergences=[]
    )
    assert report.ok and "0 records, 0 runs (none), 0 divergences" in str(report)
    assert msgspec.json.decode(msgspec.json.encode(report), type=ReplayReport) == report


# -- sqlite:/// URLs (asyncio only: aiosqlite) ----------------------------------------------------


def _needs_sqlite() -> None:
    pytest.importorskip("lifecycle._stores._sqlite", reason="the SQLite store has not landed yet")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_sqlite_round_trip_through_urls(tmp_path: Path) -> None:
    _needs_sqlite()
    source = f"sqlite:///{tmp_path / 'source.db'}"
    target = f"sqlite:///{tmp_path / 'target.db'}"
    async with lifecycle.AsyncRuns(source) as runs:
        ids = await _history(runs)
        views = {run_id: await runs.get(run_id) for run_id in ids}
        summaries = await runs.list()
    path = tmp_path / "log.jsonl"
    count = await export(source, path)
    assert await import_log(path, target) == count
    assert await import_log(path, target) == 0
    async with lifecycle.AsyncRuns(target) as runs:
        assert {run_id: await runs.get(run_id) for run_id in ids} == views
        assert await runs.list() == summaries
        fresh = await runs.create("qualytics", operation="scan")
        assert fresh.id > max(ids)
    assert (await areplay(target)).views == views | {fresh.id: fresh}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_sqlite_corrupt_import_writes_nothing(tmp_path: Path) -> None:
    _needs_sqlite()
    source, _ = await _source()
    path = tmp_path / "log.jsonl"
    await export(source, path)
    lines = _corrupt(_lines(path), "truncated")
    path.write_bytes(b"\n".join(lines) + b"\n")
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with pytest.raises(lifecycle.CorruptLog):
        await import_log(path, target)
    assert (await areplay(target)).records == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_sqlite_one_append_and_far_run_ids(tmp_path: Path) -> None:
    _needs_sqlite()
    from lifecycle._replay._transfer import _writes

    source, _ = await _source()
    records = await source.read_all()
    async with lifecycle.open_store(f"sqlite:///{tmp_path / 'one.db'}") as one:
        await one.append(_writes(records, times=False))
        assert _shape(await one.read_all()) == _shape(records)
    async with lifecycle.open_store(f"sqlite:///{tmp_path / 'far.db'}") as far:
        await import_log(_far_run(tmp_path, 1000), far)
        assert await far.next_run_id() > 1000


def test_sqlite_replay_is_blocking_for_scripts(tmp_path: Path) -> None:
    _needs_sqlite()
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with lifecycle.Runs(url) as runs:
        run = runs.create("datatailr", operation="scan")
        runs.record(run.id, ev.ScheduleArmed())
        view = runs.get(run.id)
    report = replay(url)
    assert report.views == {run.id: view} and report.ok
    assert [d.fact for d in replay(url, dialect="qualytics").divergences] == ["ScheduleArmed"]
    assert replay(url, at=0).views == {}
