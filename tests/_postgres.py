"""A real, throwaway PostgreSQL server for the tests (issue 14; DESIGN §14).

``LIFECYCLE_TEST_POSTGRES=<dsn>`` points the tests at a server you run. Otherwise
:func:`start_cluster` makes a private cluster from Debian's ``postgresql`` package (installed by
``.ci/run`` when it is missing): ``initdb`` into a temporary folder — as the ``postgres`` user
when we are root, since ``initdb`` refuses root — with durability off (``fsync=off``: a test
cluster), on a free port of 127.0.0.1, and removes it all at the end. Where PostgreSQL is not
installed the tests skip, saying so; under ``CI=true`` they fail instead, so a CI run can never
pass by skipping them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV = "LIFECYCLE_TEST_POSTGRES"


def binaries() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/N/bin`` (Debian's layout), if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.parent.name)
    except ValueError:
        return 0.0


def unavailable(reason: str) -> None:
    """Skip, or fail under CI (where PostgreSQL must be there: ``.ci/run`` installs it)."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason} (set {ENV}=<dsn> or install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


@contextlib.contextmanager
def start_cluster() -> Iterator[str]:
    """A running private cluster; yields the DSN of its ``postgres`` database."""
    given = os.environ.get(ENV)
    if given:
        yield given
        return
    bin_dir = binaries()
    if bin_dir is None:
        unavailable("no /usr/lib/postgresql/*/bin/initdb")
        return  # unreachable: skip and fail raise
    owner = "postgres" if os.geteuid() == 0 else None
    if owner and shutil.which("runuser") is None:
        unavailable("running as root without runuser (initdb refuses root)")
    root = Path(tempfile.mkdtemp(prefix="lifecycle-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if owner:
        shutil.chown(root, owner)
        shutil.chown(sockets, owner)
    port = _free_port()
    log = root / "server.log"
    try:
        subprocess.run(
            _as_owner(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
                owner,
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_owner(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                owner,
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"the test cluster did not start: {exc} {detail.decode(errors='replace')}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], owner),
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)
