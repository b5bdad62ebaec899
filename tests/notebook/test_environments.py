"""``--env NAME`` names the store in ``LIFECYCLE_STORE_NAME``."""

from __future__ import annotations

import pytest

from lifecycle._notebook._environments import environment_url, environments


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
