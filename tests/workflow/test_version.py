"""job_version: the same definition keeps its number, a changed one gets the next."""

from __future__ import annotations

import pytest

from lifecycle import MemoryStore
from lifecycle._workflow import task, workflow
from lifecycle._workflow._version import load_registry, register_version

pytestmark = pytest.mark.anyio


@task()
def source_a() -> int:
    return 1


@task()
def source_b() -> int:
    return 2  # a different body: a different source


@workflow(name="versioned")
def first() -> None:
    source_a().alias("step")


async def test_same_definition_same_version_changed_next_reverted_old() -> None:
    store = MemoryStore()
    assert await register_version(store, first.build()) == 1
    assert await register_version(store, first.build()) == 1

    @workflow(name="versioned")
    def second() -> None:
        source_b().alias("step")  # same name, other source

    assert await register_version(store, second.build()) == 2

    @workflow(name="versioned")
    def third() -> None:
        source_b().alias("step")
        source_a()  # the DAG changed

    assert await register_version(store, third.build()) == 3
    assert await register_version(store, first.build()) == 1  # reverting keeps the old number
    registry = await load_registry(store, "versioned")
    assert registry.current == 1
    assert [v.version for v in registry.versions] == [1, 2, 3]
    assert [t["name"] for t in registry.get(3).tasks] == ["step", "source_a"]  # type: ignore[union-attr]


async def test_constants_are_part_of_the_definition() -> None:
    store = MemoryStore()

    @task()
    def scale(x: object) -> object:
        return x

    @workflow(name="consts")
    def one() -> None:
        scale({"b": 1, "a": {2, 1}})

    @workflow(name="consts")
    def same() -> None:
        scale({"a": {1, 2}, "b": 1})  # the same value, written in another order

    @workflow(name="consts")
    def other() -> None:
        scale({"a": {1, 3}, "b": 1})

    assert await register_version(store, one.build()) == 1
    assert await register_version(store, same.build()) == 1
    assert await register_version(store, other.build()) == 2
