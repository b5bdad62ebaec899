"""A damaged SQLite store through the real console script (#11.3): ``replay``, ``export`` and
``rebuild`` either give the complete log (the damage missed what they read) or exit non-zero with
one ``error:`` line saying the file is damaged — never a traceback, never part of the log as if
it were whole.

The campaign: a populated store, checkpointed into its main file; copies of it with one page of
the ``events`` table overwritten (random bytes or zeros, the whole page or a run of bytes in
it), at pages and offsets drawn from fixed seeds.
"""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.cli._support import cli, record_histories

PAGE = 4096
SEEDS = range(3)
MODES = ("random page", "zero page", "random bytes", "zero bytes")


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[int], dict[str, str]]:
    """The populated store, the pages of its ``events`` table, and what the commands print."""
    path = tmp_path_factory.mktemp("damage") / "runs.db"
    url = f"sqlite:///{path}"
    record_histories(url)
    record_histories(url)
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert db.execute("PRAGMA page_size").fetchone()[0] == PAGE
        try:
            pages = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = 'events'")]
        except sqlite3.OperationalError:
            pytest.skip("this SQLite has no dbstat table to find the events pages")
    assert len(pages) > 10
    whole = {"replay": cli("replay", url).stdout, "export": cli("export", store=url).stdout}
    return path, pages, whole


def damage(source: Path, target: Path, pages: list[int], seed: int, mode: str) -> None:
    rnd = random.Random(f"{seed} {mode}")
    shutil.copy(source, target)
    offset, size = 0, PAGE
    if mode.endswith("bytes"):
        offset, size = rnd.randrange(8, PAGE - 100), rnd.randrange(8, 96)
    data = bytes(size) if mode.startswith("zero") else rnd.randbytes(size)
    with open(target, "r+b") as f:
        f.seek((rnd.choice(pages) - 1) * PAGE + offset)
        f.write(data)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", SEEDS)
def test_a_damaged_store_gives_the_whole_log_or_one_error(
    store: tuple[Path, list[int], dict[str, str]], tmp_path: Path, seed: int, mode: str
) -> None:
    source, pages, whole = store
    path = tmp_path / "damaged.db"
    damage(source, path, pages, seed, mode)
    url = f"sqlite:///{path}"
    complete = True
    for command in (["replay", url], ["export"], ["rebuild", "--no-progress"]):
        result = cli(*command, store=url)
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 0:
            if command[0] in whole:
                assert result.stdout == whole[command[0]], f"{command[0]} gave part of the log"
            else:
                assert complete, "rebuild read a log that export could not read whole"
            continue
        complete = False
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stderr
        assert "damaged" in errors[0], errors[0]
        assert result.returncode == 1


def test_check_says_a_whole_store_is_whole(store: tuple[Path, list[int], dict[str, str]]) -> None:
    source, _, _ = store
    result = cli("check", store=f"sqlite:///{source}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("streams checked)")
    assert ": ok (" in result.stdout


@pytest.mark.parametrize("mode", MODES)
def test_check_reports_every_damage_the_campaign_makes(
    store: tuple[Path, list[int], dict[str, str]], tmp_path: Path, mode: str
) -> None:
    """What a read may miss (the damage is not where it looks), ``check`` finds: SQLite's
    quick_check of every page, and the scan of the whole log."""
    source, pages, _ = store
    path = tmp_path / "damaged.db"
    damage(source, path, pages, 0, mode)
    result = cli("check", store=f"sqlite:///{path}")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stdout
    assert result.stdout.strip()  # the problems, one a line
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert re.fullmatch(
        rf"error: {re.escape(str(path))}: the store file is damaged \(\d+ .*", errors[0]
    )


def test_check_only_checks_sqlite_files(tmp_path: Path) -> None:
    result = cli("check", store="memory://")
    assert result.returncode == 1
    assert "only a sqlite:/// store has a file to check" in result.stderr
    missing = cli("check", store=f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 1 and "no store at" in missing.stderr
