"""Module-level tasks and workflows shared by the workflow tests (importable by reference, as
the ``subprocess`` adapter and reruns from another process need)."""

from __future__ import annotations

import sys
import threading
from typing import Any

from lifecycle._workflow import task, workflow


@task()
def fetch_data() -> dict[str, list[int]]:
    print("fetching sales")
    return {"sales": [100, 200, 150]}


@task()
def calculate_total(data: dict[str, list[int]]) -> int:
    print(f"summing {len(data['sales'])} values")
    return sum(data["sales"])


@workflow(name="daily_sales_report")
def sales_pipeline() -> None:
    data = fetch_data()
    calculate_total(data)


@task()
def get_number() -> int:
    return 42


@task()
def add(a: int, b: int) -> int:
    return a + b


@task()
def reduce_list(*numbers: int) -> int:
    return sum(numbers)


@workflow("Complex Pipeline")
def complex_pipeline() -> None:
    add(get_number().alias("my_number"), 13).alias("first_addition")
    total_2 = reduce_list(*[get_number().alias(f"num_{i}") for i in range(5)])
    add(total_2, 1).alias("add_one")
    add(total_2, 2).alias("add_two")
    add(total_2, 3).alias("add_three")


@task()
def explode(total: int) -> int:
    print("about to divide", total)
    print("dividing by zero", file=sys.stderr)
    return total // 0


@task()
def report(value: int) -> str:
    return f"value {value}"


@task()
def side() -> str:
    return "independent"


@workflow(name="failing_pipeline")
def failing_pipeline() -> None:
    total = calculate_total(fetch_data())
    report(explode(total))
    side()


@task()
def make_lock() -> Any:
    return threading.Lock()


@workflow(name="unserializable")
def unserializable() -> None:
    report(make_lock())


FLAKY = {"fail": True}


@task()
def flaky(total: int) -> int:
    if FLAKY["fail"]:
        raise RuntimeError("flaky failure")
    return total * 2


@workflow(name="flaky_pipeline")
def flaky_pipeline() -> None:
    total = calculate_total(fetch_data())
    report(flaky(total))
    side()


@task()
def chatty(n: int) -> int:
    for i in range(n):
        print(f"line {i}")
    return n


@workflow(name="chatty")
def chatty_pipeline() -> None:
    chatty(10)


@task(memory_limit="64Mi")
def hog() -> int:
    block = bytearray(256 * 2**20)
    return len(block)


@workflow(name="hungry")
def hungry() -> None:
    hog()
