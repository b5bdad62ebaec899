"""The README's test modules run as written, by pytest in a fresh process with the plugins a user
has: the section "Testing your own dialect" (its TOML file and Python snippets become a user's
test module), and "Run it on your own store" (the ``<!-- pytest -->`` block)."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from lifecycle import events as ev

pytest_plugins = ["pytester"]

README = Path(__file__).parents[2] / "README.md"
SECTION = "## Testing your own dialect"

# Only what a user's own settings would say: reproducible, no example database.
CONFTEST = """
from hypothesis import settings

settings.register_profile("snippets", database=None, derandomize=True, deadline=None)
settings.load_profile("snippets")
"""


def _blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) + len(SECTION) :]
    section = section[: section.index("\n## ")]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def test_the_section_has_snippets() -> None:
    assert len(_blocks("toml")) == 1
    assert len(_blocks("python")) >= 6


def test_the_snippets_run_as_a_user_s_tests(pytester: pytest.Pytester) -> None:
    (toml,) = _blocks("toml")
    pytester.path.joinpath("mine.toml").write_text(toml, encoding="utf-8")
    golden = pytester.mkdir("golden")
    facts = [ev.Requested(dialect="mine"), ev.ExecutionStarted(), ev.ExecutionSucceeded()]
    golden.joinpath("first.jsonl").write_bytes(b"\n".join(msgspec.json.encode(f) for f in facts))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_readme_mine="\n\n".join(_blocks("python")))
    result = pytester.runpytest_subprocess(
        "-p", "no:lifecycle", "-p", "lifecycle.testing._plugin", "-p", "no:cacheprovider", "-q"
    )
    outcomes = result.parseoutcomes()
    # check_dialect, 2 properties, the transition paths, the machine, 1 golden, the fixture test
    # (on each anyio backend the anyio plugin offers)
    from lifecycle._dialects._load import load_dialect
    from lifecycle.testing._paths import paths

    covering = len(paths(load_dialect(pytester.path / "mine.toml"), "transitions"))
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert "errors" not in outcomes and "error" not in outcomes, result.stdout.str()
    assert outcomes.get("passed", 0) >= 1 + 2 + covering + 1 + 1 + 1


def _marked_pytest_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(r"<!-- pytest -->\n```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_store_checks_snippet_passes_as_written(pytester: pytest.Pytester) -> None:
    """#11.6: it failed 17 of 34 cases as written — the anyio plugin ran each check on trio too,
    where the SQLite store cannot run."""
    from lifecycle.testing import STORE_CHECKS

    (block,) = _marked_pytest_blocks()
    pytester.makepyfile(test_my_store=block)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert "errors" not in outcomes and "error" not in outcomes, result.stdout.str()
    assert outcomes.get("passed", 0) == len(STORE_CHECKS), result.stdout.str()
