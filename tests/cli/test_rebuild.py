"""``lifecycle rebuild``: the real console script, in a subprocess, against SQLite files (and
once in process, on ``memory://``).

A store written by the run service (several dialects, ended and running runs, a rerun) has its
read model corrupted by hand — rows changed, deleted, invented — and the command must give back
exactly the rows it had, say what differed, and do it while another process appends.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._cli import cli as cli_group
from lifecycle._cli._base import Settings
from lifecycle._dialects import _REGISTRY
from lifecycle._runs import summary_of
from lifecycle._stores import RunSummary, Write, open_store
from lifecycle._views import Projector
from tests.stores._dialects import declare_acme

from ._support import REPO, Histories, cli, command, record_histories


def read_model(url: str) -> list[RunSummary]:
    async def main() -> list[RunSummary]:
        async with open_store(url, readonly=True) as store:
            return await store.list_runs()

    return anyio.run(main, backend="asyncio")


def fold_of_log(url: str) -> list[RunSummary]:
    """What the read model must be: a fresh fold of the whole log, newest first."""

    async def main() -> list[RunSummary]:
        async with open_store(url, readonly=True) as store:
            projector = Projector(strict=False)
            projector.feed(await store.read_all())
        return sorted((summary_of(v) for v in projector.views()), key=lambda s: -s.run_id)

    return anyio.run(main, backend="asyncio")


def corrupt(url: str, h: Histories) -> None:
    """Hand edits of every kind: a row changed, one made stale, one deleted, one invented."""
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        db.execute("UPDATE runs SET state = 'Bogus', warning = 0 WHERE run_id = ?", (h.nightly,))
        db.execute("UPDATE runs SET started_at = NULL WHERE run_id = ?", (h.active,))
        db.execute("DELETE FROM runs WHERE run_id = ?", (h.numbers[0],))
        db.execute(
            "INSERT INTO runs (run_id, dialect, operation, name, state, terminal, warning) "
            "VALUES (999, 'domino', 'run', 'ghost', 'Running', 0, 0)"
        )
        db.commit()


def test_rebuild_in_process_on_a_memory_store() -> None:
    memory = lifecycle.MemoryStore()
    h = record_histories(memory)
    original = anyio.run(memory.list_runs)
    anyio.run(memory.replace_summaries, original[1:])
    runner = CliRunner()
    result = runner.invoke(cli_group, ["rebuild", "--json"], obj=Settings(store=memory))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["store"], report["added"], report["changed"]) == ("memory://", [h.rerun], [])
    assert anyio.run(memory.list_runs) == original


@pytest.mark.slow
def test_rebuild_gives_back_the_read_model_the_appends_made(fresh: tuple[str, Histories]) -> None:
    url, h = fresh
    original = read_model(url)
    assert original == fold_of_log(url)  # what the appends left is the fold of the log
    assert {r.dialect for r in original} == {"datatailr", "domino", "qualytics"}
    assert any(r.terminal for r in original) and any(not r.terminal for r in original)
    assert any(r.original_run_id == h.nightly for r in original)  # the rerun's lineage
    corrupt(url, h)
    assert read_model(url) != original

    result = cli("rebuild", store=url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a terminal: no progress bar
    out = result.stdout
    assert f"rebuilt the read model of {url}" in out
    assert f"{len(original)} runs from " in out
    unchanged = len(original) - 3
    assert f"rows: 1 added, 2 changed, 1 removed, {unchanged} unchanged" in out
    assert f"added: {h.numbers[0]}\n" in out
    assert f"changed: {', '.join(map(str, sorted([h.nightly, h.active])))}\n" in out
    assert "removed: 999\n" in out
    assert read_model(url) == original

    again = cli("rebuild", store=url)
    assert again.returncode == 0
    assert f"rows: 0 added, 0 changed, 0 removed, {len(original)} unchanged" in again.stdout


@pytest.mark.slow
def test_rebuild_json(fresh: tuple[str, Histories]) -> None:
    url, h = fresh
    original = read_model(url)
    corrupt(url, h)
    colour = {"FORCE_COLOR": "1", "TERM": "xterm"}  # progress would show: --json keeps quiet
    result = cli("rebuild", "--json", store=url, env=colour)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert set(report) == {
        "store", "runs", "records", "position", "ignored", "added", "changed", "removed",
        "unchanged", "diverged", "rowless", "skipped", "seconds",
    }  # fmt: skip
    assert report["store"] == url and report["runs"] == len(original)
    assert report["added"] == [h.numbers[0]] and report["removed"] == [999]
    assert report["changed"] == sorted([h.nightly, h.active])
    assert report["diverged"] == [] and report["records"] == report["position"] > 0
    assert report["skipped"] == []
    assert read_model(url) == original
    again = json.loads(cli("--json", "rebuild", store=url).stdout)  # the global flag too
    assert (again["added"], again["changed"], again["removed"]) == ([], [], [])
    assert again["unchanged"] == len(original)


@pytest.mark.slow
def test_rebuild_shows_progress_on_a_terminal_only(fresh: tuple[str, Histories]) -> None:
    url, _ = fresh
    colour = {"FORCE_COLOR": "1", "TERM": "xterm"}
    shown = cli("rebuild", store=url, env=colour)
    assert shown.returncode == 0
    assert "reading the log" in shown.stderr  # Rich's progress bar, cleared when done
    quiet = cli("rebuild", "--no-progress", store=url, env=colour)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.slow
def test_a_run_that_does_not_fold_is_reported_and_exits_1(fresh: tuple[str, Histories]) -> None:
    url, h = fresh

    async def break_it() -> None:  # past the run service, which would refuse the fact
        async with open_store(url) as store:
            await store.append([Write(stream=f"run-{h.nightly}", events=(ev.ExecutionStarted(),))])

    anyio.run(break_it, backend="asyncio")
    before = read_model(url)
    result = cli("rebuild", store=url)
    assert result.returncode == 1, result.stderr
    assert "1 run did not fold" in result.stdout
    assert f"✗ run {h.nightly}: run-{h.nightly} v" in result.stdout
    assert "ExecutionStarted not accepted in state 'Success' by qualytics" in result.stdout
    assert read_model(url) == before  # the run kept as it was before that fact
    as_json = cli("rebuild", "--json", store=url)
    assert as_json.returncode == 1
    (diverged,) = json.loads(as_json.stdout)["diverged"]
    assert (diverged["run_id"], diverged["fact"]) == (h.nightly, "ExecutionStarted")


@pytest.mark.slow
def test_rebuild_errors_are_one_line(recorded: tuple[str, Histories], tmp_path: Path) -> None:
    url, _ = recorded
    missing = tmp_path / "missing.db"
    result = cli("rebuild", store=f"sqlite:///{missing}")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no store at") and result.stderr.count("\n") == 1
    assert not missing.exists()
    readonly = cli("rebuild", store=f"{url}?mode=ro")
    assert readonly.returncode == 1
    assert readonly.stderr.startswith("error: ") and "read-only" in readonly.stderr
    assert readonly.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_run_of_a_dialect_only_its_writer_registered_keeps_its_row(
    fresh: tuple[str, Histories], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user dialect is registered by the program that writes its runs — here, this test —
    never by the `lifecycle` command, which therefore cannot fold those runs: it must leave
    their rows exactly as they are (a wrong one too: it cannot tell), rebuild the others, say
    which runs it skipped and why, and exit 1 (the read model was not wholly rebuilt)."""
    url, h = fresh
    monkeypatch.delitem(_REGISTRY, "acme", raising=False)
    lifecycle.register_dialect(declare_acme())

    async def write() -> tuple[int, int]:
        async with lifecycle.AsyncRuns(url) as runs:
            run = await runs.create("acme", name="user-dialect")
            await runs.record(run.id, [ev.ExecutionStarted(), ev.LogRecorded(text="working")])
            return run.id, (await runs.get(run.id)).version

    mine, records = anyio.run(write, backend="asyncio")
    _REGISTRY.pop("acme")
    original = read_model(url)
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        db.execute("UPDATE runs SET state = 'Bogus' WHERE run_id IN (?, ?)", (mine, h.nightly))
        db.commit()
    tampered = read_model(url)

    result = cli("rebuild", store=url)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "rows: 0 added, 1 changed, 0 removed" in out
    assert f"changed: {h.nightly}\n" in out
    assert (
        "1 run skipped (dialect not registered in this process; rows left as they were):\n" in out
    )
    assert f"  ! acme: {mine}\n" in out
    after = read_model(url)
    assert [r for r in after if r.run_id == mine] == [r for r in tampered if r.run_id == mine]
    assert [r for r in after if r.run_id != mine] == [r for r in original if r.run_id != mine]

    as_json = cli("rebuild", "--json", store=url)
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["skipped"] == [{"run_id": mine, "dialect": "acme", "records": records}]
    assert (report["changed"], report["diverged"]) == ([], [])
    assert report["runs"] == len(original) - 1
    assert read_model(url) == after


