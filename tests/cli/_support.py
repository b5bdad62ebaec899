"""Helpers for the CLI tests: the console script in a subprocess, and recorded histories.

``cli(*args)`` runs the real ``lifecycle`` console script when it is installed next to the
interpreter, else ``python -m lifecycle._cli`` (the same entry point) — switching is this one
function.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE

__all__ = [
    "HOSTILE",
    "Histories",
    "cli",
    "command",
    "populate",
    "record_histories",
]

REPO = Path(__file__).resolve().parents[2]

HOSTILE = (
    "[bold red]x[/bold red] \x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x1b[2J bell\x07 "
    "cr\roverwrite rtl\u202eoverride"
)
"""A log line that would restyle, retitle, clear and rewrite a terminal if it reached one."""

WORKFLOW: dict[str, Any] = {
    "tasks": [
        {"id": "n@1", "name": "my_number", "function": "demo.get_number", "depends_on": []},
        {
            "id": "a@1",
            "name": "first_addition",
            "function": "demo.add",
            "depends_on": ["my_number"],
        },
        {"id": "o@1", "name": "add_one", "function": "demo.add", "depends_on": ["first_addition"]},
    ],
    "schedule": None,
}
TASKS = ["my_number", "first_addition", "add_one"]


def command() -> list[str]:
    """How to start the CLI: the installed console script, else ``python -m lifecycle._cli``."""
    script = shutil.which("lifecycle", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "lifecycle._cli"]


def cli(
    *args: str,
    store: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    cwd: Path = REPO,
) -> subprocess.CompletedProcess[str]:
    """Run ``lifecycle ARGS`` in a subprocess (wide, colourless unless ``env`` says otherwise)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"NO_COLOR", "FORCE_COLOR", "LIFECYCLE_STORE", "COLUMNS", "TERM"}
    }
    environ.update({"COLUMNS": "200", "PYTHONIOENCODING": "utf-8"})
    if store is not None:
        environ["LIFECYCLE_STORE"] = store
    environ.update(env or {})
    return subprocess.run(
        [*command(), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=environ,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@dataclass
class Histories:
    """The run ids :func:`populate` recorded."""

    numbers: list[int]  # a workflow-shaped job: 12 runs, every fourth fails, versions 1-3
    hostile: int  # a numbers run whose task logs hostile text
    nightly: int  # a Qualytics profile: Success with the Warning indicator
    unnamed: int  # a Qualytics sync without a name, still Queued
    active: int  # a Domino run, still Running
    rerun: int  # a rerun of nightly


async def populate(runs: lifecycle.AsyncRuns) -> Histories:
    """Record a small, varied history through the run service, as the workflow SDK lays it out."""
    numbers = []
    for i in range(12):
        fails = i % 4 == 3
        run = await runs.create(
            "datatailr",
            operation="workflow",
            name="numbers",
            containers=TASKS,
            params={"workflow": WORKFLOW},
            job_version=1 + i // 5,
        )
        await runs.record(run.id, START_SEQUENCE)
        for task in TASKS:
            facts: list[ev.Fact] = [
                *START_SEQUENCE,
                ev.LogRecorded(stream="stdout", text=f"{task} says hello {i}"),
            ]
            if fails and task == "add_one":
                facts += [
                    ev.LogRecorded(
                        level="error", stream="stderr", text="Traceback\nZeroDivisionError"
                    ),
                    ev.ExecutionFailed(error="ZeroDivisionError: division by zero"),
                ]
            else:
                facts.append(ev.ExecutionSucceeded())
            await runs.record(run.id, facts, container=task)
        end = ev.ExecutionFailed(error="task add_one failed") if fails else ev.ExecutionSucceeded()
        await runs.record(run.id, end)
        numbers.append(run.id)

    hostile = await runs.create(
        "datatailr",
        operation="workflow",
        name="hostile",
        containers=["shout"],
        params={"workflow": {"tasks": [{"id": "s", "name": "shout"}], "schedule": None}},
    )
    await runs.record(hostile.id, START_SEQUENCE)
    await runs.record(
        hostile.id,
        [*START_SEQUENCE, ev.LogRecorded(stream="stdout", text=HOSTILE), ev.ExecutionSucceeded()],
        container="shout",
    )
    await runs.record(hostile.id, ev.ExecutionSucceeded())

    nightly = await runs.create(
        "qualytics", operation="profile", name="nightly", containers=["orders", "customers"]
    )
    await runs.record(nightly.id, START_SEQUENCE)
    await runs.record(nightly.id, [*START_SEQUENCE, ev.ExecutionSucceeded()], container="orders")
    await runs.record(
        nightly.id, [*START_SEQUENCE, ev.ExecutionFailed(error="boom")], container="customers"
    )
    await runs.record(nightly.id, ev.ExecutionSucceeded())

    unnamed = await runs.create("qualytics", operation="sync")
    active = await runs.create("domino", name="train")
    await runs.record(active.id, [*START_SEQUENCE, ev.LogRecorded(text="epoch 1/10")])
    again = await runs.rerun(nightly.id)
    return Histories(
        numbers=numbers,
        hostile=hostile.id,
        nightly=nightly.id,
        unnamed=unnamed.id,
        active=active.id,
        rerun=again.id,
    )


def record_histories(store: Any) -> Histories:
    """:func:`populate` a store (URL or object), blocking."""

    async def main() -> Histories:
        async with lifecycle.AsyncRuns(store) as runs:
            return await populate(runs)

    return anyio.run(main, backend="asyncio")
