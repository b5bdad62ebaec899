"""A store writer in its own OS process, for the checks that need several (or a killed one).

    python -m lifecycle.testing._store_worker race|crash URL ARGS-AS-JSON

It speaks JSON lines on stdout, each flushed as soon as it is true: ``{"ready": …}`` once the
store is open, then one line per append — ``{"ok": records, …}`` only after ``await append``
returned, ``{"lost": ids, …}`` for a ``ConcurrencyError``, ``{"error": …}`` for anything else —
and ``{"done": …}`` at the end. A record is ``[stream, version, position, event_id]``; race
lines carry ``"expected": {stream: version}``, crash lines ``"batch": [task, n]``.

- ``race`` waits for a ``go`` line on stdin, then makes ``attempts`` appends of one fact to one
  or two of ``streams``, each with the version it has just read as ``expected_version``.
- ``crash`` runs ``tasks`` concurrent writers, each appending batches of 1–4 facts to its own
  stream with the right expected version (every third batch also writes a fact to a shared
  stream) until it is killed, or ``limit`` batches. Event ids are ``TAG.TASK.BATCH.J/TOTAL``, so
  a reader can tell a whole batch from a torn one.

The process exits as soon as its stdin closes, so a worker never outlives the check (or the
test run) that started it.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from typing import Any

import anyio
import anyio.to_thread

from lifecycle._errors import ConcurrencyError, IdempotencyConflict
from lifecycle._stores import RunStore, Write, open_store
from lifecycle.events import LogRecorded, Recorded

__all__ = ["main"]


def _emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _records(records: list[Recorded]) -> list[list[Any]]:
    return [[r.stream, r.version, r.position, r.event_id] for r in records]


def _watch_stdin(go: threading.Event) -> None:
    """Set ``go`` on a ``go`` line; end the process when stdin closes (the parent is gone)."""
    for line in sys.stdin:
        if line.strip() == "go":
            go.set()
    os._exit(0)


async def _version(store: RunStore, stream: str) -> int:
    records = await store.read([stream])
    return records[-1].version if records else 0


async def _race(store: RunStore, args: dict[str, Any], go: threading.Event) -> None:
    worker, streams, attempts = args["worker"], args["streams"], args["attempts"]
    rng = random.Random(args.get("seed", worker))
    _emit({"ready": worker})
    await anyio.to_thread.run_sync(go.wait)
    for i in range(attempts):
        writes = []
        for stream in rng.sample(streams, rng.choice((1, 1, 2))):
            eid = f"p{worker}-{i}-{stream}"
            version = await _version(store, stream)
            writes.append(
                Write(
                    stream=stream,
                    events=(LogRecorded(text=eid),),
                    expected_version=version,
                    event_ids=(eid,),
                )
            )
        expected = {w.stream: w.expected_version for w in writes}
        try:
            records = await store.append(writes)
        except IdempotencyConflict as exc:
            _emit({"error": f"IdempotencyConflict: {exc}"})
        except ConcurrencyError:
            _emit({"lost": [w.ids()[0] for w in writes], "expected": expected})
        except Exception as exc:  # reported, so the parent can name it
            _emit({"error": f"{type(exc).__name__}: {exc}"})
        else:
            _emit({"ok": _records(records), "expected": expected})
    _emit({"done": worker})


async def _crash(store: RunStore, args: dict[str, Any]) -> None:
    tag, tasks, limit = args["tag"], args["tasks"], args.get("limit", 10_000)
    versions = [await _version(store, f"crash-{t}") for t in range(tasks)]
    _emit({"ready": tag})

    async def writer(t: int) -> None:
        rng = random.Random(f"{tag}.{t}")
        for n in range(limit):
            k = rng.randint(1, 4)
            total = k + (n % 3 == 0)
            ids = [f"{tag}.{t}.{n}.{j}/{total}" for j in range(total)]
            writes = [
                Write(
                    stream=f"crash-{t}",
                    events=tuple(LogRecorded(text=i) for i in ids[:k]),
                    expected_version=versions[t],
                    event_ids=tuple(ids[:k]),
                )
            ]
            if total > k:
                writes.append(
                    Write(
                        stream="crash-shared",
                        events=(LogRecorded(text=ids[k]),),
                        event_ids=(ids[k],),
                    )
                )
            records = await store.append(writes)
            versions[t] += k
            _emit({"ok": _records(records), "batch": [t, n]})

    async with anyio.create_task_group() as tg:
        for t in range(tasks):
            tg.start_soon(writer, t)
    _emit({"done": tag})


async def _main(mode: str, url: str, args: dict[str, Any]) -> None:
    go = threading.Event()
    threading.Thread(target=_watch_stdin, args=(go,), daemon=True).start()
    async with open_store(url) as store:
        if mode == "race":
            await _race(store, args, go)
        elif mode == "crash":
            await _crash(store, args)
        else:
            raise SystemExit(f"unknown mode {mode!r}: race or crash")


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``MODE URL ARGS-AS-JSON``."""
    mode, url, args = argv if argv is not None else sys.argv[1:]
    anyio.run(_main, mode, url, json.loads(args))  # asyncio: every backend supports it


if __name__ == "__main__":
    main()
