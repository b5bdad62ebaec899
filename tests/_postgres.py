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
import uuid
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


class Cluster:
    """A private cluster in ``root``: ``dsn`` of its ``postgres`` database; ``stop`` (``-m
    immediate``: as a crash) / ``start`` / ``restart`` it, as the connection-loss tests do."""

    def __init__(self, bin_dir: Path, root: Path, owner: str | None) -> None:
        self.bin_dir, self.root, self.owner = bin_dir, root, owner
        self.data, self.log = root / "data", root / "server.log"
        self.port = _free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = 90) -> None:
        subprocess.run(
            _as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args], self.owner),
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def init(self) -> None:
        subprocess.run(
            _as_owner(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
                self.owner,
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root / 'sockets'} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._pg_ctl("-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._pg_ctl("-m", mode, "-w", "stop", timeout=60)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """A private cluster of this caller's own (a test that stops and restarts its server)."""
    bin_dir = binaries()
    if bin_dir is None:
        unavailable("no /usr/lib/postgresql/*/bin/initdb")
        raise AssertionError("unreachable")  # skip and fail raise
    owner = "postgres" if os.geteuid() == 0 else None
    if owner and shutil.which("runuser") is None:
        unavailable("running as root without runuser (initdb refuses root)")
    root = Path(tempfile.mkdtemp(prefix="lifecycle-pg-"))
    (root / "sockets").mkdir()
    if owner:
        shutil.chown(root, owner)
        shutil.chown(root / "sockets", owner)
    made = Cluster(bin_dir, root, owner)
    try:
        made.init()
        made.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"the test cluster did not start: {exc} {detail.decode(errors='replace')}")
    try:
        yield made
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            made.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def start_cluster() -> Iterator[str]:
    """A running private cluster (or ``LIFECYCLE_TEST_POSTGRES``); yields its DSN."""
    given = os.environ.get(ENV)
    if given:
        yield given
        return
    with cluster() as made:
        yield made.dsn


async def create_database(server: str, prefix: str = "lc") -> str:
    """The URL of a new, empty database on ``server`` (a DSN of one of its databases)."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server.rsplit("/", 1)[0] + f"/{name}"
