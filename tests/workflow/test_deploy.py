"""Deploying (issue 16, second part): a real build in a fresh process — Building → Ready, or
Created with the build log (a syntax error, a module that is not installed) — versions, and
deploying an unchanged definition as a no-op."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lifecycle
from lifecycle._workflow._deploy import deploy
from tests.cli._support import cli

pytestmark = pytest.mark.anyio

GOOD = """
from lifecycle import task, workflow

@task()
def hello() -> str:
    print("building hello")
    return "{greeting}"

@workflow(name="greet", schedule="*/5 * * * *")
def greet() -> None:
    print("the body runs at build time")
    hello()
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


async def _log(runs: lifecycle.AsyncRuns, run_id: int) -> list[str]:
    return [
        r.event.text
        for r in await runs.history(run_id)
        if isinstance(r.event, lifecycle.events.LogRecorded)
    ]


async def test_a_build_that_succeeds_is_ready_and_an_unchanged_one_records_nothing(
    tmp_path: Path,
) -> None:
    target = _write(tmp_path, "good.py", GOOD.format(greeting="hi"))
    async with lifecycle.AsyncRuns() as runs:
        first = await deploy(runs, target)
        assert (first.name, first.state, first.job_version, first.changed) == (
            "greet",
            "Ready",
            1,
            True,
        )
        view = await runs.get(first.run_id)
        assert (view.state, view.operation) == ("Ready", "deploy")
        assert view.params["workflow"]["schedule"]["cron"] == "*/5 * * * *"
        assert "the body runs at build time" in await _log(runs, first.run_id)
        facts = [type(r.event).__name__ for r in await runs.history(first.run_id)]
        assert facts[:2] == ["Requested", "BuildStarted"] and facts[-1] == "BuildSucceeded"

        again = await deploy(runs, target)
        assert (again.run_id, again.changed) == (first.run_id, False)

        _write(tmp_path, "good.py", GOOD.format(greeting="hello"))  # a task's source changes
        changed = await deploy(runs, target)
        assert (changed.changed, changed.job_version) == (True, 2)

        rescheduled = await deploy(runs, f"{target}:greet", schedule="0 9 * * 1-5")
        assert rescheduled.changed and rescheduled.job_version == 2  # same DAG, new schedule
        view = await runs.get(rescheduled.run_id)
        assert view.params["workflow"]["schedule"]["cron"] == "0 9 * * 1-5"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def broken(:\n", "SyntaxError: invalid syntax"),
        ("import not_installed_module_xyz\n", "No module named 'not_installed_module_xyz'"),
        ("from lifecycle import workflow\n", "no workflow 'nightly'"),
    ],
    ids=["syntax error", "missing import", "no such workflow"],
)
async def test_a_build_that_fails_is_created_with_its_log(
    tmp_path: Path, source: str, expected: str
) -> None:
    target = _write(tmp_path, "bad.py", source) + ":nightly"
    async with lifecycle.AsyncRuns() as runs:
        done = await deploy(runs, target)
        assert (done.name, done.state, done.job_version) == ("nightly", "Created", None)
        view = await runs.get(done.run_id)
        assert (view.state, view.outcome) == ("Created", "failed")
        assert expected in view.reason  # type: ignore[operator]
        assert any(expected in line for line in await _log(runs, done.run_id))


async def test_a_bad_schedule_records_nothing(tmp_path: Path) -> None:
    target = _write(tmp_path, "good.py", GOOD.format(greeting="hi"))
    async with lifecycle.AsyncRuns() as runs:
        with pytest.raises(lifecycle.InvalidSchedule):
            await deploy(runs, target, schedule="every morning")
        assert await runs.list() == []


def test_the_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    good = _write(tmp_path, "good.py", GOOD.format(greeting="hi"))
    done = cli("deploy", good, "--schedule", "0 9 * * *", "--timezone", "Europe/London", store=url)
    assert done.returncode == 0, done.stderr
    assert "deployed greet" in done.stdout and "Ready" in done.stdout
    assert (
        "already deployed greet"
        in cli(
            "deploy", good, "--schedule", "0 9 * * *", "--timezone", "Europe/London", store=url
        ).stdout
    )
    shown = json.loads(cli("job", "get", "greet", "--json", store=url).stdout)
    assert shown["schedule"]["timezone"] == "Europe/London"
    bad = _write(tmp_path, "bad.py", "def broken(:\n")
    failed = cli("deploy", bad, store=url)
    assert failed.returncode == 1
    assert "lifecycle log read bad --run" in failed.stderr
    log = cli("log", "read", "bad", store=url).stdout
    assert "SyntaxError" in log


def test_the_scheduler_and_job_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    good = _write(tmp_path, "good.py", GOOD.format(greeting="hi"))
    assert cli("deploy", good, store=url).returncode == 0  # every 5 minutes, from the decorator
    shown = json.loads(cli("job", "get", "greet", "--json", store=url).stdout)
    assert shown["schedule"]["status"] == "not armed"
    assert "not armed yet" in cli("job", "ls", store=url).stdout

    once = cli("scheduler", "--once", store=url)
    assert once.returncode == 0, once.stderr
    assert once.stdout.startswith("armed    greet ")
    shown = json.loads(cli("job", "get", "greet", "--json", store=url).stdout)
    assert shown["schedule"]["status"] == "armed" and shown["state"] == "Scheduled"
    armed = shown["schedule"]["armed_run"]
    assert shown["last_run_id"] == armed
    assert "armed (run" in cli("job", "get", "greet", store=url).stdout
    assert cli("scheduler", "--once", store=url).stdout == ""  # nothing is due yet
    by_hand = cli("run", "greet", store=url, cwd=tmp_path)  # a run by hand: the schedule stays
    assert by_hand.returncode == 0, by_hand.stderr
    shown = json.loads(cli("job", "get", "greet", "--json", store=url).stdout)
    assert shown["schedule"]["status"] == "armed" and shown["schedule"]["armed_run"] == armed

    assert cli("job", "pause", "greet", store=url).stdout.strip() == "paused greet"
    assert "already paused" in cli("job", "pause", "greet", store=url).stdout
    assert "paused (`lifecycle job resume`)" in cli("job", "ls", store=url).stdout
    assert cli("job", "resume", "greet", store=url).stdout.strip() == "resumed greet"
    done = cli("job", "undeploy", "greet", store=url)
    assert "undeployed greet" in done.stdout and "Stopped" in done.stdout
    shown = json.loads(cli("job", "get", "greet", "--json", store=url).stdout)
    assert shown["schedule"]["status"] == "stopped" and shown["schedule"]["next_due"] == []
    again = cli("job", "pause", "greet", store=url)
    assert again.returncode == 1 and "no deployed job named 'greet'" in again.stderr
