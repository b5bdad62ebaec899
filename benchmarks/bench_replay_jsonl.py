"""Replay throughput from a JSONL export, against decoding the same lines alone.

    .venv/bin/python benchmarks/bench_replay_jsonl.py [--runs 10000] [--repeat 3] [--import]

Writes an export-format file (one ``Recorded`` envelope a line) of ``--runs`` interleaved
qualytics / datatailr / domino runs of canonical facts with logs (~20 facts a run: 10,000 runs
≈ 200,000 facts), then measures, best of ``--repeat``:

1. reference: read the lines and decode each into a ``Recorded`` with a prebuilt
   ``msgspec.json.Decoder`` — what any JSONL reader must pay;
2. ``lifecycle.replay(path)``: read, decode, check (positions, dense versions), fold every run,
   and build the report — facts/s and the ratio to (1);
3. ``replay(path, dialect="qualytics")``: the same, viewing every run under one dialect (most
   datatailr / domino runs diverge, so this also prices divergence bookkeeping);
4. the same facts as a bare-fact file (one stream): ``replay`` of it.

With ``--import``, also times ``import_log`` of the file into ``memory://`` and ``export`` back
out of it; with ``--sqlite``, the same into a ``sqlite:///`` file, plus ``replay`` of that URL
(one run each, not best-of: they fill stores). Until ``Write`` carries per-event times, an
import is one append per distinct ``recorded_at``: use ``--runs 1000``
with ``--sqlite``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import tempfile
import time
from collections.abc import Callable

import anyio
import msgspec

import lifecycle
from lifecycle import events as ev
from lifecycle._replay import areplay, export, import_log, replay

OPERATION = {"datatailr": "run", "domino": "run", "qualytics": "scan"}


def history(rnd: random.Random, dialect: str) -> list[ev.Fact]:
    facts: list[ev.Fact] = [
        ev.Requested(
            dialect=dialect, operation=OPERATION[dialect], name=f"job-{rnd.randint(1, 50)}"
        ),
        ev.ResourcesRequested(tier="small"),
        ev.ResourcesAssigned(node="node-1"),
        ev.PreparationStarted(),
        ev.ExecutionStarted(),
    ]
    facts += [
        ev.LogRecorded(level=rnd.choice(["info", "info", "info", "warning"]), text="a log line")
        for _ in range(rnd.randint(10, 20))
    ]
    end = rnd.random()
    if end < 0.7:
        facts.append(ev.ExecutionSucceeded())
    elif end < 0.85:
        facts.append(ev.ExecutionFailed(error="boom", exit_code=1))
    else:
        facts += [ev.StopRequested(by="user"), ev.StoppingStarted(), ev.Stopped(reason="user")]
    return facts


def build(runs: int, seed: int = 7) -> list[ev.Recorded]:
    """Round-robin interleaving of the runs' facts, as a busy store's log is."""
    rnd = random.Random(seed)
    names = list(OPERATION)
    streams = [(f"run-{i + 1}", history(rnd, names[i % 3])) for i in range(runs)]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    records: list[ev.Recorded] = []
    cursor = [0] * runs
    live = list(range(runs))
    while live:
        still = []
        for i in live:
            stream, facts = streams[i]
            fact = facts[cursor[i]]
            cursor[i] += 1
            position = len(records) + 1
            records.append(
                ev.Recorded(
                    stream=stream,
                    version=cursor[i],
                    position=position,
                    event_id=f"{position:032x}",
                    recorded_at=start + dt.timedelta(microseconds=position),
                    event=fact,  # type: ignore[arg-type]
                )
            )
            if cursor[i] < len(facts):
                still.append(i)
        live = still
    return records


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--import", dest="transfer", action="store_true")
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()

    records = build(args.runs)
    n = len(records)
    folder = tempfile.mkdtemp(prefix="bench-replay-")
    path = os.path.join(folder, "log.jsonl")
    bare = os.path.join(folder, "facts.jsonl")
    with open(path, "wb") as f:
        f.write(b"".join(ev.encode_recorded_json(r) + b"\n" for r in records))
    one_run = [r.event for r in records if r.stream == "run-1"]
    enc = msgspec.json.Encoder()
    with open(bare, "wb") as f:  # one stream of n facts: run-1's history, then logs
        filler = [ev.LogRecorded(text="a log line")] * (n - len(one_run))
        facts = [*one_run[:5], *filler, *one_run[5:]]
        f.write(b"".join(enc.encode(fact) + b"\n" for fact in facts))
    del records, one_run, facts, filler
    gc.collect()  # measure as a fresh process would: not with the generator's objects alive
    size = os.path.getsize(path)
    print(f"{n:,} facts over {args.runs:,} runs; {size / 2**20:.1f} MiB of JSONL")

    decoder = msgspec.json.Decoder(ev.Recorded)

    def decode_only() -> int:
        count = 0
        with open(path, "rb") as f:
            for line in f:
                decoder.decode(line)
                count += 1
        return count

    t_ref, count = best(decode_only, args.repeat)
    assert count == n
    t_replay, report = best(lambda: replay(path), args.repeat)
    assert isinstance(report, lifecycle._replay.ReplayReport)
    assert report.ok
    assert report.records == n
    assert len(report.views) == args.runs
    t_other, other = best(lambda: replay(path, dialect="qualytics"), args.repeat)
    assert isinstance(other, lifecycle._replay.ReplayReport)
    t_bare, bare_report = best(lambda: replay(bare), args.repeat)
    assert isinstance(bare_report, lifecycle._replay.ReplayReport)
    assert bare_report.ok

    def rate(seconds: float, facts: int = n) -> str:
        return f"{facts / seconds:>12,.0f} facts/s"

    print(f"reference: read + msgspec decode     {rate(t_ref)}")
    print(f"replay(path)                         {rate(t_replay)}  ({t_ref / t_replay:.0%})")
    print(
        f"replay(path, dialect='qualytics')    {rate(t_other)}  ({t_ref / t_other:.0%}; "
        f"{len(other.divergences):,} divergences)"
    )
    print(f"replay(bare-fact file, one stream)   {rate(t_bare)}")

    async def transfer(url: str) -> None:
        async with lifecycle.open_store(url) as store:
            t = time.perf_counter()
            imported = await import_log(path, store)
            t_import = time.perf_counter() - t
            t = time.perf_counter()
            exported = await export(store, os.path.join(folder, "again.jsonl"))
            t_export = time.perf_counter() - t
            t = time.perf_counter()
            again = await areplay(store)
            t_replay = time.perf_counter() - t
        assert imported == exported == again.records == n
        label = url.partition("://")[0]
        print(f"import_log(file, {label + '://':<10})        {rate(t_import)}")
        print(f"export({label + '://':<10}, file)            {rate(t_export)}")
        print(f"areplay({label + '://':<10})                 {rate(t_replay)}")

    if args.transfer:
        anyio.run(transfer, "memory://")
    if args.sqlite:
        anyio.run(transfer, f"sqlite:///{os.path.join(folder, 'runs.db')}", backend="asyncio")


if __name__ == "__main__":
    main()
