"""The CLI's promise, through the real console script: a failure is one ``error: …`` line on
stderr and a non-zero exit code, never a traceback — for bad code, bad paths, bad URLs, and
Ctrl-C while a workflow runs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from ._support import REPO, Histories, cli, command

pytestmark = pytest.mark.slow


def assert_one_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """Exit ``code``, and stderr is exactly one ``error: …`` line; returns that line."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_export_into_a_missing_folder(recorded: tuple[str, Histories], tmp_path: Path) -> None:
    url, _ = recorded
    target = tmp_path / "missing" / "runs.jsonl"
    line = assert_one_error(cli("export", "--output", str(target), store=url))
    assert line == f"error: cannot write {target}: the folder {target.parent} does not exist"
    assert ".tmp" not in line  # not the temporary file export writes first


CODE = {
    "syntax": ("def broken(:\n", "SyntaxError: invalid syntax (bad.py, line 1)"),
    "import": (
        "import no_such_module_for_lifecycle_tests\n",
        "ModuleNotFoundError: No module named 'no_such_module_for_lifecycle_tests' "
        "(bad.py, line 1)",
    ),
    "negative timeout": (
        """
        from lifecycle import task, workflow

        @task(timeout=-5)
        def one():
            return 1

        @workflow
        def wf():
            one()
        """,
        "WorkflowError: task 'one': timeout must be a positive number of seconds, not -5 "
        "(bad.py, line 4)",
    ),
    "body raises": (
        """
        from lifecycle import task, workflow

        @task()
        def one():
            return 1

        @workflow
        def boom():
            one()
            raise RuntimeError("the body failed")
        """,
        "workflow 'boom': its body raised RuntimeError: the body failed (bad.py, line 11)",
    ),
}


@pytest.mark.parametrize("case", list(CODE))
def test_run_of_code_that_fails(case: str, tmp_path: Path) -> None:
    source, expected = CODE[case]
    script = tmp_path / "bad.py"
    script.write_text(textwrap.dedent(source))
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    line = assert_one_error(cli("run", str(script), store=store))
    assert line.endswith(expected), line
    if case != "body raises":
        assert line.startswith(f"error: cannot load {script}: ")


@pytest.mark.parametrize("url", ["sqlite:/x.db", "sqlite://x.db", "memory:/", "sqlite:x.db"])
def test_malformed_store_urls_are_refused(url: str, tmp_path: Path) -> None:
    for result in (
        cli("--store", url, "job", "ls", cwd=tmp_path),
        cli("job", "ls", store=url, cwd=tmp_path),  # LIFECYCLE_STORE
        cli("--store", url, "run", "nothing.py", cwd=tmp_path),  # the SDK's path too
    ):
        line = assert_one_error(result)
        assert f"{url!r} is not a store URL" in line
        assert "memory://, sqlite:///relative/runs.db, sqlite:////absolute/runs.db" in line
    assert list(tmp_path.iterdir()) == []  # no folder called "sqlite:", nothing at all


def test_replay_of_a_directory_says_so(tmp_path: Path) -> None:
    line = assert_one_error(cli("replay", str(tmp_path)))
    assert line.startswith(f"error: {tmp_path} is a directory: replay reads a JSON Lines file")
    missing = assert_one_error(cli("replay", str(tmp_path / "none.jsonl")))
    assert missing == f"error: {tmp_path / 'none.jsonl'} does not exist"


def test_replay_of_a_plain_sqlite_path(recorded: tuple[str, Histories]) -> None:
    url, h = recorded
    path = url.removeprefix("sqlite:///")  # as --store takes it: a plain path
    result = cli("replay", path)
    assert result.returncode == 0, result.stderr
    assert f"{h.nightly} ⚠" in result.stdout and "0 divergences" in result.stdout
    assert result.stdout == cli("replay", url).stdout  # the same as its URL


def test_demo_uses_the_store_option_and_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    by_env = cli("demo", store=str(db), timeout=120)
    assert by_env.returncode == 0, by_env.stderr
    assert f"replayed the log of sqlite:///{db}" in by_env.stdout
    listed = cli("job", "ls", store=str(db))
    assert {"nightly-profile", "train-model", "daily-etl"} <= {
        line.split()[0] for line in listed.stdout.splitlines()[1:]
    }
    by_option = cli("--store", "memory://", "demo", store=str(tmp_path / "other.db"), timeout=120)
    assert by_option.returncode == 0, by_option.stderr
    assert "replayed the log of memory://" in by_option.stdout
    assert not (tmp_path / "other.db").exists()


def test_demo_help_says_where_the_runs_go() -> None:
    text = " ".join(cli("demo", "--help").stdout.split())
    assert "in-memory" not in text
    assert "job ls --store" not in text  # not an option of `job ls`
    assert "`lifecycle --store URL job ls` shows them" in text
    assert "$LIFECYCLE_STORE" in text


BUSY_WORKFLOW = """
import time
from lifecycle import task, workflow

@task()
def step(i):
    for n in range(50):
        print("step", i, "line", n)
        time.sleep(0.005)
    return i

@workflow
def fan():
    for i in range(300):
        step(i).alias(f"s{i}")
"""
"""Many tasks at once, each logging: the store is always busy when Ctrl-C comes."""


def test_ctrl_c_during_run_exits_130_quietly(tmp_path: Path) -> None:
    """Ctrl-C while tasks run and the store is being written: exit 130, nothing else on stderr.
    It used to print "Exception in thread … Event loop is closed" about one time in three (4 of
    10 here): the loop ran in a worker thread and was closed while aiosqlite's thread still had
    results for it (the store's close had been cancelled); it could also hang for good when the
    interrupt came as that worker thread was starting."""
    script = tmp_path / "fan.py"
    script.write_text(BUSY_WORKFLOW)
    env = {k: v for k, v in os.environ.items() if k not in {"LIFECYCLE_STORE", "NO_COLOR"}}
    rnd = random.Random(11)
    for attempt in range(10):
        env["LIFECYCLE_STORE"] = f"sqlite:///{tmp_path / f'runs-{attempt}.db'}"
        with subprocess.Popen(
            [*command(), "run", str(script), "--max-parallel", "40"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        ) as proc:
            try:
                assert proc.stdout is not None
                first = proc.stdout.readline()  # the run has started: progress is printed
                assert first.startswith("[run "), first
                stop = rnd.uniform(0.0, 0.6)
                try:
                    proc.wait(stop)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=30)
            finally:
                proc.kill()
        assert proc.returncode == 130, (attempt, err)
        assert "Exception in thread" not in err and "Event loop is closed" not in err, err
        assert "Traceback" not in err, err
