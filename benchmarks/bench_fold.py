"""Fold throughput: the compiled table against driving a ``transitions.Machine`` per fact.

    .venv/bin/python benchmarks/bench_fold.py [--runs 10000] [--repeat 5]

Builds ``--runs`` qualytics/datatailr/domino runs of canonical facts with logs, interleaved
round-robin (as a real log is), and measures, best of ``--repeat``:

1. fold of decoded facts (``Projector.feed`` over ``Recorded`` envelopes) — facts/s;
2. the same facts driven through one ``transitions.Machine`` model per run (triggers only;
   building the machines is reported apart) — facts/s, and the ratio;
3. decode from msgpack bytes (one blob per fact, as a store keeps them) alone, and decode + fold —
   facts/s, and how much the fold adds to decoding.

The final states of (1) and (2) are compared: the benchmark fails if they differ.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from collections.abc import Callable

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE, STOP_SEQUENCE

OPERATION = {"datatailr": "run", "domino": "run", "qualytics": "scan"}


def history(rnd: random.Random, dialect: str) -> list[ev.Fact]:
    facts: list[ev.Fact] = [ev.Requested(dialect=dialect, operation=OPERATION[dialect])]
    for fact in START_SEQUENCE:
        facts.append(fact)
    facts += [
        ev.LogRecorded(level=rnd.choice(["info", "info", "warning"]), text="line")
        for _ in range(rnd.randint(4, 12))
    ]
    end = rnd.random()
    if end < 0.7:
        facts.append(ev.ExecutionSucceeded())
    elif end < 0.85:
        facts.append(ev.ExecutionFailed(exit_code=1))
    else:
        facts += STOP_SEQUENCE()
    return facts


def build(runs: int, seed: int = 7) -> list[ev.Recorded]:
    rnd = random.Random(seed)
    names = list(OPERATION)
    streams = [(f"run-{i + 1}", history(rnd, names[i % 3])) for i in range(runs)]
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    records: list[ev.Recorded] = []
    cursor = [0] * runs
    live = list(range(runs))
    while live:  # round-robin interleaving
        nxt = []
        for i in live:
            stream, facts = streams[i]
            k = cursor[i]
            records.append(
                ev.Recorded(
                    stream=stream,
                    version=k + 1,
                    position=len(records) + 1,
                    event_id="",
                    recorded_at=at,
                    event=facts[k],  # type: ignore[arg-type]
                )
            )
            cursor[i] = k + 1
            if k + 1 < len(facts):
                nxt.append(i)
        live = nxt
    return records


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def fold_states(records: list[ev.Recorded]) -> dict[int, str]:
    projector = lifecycle.Projector()
    projector.feed(records)
    return {run_id: run.run.state for run_id, run in projector.runs.items()}


def machine_states(records: list[ev.Recorded]) -> tuple[float, float, dict[int, str]]:
    class Model:
        pass

    t0 = time.perf_counter()
    models: dict[str, Model] = {}
    for name in OPERATION:
        group = [
            r.stream
            for r in records
            if isinstance(r.event, ev.Requested) and r.event.dialect == name
        ]
        ms = [Model() for _ in group]
        lifecycle.dialect(name).machine(ms)
        models.update(zip(group, ms, strict=True))
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in records:
        models[r.stream].trigger(type(r.event).__name__, fact=r.event)  # type: ignore[attr-defined]
    driven = time.perf_counter() - t0
    return built, driven, {int(s[4:]): m.state for s, m in models.items()}  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    records = build(args.runs)
    n = len(records)
    print(f"{args.runs:,} interleaved runs, {n:,} facts")

    t_fold, states = best(lambda: fold_states(records), args.repeat)
    built, driven, machine = machine_states(records)
    assert machine == states, "the compiled fold and the transitions machine disagree"

    blobs = [
        (r.stream, r.version, r.position, r.recorded_at, ev.encode_fact(r.event)) for r in records
    ]
    decode = ev.decode_fact

    def decode_only() -> int:
        return len([decode(b) for _, _, _, _, b in blobs])

    def decode_fold() -> dict[int, str]:
        return fold_states(
            [
                ev.Recorded(
                    stream=s, version=v, position=p, event_id="", recorded_at=at, event=decode(b)
                )
                for s, v, p, at, b in blobs
            ]
        )

    def decode_envelopes() -> int:
        return len(
            [
                ev.Recorded(
                    stream=s, version=v, position=p, event_id="", recorded_at=at, event=decode(b)
                )
                for s, v, p, at, b in blobs
            ]
        )

    t_dec, _ = best(decode_only, args.repeat)
    t_env, _ = best(decode_envelopes, args.repeat)
    t_decfold, again = best(decode_fold, args.repeat)
    assert again == states

    rate = n / t_fold
    rows = [
        ("fold (decoded facts)", rate, "reference"),
        (
            "transitions.Machine, triggers only",
            n / driven,
            f"fold is {driven / t_fold:,.0f}x faster",
        ),
        (
            "transitions.Machine, incl. building",
            n / (driven + built),
            f"fold is {(driven + built) / t_fold:,.0f}x faster",
        ),
        ("decode msgpack only", n / t_dec, ""),
        ("decode into envelopes", n / t_env, ""),
        (
            "decode + envelopes + fold",
            n / t_decfold,
            f"fold adds {100 * (t_decfold - t_env) / t_env:.0f}% to decoding into envelopes",
        ),
    ]
    print(f"{'measure':40} {'facts/s':>14}  note")
    for name, r, note in rows:
        print(f"{name:40} {r:>14,.0f}  {note}")


if __name__ == "__main__":
    main()
