"""The seed's examples, as shipped in ``examples/``, run as scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [pytest.mark.slow]


def run(script: str, tmp_path: Path) -> str:
    env = {**os.environ, "LIFECYCLE_STORE": str(tmp_path / "runs.db")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_daily_sales_report(tmp_path: Path) -> None:
    out = run("daily_sales_report.py", tmp_path)
    assert "[run 1] daily_sales_report: Completed" in out
    assert "fetch_data -> {'sales': [100, 200, 150]}" in out
    assert "calculate_total -> 450" in out


def test_complex_pipeline(tmp_path: Path) -> None:
    out = run("complex_pipeline.py", tmp_path)
    assert "[run 1] Complex Pipeline: Completed" in out
    assert "first_addition -> 55" in out
    assert "add_three -> 213" in out
    assert "rerun 2: num_0 Completed (cached from run 1)" in out
    assert "rerun 2: reduce_list Completed\n" in out
