"""The pytest plugin: its fixtures in a pytest session of their own (as a user's would load it),
its test ids, and that it imports nothing heavy when pytest loads it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import lifecycle.testing._plugin as plugin

pytest_plugins = ["pytester"]

# `-p no:lifecycle` in case the entry point already loads the plugin under that name; this
# process imported the plugin already, so pytest cannot rewrite its asserts (and says so)
LOAD = (
    "-p", "no:lifecycle",
    "-p", "lifecycle.testing._plugin",
    "-p", "no:cacheprovider",
    "-W", "ignore::pytest.PytestAssertRewriteWarning",
)  # fmt: skip

USER_TESTS = """
import pytest
import lifecycle
from lifecycle import events as ev
from lifecycle.testing._paths import paths


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


def test_memory_store(lifecycle_memory_store):
    assert isinstance(lifecycle_memory_store, lifecycle.MemoryStore)


@pytest.mark.anyio
async def test_runs(lifecycle_runs):
    run = await lifecycle_runs.create("qualytics", operation="sync")
    await lifecycle_runs.record(run.id, ev.ExecutionStarted())
    assert (await lifecycle_runs.get(run.id)).state == "Running"


@pytest.mark.anyio
async def test_sqlite_store(lifecycle_sqlite_store, tmp_path):
    async with lifecycle_sqlite_store as store:
        async with lifecycle.AsyncRuns(store) as runs:
            run = await runs.create("domino")
            assert (await runs.get(run.id)).state == "Queued"
    assert (tmp_path / "runs.db").exists()


@pytest.mark.parametrize("path", paths("qualytics", "shortest", operation="sync"))
def test_path_ids(path):
    assert lifecycle.fold("qualytics", path.facts).state == path.final
"""


def test_fixtures_in_a_user_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest(*LOAD, "-v", "-rs")
    result.assert_outcomes(passed=9, skipped=1)  # SQLite skips itself on trio
    result.stdout.fnmatch_lines(
        [
            "*test_path_ids?Queued->Running->Success? PASSED*",
            "SKIPPED*the SQLite store runs on asyncio only*",
        ]
    )


def test_the_store_url_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def lifecycle_store_url(tmp_path):
            return f"sqlite:///{tmp_path / 'other.db'}"

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.anyio
        async def test_on_sqlite(lifecycle_runs, tmp_path):
            await lifecycle_runs.create("domino")
            assert lifecycle_runs.store.url.startswith("sqlite://")
            assert (tmp_path / "other.db").exists()
        """
    )
    pytester.runpytest(*LOAD).assert_outcomes(passed=1)


def test_ids_only_for_the_kit_s_own_values() -> None:
    from lifecycle.testing._paths import paths

    path = paths("domino", "shortest")[0]
    config = object()
    assert plugin.pytest_make_parametrize_id(config, path, "path") == "Queued"  # type: ignore[arg-type]
    assert plugin.pytest_make_parametrize_id(config, "x", "path") is None  # type: ignore[arg-type]


def test_the_plugin_module_imports_nothing_heavy() -> None:
    """Load the plugin's own file in a fresh interpreter: neither lifecycle nor Hypothesis may be
    imported by it."""
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("probe", {plugin.__file__!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        heavy = [m for m in ("lifecycle", "hypothesis", "msgspec", "anyio") if m in sys.modules]
        print(",".join(heavy) or "none")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "none"
