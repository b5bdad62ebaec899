"""Every public module lists its names in ``__all__``, and every listed name exists."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

PUBLIC = ["lifecycle", "lifecycle.events", "lifecycle.notebook", "lifecycle.testing"]


@pytest.mark.parametrize("module", PUBLIC)
def test_all_names_exist_and_are_unique(module: str) -> None:
    mod = importlib.import_module(module)
    names = mod.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(mod, name), f"{module}.{name} is in __all__ but does not exist"


def test_top_level_reexports_are_documented() -> None:
    import lifecycle

    for name in lifecycle.__all__:
        obj = getattr(lifecycle, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):  # type aliases carry no docstring
            assert obj.__doc__, f"lifecycle.{name} has no docstring"


def test_importing_lifecycle_imports_neither_hypothesis_nor_pytest() -> None:
    code = (
        "import sys, lifecycle\n"
        "print(sorted(m for m in ('hypothesis', 'pytest') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
