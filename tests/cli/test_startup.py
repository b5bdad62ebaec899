"""``lifecycle`` answers at once: ``--help`` loads no store, engine or logging library, and
``job ls`` reads groups and the last runs of each job instead of every run — with the same
answer as grouping every run. (Timings are in ``benchmarks/bench_cli.py``, not here.)"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._cli._app import COMMANDS, cli
from lifecycle._cli._model import HISTORY, job_key, job_rows

HEAVY = ("structlog", "anyio", "aiosqlite", "lifecycle._engine", "lifecycle._runs", "rich")
"""What ``lifecycle --help`` used to import (0.38-0.48 s) and must not."""

PROBE = """
import json
import sys
from lifecycle._cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["-V"], ["job", "--help"], ["run", "--help"]])
def test_help_imports_neither_the_store_nor_the_engine(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    assert "Usage: " in done.stdout or "lifecycle, version" in done.stdout
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    if args in (["--help"], ["-V"]):
        assert heavy == []
    else:  # a group's or command's own help loads that command's module, still not these
        assert not {"structlog", "aiosqlite", "lifecycle._engine"} & loaded, heavy


def test_root_help_shows_each_command_s_own_short_help() -> None:
    """The root help lists commands without importing them, from ``COMMANDS``: it must say
    what each command says of itself."""
    for name, (module, attr, short) in COMMANDS.items():
        command = getattr(importlib.import_module(module, "lifecycle._cli"), attr)
        assert command.get_short_help_str(200) == short, name
        assert cli.get_command(None, name) is command  # type: ignore[arg-type]


def test_lifecycle_reexports_load_on_first_use() -> None:
    code = "import sys, lifecycle; print([m for m in sys.modules if m.startswith('lifecycle')])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['lifecycle']"
    assert lifecycle.Engine.__name__ == "Engine" and "Engine" in dir(lifecycle)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        lifecycle.nothing  # noqa: B018


async def _populate(runs: lifecycle.AsyncRuns) -> None:
    """Jobs of many sizes: named ones in two dialects, unnamed runs of three dialects, and a
    real job called "@qualytics" beside the unnamed Qualytics runs (it joins their row)."""
    for i in range(60):
        if i % 7 == 0:
            dialect = ["qualytics", "domino", "datatailr"][i % 3]
            operation = "scan" if dialect == "qualytics" else None
            run = await runs.create(dialect, operation=operation, containers=["x"])
        elif i % 11 == 0:
            run = await runs.create(
                "qualytics", operation="scan", name="@qualytics", containers=["a", "b"]
            )
        else:
            dialect = "domino" if i % 2 else "datatailr"
            run = await runs.create(dialect, name=f"job-{i % 4}", containers=["x"])
        if i % 3:
            end = ev.ExecutionSucceeded() if i % 5 else ev.ExecutionFailed(error="boom")
            for container in run.containers:
                await runs.record(run.id, [*START_SEQUENCE, end], container=container)
            await runs.record(run.id, [*START_SEQUENCE, end])


async def _naive(runs: lifecycle.AsyncRuns) -> list[dict[str, object]]:
    """``job ls`` as it was: every run listed and grouped here."""
    groups: dict[str, list[lifecycle.RunSummary]] = {}
    for row in await runs.list():
        groups.setdefault(job_key(row), []).append(row)
    out = []
    for name in sorted(groups, key=lambda n: (n.startswith("@"), n.casefold(), n)):
        rows = groups[name]
        out.append(
            {
                "name": name,
                "dialect": rows[0].dialect,
                "runs": len(rows),
                "last_run_id": rows[0].run_id,
                "history": [r.run_id for r in reversed(rows[:HISTORY])],
            }
        )
    return out


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_job_rows_agree_with_grouping_every_run(url: str, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}" if url == "sqlite" else url

    async def main() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        async with lifecycle.AsyncRuns(store) as runs:
            await _populate(runs)
            rows = await job_rows(runs)
            got = [
                {
                    "name": r.name,
                    "dialect": r.dialect,
                    "runs": r.runs,
                    "last_run_id": r.last_run_id,
                    "history": [h.run_id for h in r.history],
                }
                for r in rows
            ]
            assert json.loads(json.dumps([r.tasks for r in rows]))  # the Requested was read
            return got, await _naive(runs)

    got, expected = anyio.run(main, backend="asyncio")
    assert got == expected
    assert {g["name"] for g in got} >= {"job-1", "@qualytics", "@domino", "@datatailr"}