@pytest.mark.slow
def test_long_lists_of_ids_are_not_wrapped_in_a_pipe(fresh: tuple[str, Histories]) -> None:
    url, _ = fresh
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
        db.execute("UPDATE runs SET state = 'Bogus'")
        db.commit()
    ids = [r.run_id for r in reversed(read_model(url))]
    assert 12 < len(ids) <= 20
    result = cli("rebuild", store=url, env={"COLUMNS": "40"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"rebuilt the read model of {url}\n")  # each line whole
    assert f"\n  rows: 0 added, {len(ids)} changed, 0 removed, 0 unchanged\n" in out
    assert f"\n  changed: {', '.join(map(str, ids))}\n" in out


@pytest.mark.slow
def test_rebuild_refuses_an_empty_file(tmp_path: Path) -> None:
    """A 0-byte file is not a store (SQLite would make it one, on the first write): the command
    says so and leaves it alone — as a read-only open does."""
    empty = tmp_path / "runs.db"
    empty.touch()
    result = cli("rebuild", store=f"sqlite:///{empty}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {empty} is empty: not a lifecycle store")
    assert result.stderr.count("\n") == 1
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db"]


def test_the_root_help_gives_the_exit_codes_of_rebuild() -> None:
    result = CliRunner().invoke(cli_group, ["--help"])
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    assert "a run's log does not fold (replay, rebuild)" in help_text
    assert "the read model could not be wholly rebuilt (rebuild" in help_text


def _bulk(url: str, runs: int) -> None:
    """A longer log, fast: whole valid histories appended straight to the store."""

    async def main() -> None:
        async with open_store(url) as store:
            batch = []
            for i in range(1, runs + 1):
                facts = (
                    ev.Requested(dialect="domino", name=f"bulk-{i % 5}"),
                    *START_SEQUENCE,
                    *(ev.LogRecorded(text=f"line {k}") for k in range(4)),
                    ev.ExecutionSucceeded(),
                )
                batch.append(Write(stream=f"run-{10_000 + i}", events=facts))
                if len(batch) == 500:
                    await store.append(batch)
                    batch = []
            await store.append(batch)

    anyio.run(main, backend="asyncio")


@pytest.mark.slow
def test_rebuild_while_another_process_appends(tmp_path: Path) -> None:
    """The command rebuilds while this process creates runs and drives them to their end
    through the run service. Each run is left alone once it has ended, so a run whose last fact
    landed between the rebuild's last read and its replace would keep a stale row for good:
    the read model must equal a fresh fold of the log afterwards."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    _bulk(url, 3000)

    async def drive(proc: subprocess.Popen[str]) -> tuple[int, int]:
        async with lifecycle.AsyncRuns(url) as runs:
            start = (await runs.store.read_all())[-1].position
            done = 0

            async def one(i: int) -> None:
                run = await runs.create(
                    "qualytics", operation="profile", name="live", containers=["t"]
                )
                await runs.record(run.id, ev.ExecutionStarted())
                await runs.record(
                    run.id, [ev.ExecutionStarted(), ev.ExecutionSucceeded()], container="t"
                )
                await runs.record(
                    run.id, ev.ExecutionSucceeded() if i % 2 else ev.ExecutionFailed()
                )

            while proc.poll() is None:
                await one(done)
                done += 1
            for _ in range(5):  # and after it, too
                await one(done)
                done += 1
            return start, done

    with subprocess.Popen(
        [*command(), "--store", url, "rebuild", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    ) as proc:
        start, driven = anyio.run(drive, proc, backend="asyncio")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["diverged"] == []
    assert driven > 5
    # the rebuild folded some of the runs driven meanwhile, not all of them
    assert start < report["position"], "the writer never got in before the rebuild ended"
    final = read_model(url)
    assert final == fold_of_log(url)
    assert len([r for r in final if r.name == "live"]) == driven
