"""Workflows the explorer's tests run (module level, so a rerun can find their code)."""

from __future__ import annotations

import sys

from lifecycle import task, workflow


@task()
def fetch_data() -> dict[str, list[int]]:
    print("fetching sales")
    return {"sales": [100, 200, 150]}


@task()
def calculate_total(data: dict[str, list[int]]) -> int:
    print(f"summing {len(data['sales'])} values")
    print("a warning on stderr", file=sys.stderr)
    return sum(data["sales"])


@task()
def as_pair(total: int) -> tuple[int, str]:
    return (total, "a tuple is pickled")


@workflow(name="sales")
def sales() -> None:
    total = calculate_total(fetch_data())
    as_pair(total)
