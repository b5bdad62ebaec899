"""How fast the dashboard's jobs page answers over a SQLite store of 100,000 runs, against the
read model it is built on (``job_rows``, what ``lifecycle job ls`` prints) measured in the same
run, in the same process.

    .venv/bin/python benchmarks/bench_ui.py [--runs 100000] [--jobs 100] [--repeat 7]

The store holds ``--runs`` runs spread round-robin over ``--jobs`` job names, three dialects,
~70% succeeded, each with its ``Requested`` fact, a start, an end and its read-model row —
all started within the last 7 days, so the weekly heatmap counts every one of them (its worst
case). Timed: ``GET /`` through Starlette's test client (the whole page: the read model, the
last-10 strips, one heatmap per job, the template, gzip), ``GET /jobs/NAME`` and
``GET /runs/ID``, each against ``await job_rows(runs)`` alone: medians of ``--repeat`` after
one warm-up; and the first ``GET /`` of a fresh server, which reads the week's runs for the
heatmaps (later pages read only the runs created since).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from starlette.testclient import TestClient

from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._cli._model import job_rows
from lifecycle._runs import AsyncRuns, summary_of
from lifecycle._stores import Write
from lifecycle._stores._sqlite import SQLiteStore
from lifecycle._ui import create_app
from lifecycle._views import Projector

DIALECTS = {"datatailr": "workflow", "domino": "run", "qualytics": "profile"}
TOKEN = "bench"


async def populate(path: Path, runs: int, jobs: int) -> None:
    """``runs`` runs over ``jobs`` names, started evenly over the last 7 days."""
    rnd = random.Random(7)
    dialects = list(DIALECTS)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
    step = dt.timedelta(days=7) / runs
    async with SQLiteStore(f"sqlite:///{path}") as store:
        for first in range(1, runs + 1, 1000):
            writes = []
            for run_id in range(first, min(first + 1000, runs + 1)):
                d = dialects[run_id % 3]
                end: ev.Fact = (
                    ev.ExecutionSucceeded()
                    if rnd.random() < 0.7
                    else ev.ExecutionFailed(exit_code=1, error="boom")
                )
                facts = [
                    ev.Requested(dialect=d, operation=DIALECTS[d], name=f"job-{run_id % jobs:04d}"),
                    *START_SEQUENCE,
                    end,
                ]
                writes.append(Write(stream=f"run-{run_id}", events=tuple(facts)))
            records = await store.append(writes, at=start + step * first)
            projector = Projector()
            projector.feed(records)
            await store.append([], summaries=[summary_of(v) for v in projector.views()])


def median_of(fn: Callable[[], object], repeat: int) -> float:
    """The median wall-clock seconds of ``repeat`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as folder:
        path = Path(folder) / "runs.db"
        began = time.perf_counter()
        anyio.run(populate, path, args.runs, args.jobs, backend="asyncio")
        print(
            f"store: {args.runs:,} runs over {args.jobs} jobs ({time.perf_counter() - began:.1f} s)"
        )
        url = f"sqlite:///{path}"
        with TestClient(create_app(url, token=TOKEN), follow_redirects=False) as client:
            client.get(f"/?token={TOKEN}")
            client.cookies.set("lifecycle_ui", TOKEN)
            began = time.perf_counter()
            client.get("/")
            cold = time.perf_counter() - began
            portal = client.portal
            assert portal is not None
            runs: AsyncRuns = client.app.state.ui.runs  # type: ignore[attr-defined]

            def reference() -> object:
                return portal.call(job_rows, runs)

            def page(path: str) -> Callable[[], object]:
                def get() -> object:
                    answer = client.get(path)
                    assert answer.status_code == 200, answer.text[:500]
                    return answer

                return get

            ref = median_of(reference, args.repeat)
            print(f"reference  job_rows (lifecycle job ls's model): {ref * 1000:8.1f} ms")
            print(
                f"{'jobs page, first (reads the heatmaps)':<34} {cold * 1000:8.1f} ms  "
                f"{cold / ref:5.2f}x the reference"
            )
            for label, target in (
                ("jobs page  GET /", "/"),
                ("job page   GET /jobs/job-0001", "/jobs/job-0001"),
                (f"run page   GET /runs/{args.runs}", f"/runs/{args.runs}"),
            ):
                took = median_of(page(target), args.repeat)
                answer = client.get(target, headers={"Accept-Encoding": "gzip"})
                size, sent = len(answer.content), answer.num_bytes_downloaded
                print(
                    f"{label:<34} {took * 1000:8.1f} ms  {took / ref:5.2f}x the reference  "
                    f"({size / 1024:.0f} KiB, {sent / 1024:.0f} KiB gzipped)"
                )


if __name__ == "__main__":
    main()
