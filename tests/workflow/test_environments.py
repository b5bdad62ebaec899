"""Environments are stores named by variables: ``%lifecycle_runs --env NAME`` and
``Workflow(name, Environment.NAME)`` read the store in ``LIFECYCLE_STORE_NAME``."""

from __future__ import annotations

from pathlib import Path

import pytest

import lifecycle
from lifecycle._workflow._environments import environment_url, environments


def test_environments_are_named_by_variables() -> None:
    environ = {
        "LIFECYCLE_STORE": "sqlite:///dev.db",
        "LIFECYCLE_STORE_PROD": "/srv/prod/runs.db",
        "LIFECYCLE_STORE_PRE": "memory://",
        "LIFECYCLE_STORE_EMPTY": "  ",  # set but empty: not an environment
        "OTHER": "x",
    }
    found = environments(environ)
    assert list(found) == ["default", "pre", "prod"]
    assert found["default"] == "sqlite:///dev.db"
    assert found["prod"] == "sqlite:////srv/prod/runs.db"
    assert environment_url("PROD", environ) == found["prod"]


def test_an_unknown_environment_names_the_variable_to_set() -> None:
    with pytest.raises(ValueError, match="set LIFECYCLE_STORE_QA to its store"):
        environment_url("qa", {"LIFECYCLE_STORE": "memory://"})


def test_the_sdk_reads_the_environment_s_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = tmp_path / "prod.db"
    monkeypatch.setenv("LIFECYCLE_STORE", str(tmp_path / "dev.db"))
    monkeypatch.setenv("LIFECYCLE_STORE_PROD", str(prod))
    with lifecycle.Runs(f"sqlite:///{prod}") as runs:
        runs.create("datatailr", operation="workflow", name="in-prod")
    assert lifecycle.Workflow("in-prod", lifecycle.Environment.PROD).store == f"sqlite:///{prod}"
    assert lifecycle.Workflow("in-prod", "prod", get_existing=True).name == "in-prod"
    assert lifecycle.Workflow("in-prod", lifecycle.Environment.DEV).store is None  # not set
    with pytest.raises(ValueError, match="no workflow named 'in-prod'"):
        lifecycle.Workflow("in-prod", get_existing=True)  # the default store: dev.db
