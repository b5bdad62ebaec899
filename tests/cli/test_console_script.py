"""The real console script, in a subprocess, against SQLite stores the run service wrote.

Each test starts the CLI once or twice (about 0.3 s each): the checks that need a real process —
exit codes, stdout vs stderr, colour and ``NO_COLOR``, a store in another process, ``--follow``
tailing a run that another process writes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import anyio
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE

from ._support import HOSTILE, REPO, Histories, cli, command

pytestmark = pytest.mark.slow

COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])[;m]")


def test_job_ls_against_sqlite(recorded: tuple[str, Histories]) -> None:
    url, _ = recorded
    result = cli("job", "ls", store=url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = {ln.split()[0]: ln for ln in result.stdout.splitlines()[1:]}
    assert set(rows) == {"hostile", "nightly", "numbers", "train", "@qualytics"}
    assert "✓✗✓✓✓✗✓✓✓✗" in rows["numbers"] and "Failed" in rows["numbers"]
    assert "⚠" not in rows["nightly"]  # its latest run is the rerun, still Queued


def test_store_option_beats_the_environment(
    recorded: tuple[str, Histories], tmp_path: Path
) -> None:
    url, _ = recorded
    result = cli("--store", url, "job", "ls", "--json", store=f"sqlite:///{tmp_path}/none.db")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 5
    plain_path = url.removeprefix("sqlite:///")  # a plain path works too
    assert cli("--store", plain_path, "job", "ls").returncode == 0


def test_job_runs_shows_the_warning_next_to_the_run_id(recorded: tuple[str, Histories]) -> None:
    url, h = recorded
    result = cli("job", "runs", "nightly", store=url)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["RUN", "STATE", "STARTED"]
    rerun = next(ln for ln in lines if ln.startswith(f"{h.rerun} "))
    original = next(ln for ln in lines if ln.startswith(f"{h.nightly} "))
    assert original.startswith(f"{h.nightly} ⚠") and "Success" in original
    assert "Queued" in rerun and f" {h.nightly} " in rerun  # the original run id


def test_job_get(recorded: tuple[str, Histories]) -> None:
    url, _ = recorded
    result = cli("job", "get", "numbers", store=url)
    assert result.returncode == 0
    assert "my_number → first_addition" in result.stdout
    assert "first_addition → add_one" in result.stdout


def test_log_read_prints_markup_and_escapes_literally(recorded: tuple[str, Histories]) -> None:
    url, _ = recorded
    result = cli("log", "read", "hostile", store=url, env={"FORCE_COLOR": "1", "TERM": "xterm"})
    assert result.returncode == 0
    out = result.stdout
    assert "[bold red]x[/bold red]" in out  # shown, not applied
    assert "\\x1b[31mred\\x1b[0m" in out and "\\x1b]0;pwned\\x07" in out
    for raw in ("\x1b]", "\x07", "\x1b[2J", "\r", "\u202e", "\x1b[31mred"):
        assert raw not in out
    assert COLOUR.search(out)  # our own colours are on: FORCE_COLOR
    assert "run " in result.stderr and "run " not in out  # the header goes to stderr


def test_no_color(recorded: tuple[str, Histories]) -> None:
    url, _ = recorded
    forced = {"FORCE_COLOR": "1", "TERM": "xterm", "NO_COLOR": "1"}
    for args in (["job", "ls"], ["job", "runs", "numbers"], ["log", "read", "numbers"]):
        result = cli(*args, store=url, env=forced)
        assert result.returncode == 0
        assert not COLOUR.search(result.stdout + result.stderr), args


def test_log_read_json_keeps_the_exact_text(recorded: tuple[str, Histories]) -> None:
    url, _ = recorded
    result = cli("log", "read", "hostile", "--json", store=url)
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["text"] for e in entries] == [HOSTILE]
    assert result.stderr == ""


def test_errors_are_one_line(recorded: tuple[str, Histories], tmp_path: Path) -> None:
    url, _ = recorded
    unknown = cli("job", "runs", "nope", store=url)
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert (
        unknown.stderr
        == f"error: no job named 'nope' in {url} (`lifecycle job ls` lists the jobs)\n"
    )
    missing = cli("job", "ls", store=f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 1 and missing.stderr.startswith("error: no store at ")
    assert not (tmp_path / "none.db").exists()  # reading never creates a store
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database, just words " * 100)
    foreign = cli("job", "ls", store=str(bogus))
    assert foreign.returncode == 1 and "not a SQLite database" in foreign.stderr
    assert bogus.read_text().startswith("not a database")
    scheme = cli("--store", "mysql://db/runs", "job", "ls")
    assert scheme.returncode == 1 and "supported URLs are" in scheme.stderr
    # a PostgreSQL URL whose host does not resolve: one line naming the store, no traceback
    unreachable = cli("--store", "postgres://nowhere.invalid/runs", "job", "ls")
    assert unreachable.returncode == 1 and "opening the store failed" in unreachable.stderr
    for result in (unknown, missing, foreign, scheme, unreachable):
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_usage_error_exits_2(recorded: tuple[str, Histories]) -> None:
    url, _ = recorded
    result = cli("job", "runs", "numbers", "--limit", "nope", store=url)
    assert result.returncode == 2
    assert "Usage: lifecycle job runs" in result.stderr


def test_abort(fresh: tuple[str, Histories]) -> None:
    url, h = fresh
    result = cli("abort", str(h.active), store=url)
    assert result.returncode == 0, result.stderr
    assert "Running" in result.stdout and "Stopped" in result.stdout

    async def state() -> str:
        async with lifecycle.AsyncRuns(url) as runs:
            return (await runs.get(h.active)).state

    assert anyio.run(state, backend="asyncio") == "Stopped"
    again = cli("abort", str(h.active), store=url)
    assert again.returncode == 1 and "already ended" in again.stderr


def test_export_and_replay(recorded: tuple[str, Histories], tmp_path: Path) -> None:
    url, h = recorded
    log = tmp_path / "runs.jsonl"
    exported = cli("export", "--output", str(log), store=url)
    assert exported.returncode == 0, exported.stderr
    records = log.read_text().splitlines()
    assert "exported" in exported.stderr and str(len(records)) in exported.stderr
    replayed = cli("replay", str(log))
    assert replayed.returncode == 0, replayed.stderr
    assert f"{h.nightly} ⚠" in replayed.stdout
    assert "0 divergences" in replayed.stdout

    records[5] = records[5][: len(records[5]) // 2]  # a line cut in half
    log.write_text("\n".join(records) + "\n")
    corrupt = cli("replay", str(log))
    assert corrupt.returncode == 1
    assert corrupt.stderr.startswith(f"error: {log}:6: ")
    assert "Traceback" not in corrupt.stderr


def test_diagram(recorded: tuple[str, Histories]) -> None:
    result = cli("diagram", "datatailr")
    assert result.returncode == 0
    assert result.stdout == lifecycle.dialect("datatailr").to_mermaid()


def test_demo_runs_what_make_demo_runs() -> None:
    result = cli("demo")
    assert result.returncode == 0, result.stderr
    assert "views equal the live ones: True" in result.stdout
    assert "flowchart LR" in result.stdout


def _record(url: str, run_id: int, facts: list[ev.Fact], container: str | None = None) -> None:
    async def main() -> None:
        async with lifecycle.AsyncRuns(url) as runs:
            await runs.record(run_id, facts, container=container)

    anyio.run(main, backend="asyncio")


def _start_live_run(url: str) -> int:
    async def main() -> int:
        async with lifecycle.AsyncRuns(url) as runs:
            run = await runs.create(
                "datatailr", operation="workflow", name="live", containers=["step"]
            )
            await runs.record(run.id, START_SEQUENCE)
            await runs.record(
                run.id, [*START_SEQUENCE, ev.LogRecorded(text="first")], container="step"
            )
            return run.id

    return anyio.run(main, backend="asyncio")


def _read_line(stream: object, timeout: float = 20) -> str:
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()))  # type: ignore[attr-defined]
    reader.start()
    reader.join(timeout)
    assert got, "the CLI printed nothing in time"
    return got[0]


@pytest.mark.parametrize(
    ("end", "code"), [(ev.ExecutionSucceeded(), 0), (ev.ExecutionFailed(error="boom"), 1)]
)
def test_log_follow_tails_a_live_run_until_it_ends(tmp_path: Path, end: ev.Fact, code: int) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    run_id = _start_live_run(url)
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    env.update({"LIFECYCLE_STORE": url, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"})
    with subprocess.Popen(
        [*command(), "log", "read", "live", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=REPO,
    ) as proc:
        try:
            assert _read_line(proc.stdout).split()[1:] == ["step", "first"]  # the backlog
            _record(url, run_id, [ev.LogRecorded(stream="stderr", text="\x1b[2Jsecond")], "step")
            assert _read_line(proc.stdout).split()[1:] == ["step", "\\x1b[2Jsecond"]  # live
            _record(url, run_id, [ev.LogRecorded(text="third"), end], "step")
            _record(url, run_id, [ev.ExecutionSucceeded() if code == 0 else end])
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == code
    assert out.splitlines()[-1].split()[1:] == ["step", "third"]
    assert "→" in err  # live state changes on stderr
    assert err.rstrip().splitlines()[-1].startswith(f"run {run_id} ")
