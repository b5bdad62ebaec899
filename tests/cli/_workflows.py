"""Workflows the CLI tests run through the workflow SDK (names prefixed ``cli-``: the SDK keeps
workflows by name in each process)."""

from __future__ import annotations

import time

from lifecycle._workflow import task, workflow

__all__ = ["broken", "numbers", "slow"]


@task()
def get_number() -> int:
    return 42


@task()
def add(a: int, b: int) -> int:
    return a + b


@task()
def reduce_list(*numbers: int) -> int:
    return sum(numbers)


@task()
def divide(x: int) -> float:
    return x / 0


@workflow(name="cli-numbers")
def numbers() -> None:
    add(get_number().alias("my_number"), 13).alias("first_addition")
    total = reduce_list(*[get_number().alias(f"num_{i}") for i in range(3)])
    add(total, 1).alias("add_one")


@workflow(name="cli-broken")
def broken() -> None:
    divide(get_number())


@task()
def tick() -> int:
    for i in range(1200):  # a minute: long enough to be aborted
        print(f"tick {i}", flush=True)
        time.sleep(0.05)
    return 0


@workflow(name="cli-slow")
def slow() -> None:
    tick()
