"""Run every benchmark, one after another, and print what each prints (``make bench``).

    .venv/bin/python benchmarks/run_all.py [--quick]

Each figure is measured against a reference in the same run (see each script's docstring);
``benchmarks/README.md`` records them with the command that reproduces each.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

SUITES: list[tuple[str, list[str], list[str]]] = [
    # (script, full arguments, --quick arguments)
    ("bench_fold.py", [], ["--runs", "2000", "--repeat", "2"]),
    ("bench_sqlite.py", [], ["--quick", "--repeat", "1"]),
    ("bench_sqlite_reads.py", [], ["--streams", "10000", "--samples", "500"]),
    ("bench_replay_jsonl.py", [], ["--runs", "1000", "--repeat", "2"]),
    ("bench_engine.py", [], ["--containers", "200", "--repeat", "1"]),
    ("bench_workflow.py", [], ["--tasks", "200", "--repeat", "1"]),
    ("bench_cli.py", [], ["--runs", "10000", "--repeat", "2"]),
    ("bench_ui.py", [], ["--runs", "10000", "--repeat", "2"]),
    ("bench_dask_plugin.py", ["--repeat", "7"], ["--tasks", "200", "--repeat", "1"]),
    ("bench_dask.py", ["--repeat", "3"], ["--tasks", "50", "--repeat", "1"]),
    ("bench_postgres.py", [], ["--appends", "10", "--replay", "10000", "--repeat", "1"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    args = parser.parse_args()
    failed = []
    for script, full, quick in SUITES:
        print(f"\n=== {script} {' '.join(quick if args.quick else full)}", flush=True)
        done = subprocess.run(
            [sys.executable, str(HERE / script), *(quick if args.quick else full)], check=False
        )
        if done.returncode:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
