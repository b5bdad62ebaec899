"""The seed's examples, as shipped in ``examples/``, run as scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli._support import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [pytest.mark.slow]


def run(script: str, tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "LIFECYCLE_STORE": str(tmp_path / "runs.db")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
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


def test_every_minute(tmp_path: Path) -> None:
    """Deployed, scheduled and fired on a clock 60 times faster: a run a second."""
    out = run("every_minute.py", tmp_path, "--minutes", "4", "--speed", "60", "--undeploy")
    assert out.startswith("deployed every-minute: Ready (deploy run 1)\n")
    assert out.count("fired    every-minute") >= 2
    assert out.rstrip().endswith("undeployed every-minute")
    shown = cli("job", "runs", "every-minute", store=str(tmp_path / "runs.db")).stdout
    assert shown.count("Completed") >= 2 and "undeployed" in shown
