"""What the workflow SDK exports (and what ``lifecycle`` re-exports, once wired)."""

from __future__ import annotations

import importlib

import pytest

import lifecycle
import lifecycle._workflow as sdk

MODULES = [
    "_dag",
    "_define",
    "_errors",
    "_history",
    "_ids",
    "_process",
    "_progress",
    "_rerun",
    "_results",
    "_run",
    "_store",
    "_version",
    "_worker",
]


@pytest.mark.parametrize("module", MODULES)
def test_every_name_in_all_exists(module: str) -> None:
    mod = importlib.import_module(f"lifecycle._workflow.{module}")
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name!r}, which it lacks"


def test_the_front_door() -> None:
    for name in sdk.__all__:
        assert hasattr(sdk, name)
    assert {"task", "workflow", "Workflow", "default_store_url"} <= set(sdk.__all__)


def test_lifecycle_reexports_the_contract() -> None:
    names = ("task", "workflow", "Workflow", "Environment", "WorkflowError")
    for name in names:  # getattr: type-checks before lifecycle/__init__.py re-exports them
        assert getattr(lifecycle, name) is getattr(sdk, name)
        assert name in lifecycle.__all__
