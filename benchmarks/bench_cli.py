"""How fast the ``lifecycle`` command answers: ``--help``, and ``job ls`` / ``job runs`` over a
SQLite store of 100,000 runs — each a whole process, as a user starts it, against ``python -c
pass`` (the interpreter's own start-up) measured in the same run.

    .venv/bin/python benchmarks/bench_cli.py [--runs 100000] [--jobs 100] [--repeat 7]

The store holds ``--runs`` runs spread round-robin over ``--jobs`` job names (plus every 50th
run without a name, grouped as ``@dialect``), three dialects, ~70% succeeded, each with its
``Requested`` fact, a start, an end and its row in the runs read model. Targets (issue #11.7):
``--help`` < 150 ms, ``job ls`` and ``job runs`` < 300 ms at 100k runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._runs import summary_of
from lifecycle._stores import Write
from lifecycle._stores._sqlite import SQLiteStore
from lifecycle._views import Projector

DIALECTS = {"datatailr": "workflow", "domino": "run", "qualytics": "profile"}
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def populate(path: Path, runs: int, jobs: int) -> None:
    """``runs`` runs over ``jobs`` names, written through the store in batches of 1,000 runs."""
    rnd = random.Random(7)
    dialects = list(DIALECTS)
    async with SQLiteStore(f"sqlite:///{path}") as store:
        for first in range(1, runs + 1, 1000):
            writes = []
            for run_id in range(first, min(first + 1000, runs + 1)):
                d = dialects[run_id % 3]
                name = "" if run_id % 50 == 0 else f"job-{run_id % jobs:04d}"
                end: ev.Fact = (
                    ev.ExecutionSucceeded()
                    if rnd.random() < 0.7
                    else ev.ExecutionFailed(exit_code=1, error="boom")
                )
                facts = [
                    ev.Requested(dialect=d, operation=DIALECTS[d], name=name),
                    *START_SEQUENCE,
                    end,
                ]
                writes.append(Write(stream=f"run-{run_id}", events=tuple(facts)))
            records = await store.append(writes, at=EPOCH + dt.timedelta(minutes=first))
            projector = Projector()
            projector.feed(records)
            await store.append([], summaries=[summary_of(v) for v in projector.views()])


def lifecycle_command() -> list[str]:
    script = shutil.which("lifecycle", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "lifecycle._cli"]


def timed(argv: list[str], env: dict[str, str], repeat: int) -> list[float]:
    """Wall-clock seconds of each of ``repeat`` runs of ``argv`` (after one warm-up run)."""
    times = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False)
        took = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed: {done.stderr.decode()[-2000:]}")
        if i:
            times.append(took)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="where the store goes (a temp dir)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-cli-"))
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"runs-{args.runs}-{args.jobs}.db"
    if not path.exists():
        start = time.perf_counter()
        asyncio.run(populate(path, args.runs, args.jobs))
        print(f"   populated {args.runs:,} runs / {args.jobs} jobs in "
              f"{time.perf_counter() - start:.1f} s: {path}", flush=True)  # fmt: skip
    # as installed: bytecode cached (the warm-up run writes it if PYTHONDONTWRITEBYTECODE
    # kept it from being written before; compiling every module each time costs ~200 ms)
    unwanted = {"FORCE_COLOR", "NO_COLOR", "PYTHONDONTWRITEBYTECODE"}
    env = {k: v for k, v in os.environ.items() if k not in unwanted}
    env.update({"LIFECYCLE_STORE": f"sqlite:///{path}", "COLUMNS": "120"})
    cli = lifecycle_command()
    job = f"job-{1 % args.jobs:04d}"  # the job of run 1: it exists whatever --jobs is
    cases = [
        ("python -c pass (reference)", [sys.executable, "-c", "pass"]),
        ("lifecycle --help", [*cli, "--help"]),
        ("lifecycle job ls", [*cli, "job", "ls"]),
        (f"lifecycle job runs {job}", [*cli, "job", "runs", job]),
        ("lifecycle job runs @qualytics", [*cli, "job", "runs", "@qualytics"]),
    ]
    print(f"{'':<34} {'best':>9} {'median':>9} {'median - python':>16}")
    reference = 0.0
    for label, argv in cases:
        times = timed(argv, env, args.repeat)
        median = statistics.median(times)
        if not reference:
            reference = median
        print(
            f"{label:<34} {min(times) * 1e3:7.0f}ms {median * 1e3:7.0f}ms "
            f"{(median - reference) * 1e3:14.0f}ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
