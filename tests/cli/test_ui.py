"""``lifecycle ui``: serves the dashboard, prints the address with its token, says which extra
is missing, and refuses a store that is not there — in a subprocess, as users start it."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from lifecycle._cli._app import cli as root

from ._support import Histories, cli, command


def test_the_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lifecycle._ui", None)  # as if starlette were not installed
    result = CliRunner().invoke(root, ["ui", "--store", "memory://"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "pip install 'lifecycle[ui]'" in lines[0]


def test_a_missing_store_is_one_line(tmp_path: Path) -> None:
    result = cli("ui", "--store", f"sqlite:///{tmp_path / 'nope.db'}", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no store at" in result.stderr


@pytest.mark.slow
def test_it_serves_and_prints_the_address(recorded: tuple[str, Histories]) -> None:
    url, _ = recorded
    env = {k: v for k, v in os.environ.items() if k != "LIFECYCLE_STORE"}
    env["LIFECYCLE_UI_TOKEN"] = "cli-token-0123456789"
    with subprocess.Popen(
        [*command(), "ui", "--store", url, "--port", "0", "--read-only"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as server:
        try:
            assert server.stderr is not None
            line = server.stderr.readline()
            assert "(read-only)" in line
            address = line.rsplit("open ", 1)[1].strip()
            parts = urlsplit(address)
            assert parts.hostname == "127.0.0.1"  # the default: this machine only
            assert parts.query == "token=cli-token-0123456789"
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            conn.request("GET", "/")
            refused = conn.getresponse()
            refused.read()
            assert refused.status == 401
            conn.request("GET", f"/?{parts.query}")
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 303
            cookie = answer.getheader("set-cookie", "").split(";")[0]
            conn.request("GET", "/", headers={"Cookie": cookie})
            page = conn.getresponse()
            assert page.status == 200
            assert "numbers" in page.read().decode()
            conn.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
