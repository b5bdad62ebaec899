"""The README stays true: its diagrams are what the dialects draw, its snippets run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lifecycle

README = (Path(__file__).parent.parent / "README.md").read_text()


def diagrams() -> dict[str, str]:
    found = re.findall(r"<!-- diagram: ([\w.]+) -->\n```mermaid\n(.*?)```", README, re.S)
    return dict(found)


@pytest.mark.parametrize("name", ["datatailr", "domino", "qualytics"])
def test_readme_diagrams_are_current(name: str) -> None:
    d = lifecycle.dialect(name)
    drawn = diagrams()
    assert drawn[name] == d.to_mermaid(), f"regenerate the {name} diagram in README.md"
    if d.containers is not None and d.containers is not d:
        assert drawn[d.containers.name] == d.containers.to_mermaid()


def test_readme_marked_snippets_run_on_a_fresh_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marked = re.findall(r"<!-- run -->\n```python\n(.*?)```", README, re.S)
    assert marked
    monkeypatch.setenv("LIFECYCLE_STORE", f"sqlite:///{tmp_path}/runs.db")
    monkeypatch.chdir(tmp_path)
    try:
        for block in marked:
            exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    finally:
        lifecycle._dialects._REGISTRY.pop("mine", None)
