"""Process identity (``lifecycle._processes``): pid *and* start time, and kills by it that never
hit another process — tried on real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import lifecycle
from lifecycle._processes import kill_leftovers, leftovers, parse_identity

pytestmark = pytest.mark.slow

PARENT = [
    sys.executable,
    "-c",
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n",
]


@pytest.fixture
def session() -> Iterator[subprocess.Popen[bytes]]:
    """A process leading a session of its own, with a child of its own."""
    process = subprocess.Popen(PARENT, start_new_session=True, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    yield process
    kill_leftovers(lifecycle.process_identity(process.pid) or "")
    process.kill()
    process.wait()
    process.stdout.close()


def test_identity_names_pid_and_start_time(session: subprocess.Popen[bytes]) -> None:
    identity = lifecycle.process_identity(session.pid)
    assert identity is not None
    parsed = parse_identity(identity)
    assert parsed is not None
    assert parsed.pid == session.pid
    assert parsed.start > 0
    assert lifecycle.process_identity(session.pid) == identity  # stable
    assert parse_identity("pid 12") is None
    assert parse_identity("linux:a:b:c:d") is None


def test_leftovers_are_the_session_and_kill_leftovers_kills_them(
    session: subprocess.Popen[bytes],
) -> None:
    identity = lifecycle.process_identity(session.pid)
    assert identity is not None
    found = leftovers(identity)
    assert len(found) == 2
    assert session.pid in found
    assert sorted(kill_leftovers(identity)) == found
    assert session.wait(timeout=10) == -9
    # SIGKILL is acted on when the process next runs: the grandchild may show for a moment
    deadline = time.monotonic() + 10
    while leftovers(identity) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert leftovers(identity) == []


def test_a_pid_with_another_start_time_is_another_process(
    session: subprocess.Popen[bytes],
) -> None:
    """The pid was handed out again: the recorded process is gone, nothing is killed."""
    identity = lifecycle.process_identity(session.pid)
    assert identity is not None
    *head, start = identity.split(":")
    older = ":".join([*head, str(int(start) - 1)])
    assert leftovers(older) == []
    assert kill_leftovers(older) == []
    assert session.poll() is None


def test_another_boot_or_namespace_is_not_here(session: subprocess.Popen[bytes]) -> None:
    identity = lifecycle.process_identity(session.pid)
    assert identity is not None
    _, boot, ns, pid, start = identity.split(":")
    assert kill_leftovers(f"linux:{'0' * 8}-{boot[9:]}:{ns}:{pid}:{start}") == []
    assert kill_leftovers(f"linux:{boot}:1:{pid}:{start}") == []
    assert kill_leftovers("not an identity") == []
    assert session.poll() is None
