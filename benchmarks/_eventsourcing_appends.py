"""The eventsourcing library's own PostgreSQL recorder appending events, for
``bench_postgres.py --eventsourcing PYTHON`` (issue 14). Runs in a throwaway venv of its own
(``pip install 'eventsourcing[postgres]'``): it imports nothing of lifecycle.

    PYTHON benchmarks/_eventsourcing_appends.py HOST PORT DBNAME USER THREADS APPENDS

``THREADS`` threads (the recorder is synchronous; a pool of 10 connections, like the store's),
each inserting ``APPENDS`` single events, one ``insert_events`` call each, to an aggregate of its
own — the shape of the store's benchmark. Prints one line: ``events/s``.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore


def main(host: str, port: str, dbname: str, user: str, *, threads: int, appends: int) -> None:
    datastore = PostgresDatastore(
        dbname, host, port, user, "", pool_size=10, max_overflow=0, max_waiting=threads
    )
    recorder = PostgresApplicationRecorder(datastore)
    recorder.create_table()
    state = b'{"text":"line"}'

    def writer() -> None:
        originator = uuid.uuid4()
        for version in range(1, appends + 1):
            recorder.insert_events([StoredEvent(originator, version, "bench:Logged", state)])

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    t = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(f"{threads * appends / (time.perf_counter() - t):.0f}")
    datastore.close()


if __name__ == "__main__":
    h, p, d, u, n, a = sys.argv[1:7]
    main(h, p, d, u, threads=int(n), appends=int(a))
