"""Run a program of ``examples/`` as the README tells a user to run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent.parent / "examples"


def run_example(name: str, store: str, *, timeout: float) -> str:
    """Run ``examples/NAME`` with ``store`` as its argument in a fresh process; its stdout
    (stderr's tail in the failure message when it exits non-zero)."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), store],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
