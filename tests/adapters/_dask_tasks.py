"""Task functions for the Dask plugin's tests (shipped to the workers by value)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def inc(x: int, *_: object) -> int:
    return x + 1


def add(*xs: int) -> int:
    return sum(xs)


def boom(x: int) -> int:
    raise ValueError(f"boom at {x}")


def flaky(marker: str, *_: object) -> str:
    """Fails on its first attempt, succeeds on the retry."""
    path = Path(marker)
    if not path.exists():
        path.write_text("1")
        raise RuntimeError("first try fails")
    return "second try"


def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "slow"


def victim(pid_file: str, marker: str) -> str:
    """On its first attempt, says which process runs it and waits to be killed with it."""
    done = Path(marker)
    if done.exists():
        return "survived"
    done.write_text("1")
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(60)
    return "not killed"
