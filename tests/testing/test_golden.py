"""Golden histories: replaying a directory of recorded logs, one report (and one test) per
history, with the first divergence named by file, line, state and fact.

``golden/`` holds a small set recorded with the run service: a Qualytics export (two runs, one
with containers and the Warning indicator, one aborted) and bare-fact files of Domino and
Datatailr runs.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle.testing._golden import (
    HistoryReport,
    assert_replays,
    golden_params,
    replay_histories,
)

GOLDEN = Path(__file__).parent / "golden"


# The way a project checks its recorded histories in CI: one test per history.
@pytest.mark.parametrize("history", golden_params(GOLDEN))
def test_recorded_history_replays(history: HistoryReport) -> None:
    view = history.check()
    assert view.terminal


def test_reports_name_each_history_and_its_view() -> None:
    reports = {r.id: r for r in replay_histories(GOLDEN)}
    assert set(reports) == {
        "bare/datatailr-build-failed.jsonl",
        "bare/datatailr-out-of-memory.jsonl",
        "bare/domino-stopped.jsonl",
        "bare/domino-succeeded.jsonl",
        "qualytics-export.jsonl#run-1",
        "qualytics-export.jsonl#run-2",
    }
    states = {name: r.check().state for name, r in reports.items()}
    assert states["bare/datatailr-build-failed.jsonl"] == "Created"
    assert states["bare/datatailr-out-of-memory.jsonl"] == "Out of Memory"
    assert states["bare/domino-stopped.jsonl"] == "Stopped"
    assert states["qualytics-export.jsonl#run-2"] == "Aborted"
    profiled = reports["qualytics-export.jsonl#run-1"].check()
    assert (profiled.state, profiled.warning) == ("Success", True)
    assert profiled.containers["customers"].state == "Failure"


def test_a_dialect_edit_that_rejects_a_recorded_history_is_reported() -> None:
    """Another dialect stands in for an edited one: Domino builds only after Preparing, so the
    recorded Datatailr build failure diverges at its second line."""
    report = replay_histories(GOLDEN / "bare" / "datatailr-build-failed.jsonl", "domino")
    (only,) = report
    assert not only.ok
    assert only.divergence is not None
    assert (only.divergence.line, only.divergence.state, only.divergence.fact) == (
        2,
        "Queued",
        "BuildStarted",
    )
    assert only.problem().startswith(f"{GOLDEN / 'bare' / 'datatailr-build-failed.jsonl'}:2:")
    with pytest.raises(AssertionError, match=r"BuildStarted is not accepted in state 'Queued'"):
        only.check()


def _write_facts(path: Path, facts: list[ev.Fact]) -> None:
    path.write_bytes(b"".join(msgspec.json.encode(f) + b"\n" for f in facts))


def test_divergence_and_corrupt_lines_are_reports_not_crashes(tmp_path: Path) -> None:
    req = ev.Requested(dialect="qualytics", operation="sync")
    _write_facts(tmp_path / "good.jsonl", [req, ev.ExecutionStarted(), ev.ExecutionSucceeded()])
    _write_facts(tmp_path / "skips.jsonl", [req, ev.ExecutionSucceeded()])  # Queued → Success
    (tmp_path / "torn.jsonl").write_bytes(msgspec.json.encode(req) + b'\n{"type": "Execu\n')
    (tmp_path / "notes.txt").write_text("not a log: ignored")
    reports = {r.id: r for r in replay_histories(tmp_path, "qualytics")}
    assert set(reports) == {"good.jsonl", "skips.jsonl", "torn.jsonl"}
    assert reports["good.jsonl"].ok
    skips = reports["skips.jsonl"]
    assert skips.divergence is not None
    assert (skips.divergence.line, skips.divergence.state, skips.divergence.fact) == (
        2,
        "Queued",
        "ExecutionSucceeded",
    )
    assert skips.view is not None and skips.view.state == "Queued"  # as of just before
    torn = reports["torn.jsonl"]
    assert torn.corrupt is not None and torn.corrupt.line == 2
    assert torn.run_id is None and not torn.ok
    assert "torn.jsonl:2: cannot be read" in torn.problem()

    with pytest.raises(AssertionError) as caught:
        assert_replays(tmp_path, "qualytics")
    message = str(caught.value)
    assert "2 of 3 histories do not replay" in message
    assert "skips.jsonl:2: ExecutionSucceeded is not accepted in state 'Queued'" in message


def test_an_export_of_a_store_replays(tmp_path: Path) -> None:
    with lifecycle.Runs("memory://") as runs:
        run = runs.create("domino", containers=["a"])
        runs.record(run.id, [ev.ResourcesAssigned(), ev.PreparationStarted()])
        runs.abort(run.id)
        history = runs.history(run.id)
        live = runs.get(run.id)
    (tmp_path / "export.jsonl").write_bytes(
        b"".join(ev.encode_recorded_json(r) + b"\n" for r in history)
    )
    (report,) = assert_replays(tmp_path)
    assert report.check() == live


def test_golden_params_are_pytest_params_named_after_histories() -> None:
    params = golden_params(GOLDEN, "domino")
    by_id = {p.id: p.values[0] for p in params}
    good, bad = by_id["bare/domino-succeeded.jsonl"], by_id["qualytics-export.jsonl#run-1"]
    assert isinstance(good, HistoryReport) and good.ok
    assert isinstance(bad, HistoryReport) and not bad.ok


def test_missing_or_empty_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        replay_histories(tmp_path / "nowhere")
    assert replay_histories(tmp_path) == []
    with pytest.raises(AssertionError, match="no recorded histories"):
        assert_replays(tmp_path)
