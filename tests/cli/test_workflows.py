"""The CLI on stores the workflow SDK wrote: `job`, `log`, `run` and `rerun` of real workflows,
through the console script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import anyio
import pytest

import lifecycle

from . import _workflows
from ._support import REPO, cli, command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sdk_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store with one run of ``cli-numbers`` (completes) and ``cli-broken`` (fails)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sdk') / 'runs.db'}"
    assert _workflows.numbers(local_run=True, store=url, progress=False).state == "Completed"
    assert _workflows.broken(local_run=True, store=url, progress=False).state == "Failed"
    return url


def test_jobs_written_by_the_sdk(sdk_store: str) -> None:
    jobs = {j["name"]: j for j in json.loads(cli("job", "ls", "--json", store=sdk_store).stdout)}
    assert (jobs["cli-numbers"]["tasks"], jobs["cli-numbers"]["state"]) == (7, "Completed")
    assert (jobs["cli-broken"]["dialect"], jobs["cli-broken"]["state"]) == ("datatailr", "Failed")
    detail = cli("job", "get", "cli-numbers", store=sdk_store)
    assert detail.returncode == 0
    for edge in ("my_number → first_addition", "num_2 → reduce_list", "reduce_list → add_one"):
        assert edge in detail.stdout
    assert "tests.cli._workflows.reduce_list" in detail.stdout


def test_runs_and_logs_of_a_failed_workflow(sdk_store: str) -> None:
    runs = json.loads(cli("job", "runs", "cli-broken", "--json", store=sdk_store).stdout)
    assert [(r["state"], r["job_version"]) for r in runs] == [("Failed", 1)]
    logs = cli("log", "read", "cli-broken", "--task", "divide", "--stderr", store=sdk_store)
    assert logs.returncode == 0
    assert "ZeroDivisionError: division by zero" in logs.stdout
    assert "Failed" in logs.stderr  # the header names the run and its state


def test_run_a_workflow_file_then_by_name(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    ran = cli("run", "tests/cli/_workflows.py:numbers", store=store)
    assert ran.returncode == 0, ran.stderr
    assert "add_one: Completed" in ran.stdout  # the SDK's progress, then our summary
    assert ran.stdout.splitlines()[-1].startswith("run 1 of cli-numbers  Completed")
    ambiguous = cli("run", "tests/cli/_workflows.py", store=store)
    assert ambiguous.returncode == 2 and "defines 3 workflows" in ambiguous.stderr
    failed = cli("run", "tests.cli._workflows:cli-broken", "--no-progress", store=store)
    assert failed.returncode == 1
    assert "Failed" in failed.stdout and "'divide' failed" in failed.stdout
    again = cli("run", "cli-numbers", "--json", store=store)  # the code its runs recorded
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["run_id"] == 3
    unknown = cli("run", "no-such-workflow", store=store)
    assert unknown.returncode == 1 and "no job named 'no-such-workflow'" in unknown.stderr


def test_rerun_workflows(sdk_store: str, tmp_path: Path) -> None:
    runs = {
        j["name"]: j["last_run_id"]
        for j in json.loads(cli("job", "ls", "--json", store=sdk_store).stdout)
    }
    broken = cli(
        "rerun", str(runs["cli-broken"]), "--from-task", "divide", "--json", store=sdk_store
    )
    assert broken.returncode == 1  # it still divides by zero
    view = json.loads(broken.stdout)
    assert (view["original_run_id"], view["mode"]) == (runs["cli-broken"], "rerun")
    assert view["containers"]["get_number"]["cached_from"] == runs["cli-broken"]
    full = cli(
        "rerun", str(runs["cli-numbers"]), "--full", store=sdk_store, env={"HOME": str(tmp_path)}
    )
    assert full.returncode == 0, full.stderr
    assert "Completed" in full.stdout.splitlines()[-1]
    bad = cli("rerun", str(runs["cli-numbers"]), "--from-task", "nope", store=sdk_store)
    assert bad.returncode == 1 and "nope" in bad.stderr and "Traceback" not in bad.stderr


def _state(url: str, name: str) -> tuple[int, str, dict[str, str]] | None:
    async def main() -> tuple[int, str, dict[str, str]] | None:
        async with lifecycle.AsyncRuns(url) as runs:
            found = await runs.list(name=name)
            if not found:
                return None
            view = await runs.get(found[0].run_id)
            return view.run_id, view.state, {n: c.state for n, c in view.containers.items()}

    return anyio.run(main, backend="asyncio")


def test_abort_stops_a_workflow_running_in_another_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    env.update({"LIFECYCLE_STORE": url, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"})
    start = [*command(), "run", "tests.cli._workflows:cli-slow", "--adapter", "subprocess"]
    with subprocess.Popen(
        [*start, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    ) as running:
        try:
            deadline = time.monotonic() + 30
            state = None
            while time.monotonic() < deadline:
                state = _state(url, "cli-slow")
                if state is not None and state[2].get("tick") == "Running":
                    break
                time.sleep(0.1)
            assert state is not None and state[2].get("tick") == "Running", state
            run_id = state[0]
            with subprocess.Popen(
                [*command(), "log", "read", "cli-slow", "--follow"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            ) as follower:
                try:
                    # the follower tails the run before it is aborted (`abort` starts faster)
                    assert follower.stdout is not None
                    first = follower.stdout.readline()
                    assert "tick" in first, first
                    aborted = cli("abort", str(run_id), store=url)
                    assert aborted.returncode == 0, aborted.stderr
                    followed, notes = follower.communicate(timeout=30)
                    followed = first + followed
                finally:
                    follower.kill()
            out, err = running.communicate(timeout=30)
        finally:
            running.kill()
    assert running.returncode == 1, err  # the run did not complete
    assert "Stopped" in out
    assert follower.returncode == 1
    assert "tick 0" in followed, (followed, notes)
    assert notes.rstrip().splitlines()[-1].startswith(f"run {run_id}  Stopped ")
    assert _state(url, "cli-slow") == (run_id, "Stopped", {"tick": "Stopped"})
