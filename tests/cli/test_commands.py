"""The commands, in process (Click's runner) on a ``memory://`` store: fast checks of every
option and error path. ``test_console_script.py`` runs the real script against SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner, Result

import lifecycle
from lifecycle._cli import cli
from lifecycle._cli._base import Settings, normalise_store_url, sqlite_path

from ._support import HOSTILE, Histories, record_histories


@pytest.fixture
def store() -> tuple[lifecycle.MemoryStore, Histories]:
    memory = lifecycle.MemoryStore()
    return memory, record_histories(memory)


def run(store: lifecycle.RunStore, *args: str) -> Result:
    runner = CliRunner()
    return runner.invoke(
        cli, list(args), obj=Settings(store=store), env={"COLUMNS": "200"}, prog_name="lifecycle"
    )


def test_job_ls_groups_runs_by_name(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    memory, h = store
    result = run(memory, "job", "ls", "--json")
    assert result.exit_code == 0, result.output
    jobs = {j["name"]: j for j in json.loads(result.output)}
    assert set(jobs) == {"numbers", "hostile", "nightly", "train", "@qualytics"}
    numbers = jobs["numbers"]
    assert (numbers["dialect"], numbers["tasks"], numbers["runs"]) == ("datatailr", 3, 12)
    assert [e["run_id"] for e in numbers["history"]] == h.numbers[-10:]  # oldest first
    assert numbers["state"] == "Failed"  # the twelfth run failed
    assert jobs["nightly"]["last_run_id"] == h.rerun
    assert jobs["@qualytics"]["last_run_id"] == h.unnamed


def test_job_ls_table(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    memory, _ = store
    result = run(memory, "job", "ls")
    assert result.exit_code == 0
    line = next(ln for ln in result.output.splitlines() if ln.startswith("numbers"))
    assert "Failed" in line and "✓✗✓✓✓✗✓✓✓✗" in line


def test_job_get_shows_the_dag_and_versions(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    memory, _ = store
    detail = json.loads(run(memory, "job", "get", "numbers", "--json").output)
    assert detail["kind"] == "workflow"
    assert [t["name"] for t in detail["tasks"]] == ["my_number", "first_addition", "add_one"]
    assert detail["edges"] == [["my_number", "first_addition"], ["first_addition", "add_one"]]
    assert [(v["job_version"], v["runs"]) for v in detail["versions"]] == [(3, 2), (2, 5), (1, 5)]
    text = run(memory, "job", "get", "numbers").output
    assert "my_number → first_addition" in text
    assert "demo.get_number" in text
    plain = json.loads(run(memory, "job", "get", "nightly", "--json").output)
    assert plain["kind"] == "runs"
    assert [t["name"] for t in plain["tasks"]] == ["orders", "customers"]


def test_job_runs_filters(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    memory, h = store
    rows = json.loads(run(memory, "job", "runs", "numbers", "--limit", "3", "--json").output)
    assert [r["run_id"] for r in rows] == h.numbers[::-1][:3]
    assert (
        run(memory, "job", "runs", "numbers", "--since", "1h", "--json").output.count('"run_id"')
        == 12
    )
    old = run(memory, "job", "runs", "numbers", "--until", "2000-01-01", "--json")
    assert json.loads(old.output) == []
    none = run(memory, "job", "runs", "numbers", "--until", "2000-01-01")
    assert none.exit_code == 0 and "No runs" in none.output
    table = run(memory, "job", "runs", "nightly").output
    assert f"{h.nightly} ⚠" in table  # the Warning indicator next to the run id
    assert "ORIGINAL" in table


def test_log_read_defaults_to_the_latest_run(
    store: tuple[lifecycle.MemoryStore, Histories],
) -> None:
    memory, h = store
    result = run(memory, "log", "read", "numbers")
    assert result.exit_code == 0
    assert "add_one says hello 11" in result.output
    assert "ZeroDivisionError" in result.output
    lines = run(memory, "log", "read", "numbers", "--run", str(h.numbers[0]), "--json")
    entries = [json.loads(ln) for ln in lines.output.splitlines()]
    assert [e["task"] for e in entries] == ["my_number", "first_addition", "add_one"]
    assert {e["run_id"] for e in entries} == {h.numbers[0]}


def test_log_read_task_stderr_and_lines(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    memory, h = store
    last = str(h.numbers[-1])
    out = run(memory, "log", "read", "numbers", "--run", last, "--task", "add_one", "--stderr")
    assert "says hello" not in out.output
    assert "Traceback" in out.output and "ZeroDivisionError" in out.output
    by_id = run(memory, "log", "read", "numbers", "--run", last, "--task", "o@1", "--json")
    assert {json.loads(ln)["task"] for ln in by_id.output.splitlines()} == {"add_one"}
    tail = run(memory, "log", "read", "numbers", "--run", last, "-n", "1", "--json")
    assert len(tail.output.splitlines()) == 1


def test_log_text_is_data(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    memory, _ = store
    result = run(memory, "log", "read", "hostile")
    assert "[bold red]x[/bold red]" in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\r" not in result.output and "\u202e" not in result.output
    assert "\\x1b]0;pwned\\x07" in result.output
    exact = run(memory, "log", "read", "hostile", "--json")
    assert json.loads(exact.output)["text"] == HOSTILE  # scripts get the exact text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["job", "get", "nope"], "no job named 'nope'"),
        (["job", "runs", "nope"], "no job named 'nope'"),
        (["log", "read", "nope"], "no job named 'nope'"),
        (["log", "read", "numbers", "--run", "9999"], "no run 9999"),
        (["log", "read", "numbers", "--task", "nope"], "has no task 'nope'"),
        (["abort", "9999"], "no run 9999"),
        (["rerun", "9999"], "no run 9999"),
        (["diagram", "nope"], "no dialect named 'nope'"),
    ],
)
def test_not_found_is_one_line_and_exit_1(
    store: tuple[lifecycle.MemoryStore, Histories], args: list[str], message: str
) -> None:
    memory, _ = store
    result = run(memory, *args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_a_run_of_another_job_is_not_found(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    memory, h = store
    result = run(memory, "log", "read", "numbers", "--run", str(h.nightly))
    assert result.exit_code == 1
    assert "is not a run of job 'numbers'" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["job", "runs"],
        ["job", "runs", "numbers", "--since", "yesterday-ish"],
        ["job", "runs", "numbers", "--limit", "0"],
        ["log", "read", "numbers", "--run", "x"],
        ["rerun", "1", "--from-task", "a", "--full"],
        ["diagram", "domino", "--format", "svg"],
        ["nope"],
    ],
)
def test_usage_errors_exit_2(
    store: tuple[lifecycle.MemoryStore, Histories], args: list[str]
) -> None:
    memory, _ = store
    assert run(memory, *args).exit_code == 2


def test_abort_then_abort_again(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    memory, h = store
    first = run(memory, "abort", str(h.active))
    assert first.exit_code == 0
    assert "Running" in first.output and "Stopped" in first.output
    again = run(memory, "abort", str(h.active))
    assert again.exit_code == 1
    assert "already ended (Stopped)" in again.output


def test_rerun_of_a_run_that_is_not_a_workflow(
    store: tuple[lifecycle.MemoryStore, Histories],
) -> None:
    memory, h = store
    result = run(memory, "rerun", str(h.nightly), "--json")
    assert result.exit_code == 0
    view = json.loads(result.output)
    assert (view["original_run_id"], view["mode"], view["name"]) == (h.nightly, "rerun", "nightly")
    assert run(memory, "rerun", str(h.nightly), "--full").exit_code == 2


def test_export_then_replay(store: tuple[lifecycle.MemoryStore, Histories], tmp_path: Path) -> None:
    memory, h = store
    out = tmp_path / "log.jsonl"
    assert run(memory, "export", "--output", str(out)).exit_code == 0
    result = run(memory, "replay", str(out), "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["divergences"] == []
    assert report["views"][str(h.nightly)]["warning"] is True
    early = json.loads(run(memory, "replay", str(out), "--at", "5", "--json").output)
    assert early["position"] == 5 and list(early["views"]) == [str(h.numbers[0])]


def test_replay_names_the_corrupt_line(tmp_path: Path) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_text('{"type": "Requested", "dialect": "qualytics", "operation": "sync"}\nnot json\n')
    result = run(lifecycle.MemoryStore(), "replay", str(log))
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "bad.jsonl:2" in result.output


def test_replay_reports_the_first_invalid_fact(tmp_path: Path) -> None:
    log = tmp_path / "foreign.jsonl"
    facts = [
        {"type": "Requested", "dialect": "qualytics", "operation": "sync"},
        {"type": "ExecutionSucceeded"},  # Queued straight to Success: not allowed
    ]
    log.write_text("".join(json.dumps(f) + "\n" for f in facts))
    result = run(lifecycle.MemoryStore(), "replay", str(log))
    assert result.exit_code == 1
    assert "ExecutionSucceeded not accepted in state 'Queued'" in result.output
    assert "line 2" in result.output


def test_diagram_formats() -> None:
    memory = lifecycle.MemoryStore()
    mermaid = run(memory, "diagram", "qualytics")
    assert mermaid.output == lifecycle.dialect("qualytics").to_mermaid()
    container = run(memory, "diagram", "qualytics", "--containers")
    assert container.output == lifecycle.dialect("qualytics").containers.to_mermaid()  # type: ignore[union-attr]
    spec = json.loads(run(memory, "diagram", "domino", "--json").output)
    assert {s["name"] for s in spec["states"]} >= {"Queued", "Succeeded", "Stopped", "Error"}
    table = run(memory, "diagram", "datatailr", "--format", "table").output
    assert "Out of Memory" in table
    listing = run(memory, "diagram").output
    assert {"datatailr", "domino", "qualytics"} <= {ln.split()[0] for ln in listing.splitlines()}


def test_global_json_flag(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    memory, _ = store
    result = CliRunner().invoke(cli, ["--json", "job", "ls"], obj=Settings(store=memory))
    assert isinstance(json.loads(result.output), list)


def test_json_is_the_documented_shape(store: tuple[lifecycle.MemoryStore, Histories]) -> None:
    from lifecycle._cli._model import JobRow

    memory, _ = store
    rows = msgspec.json.decode(run(memory, "job", "ls", "--json").output, type=list[JobRow])
    assert rows[0].history


def test_store_urls() -> None:
    assert normalise_store_url("memory://") == "memory://"
    assert normalise_store_url("/tmp/x.db") == "sqlite:////tmp/x.db"
    assert sqlite_path("sqlite:////tmp/x.db") == Path("/tmp/x.db")
    assert sqlite_path("sqlite:///runs.db") == Path("runs.db")
    assert sqlite_path("memory://") is None


def test_help_lists_the_commands_and_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"], prog_name="lifecycle")
    assert result.exit_code == 0
    for word in ("job", "log", "run", "rerun", "abort", "export", "replay", "diagram", "demo"):
        assert f"  {word} " in result.output
    assert "Exit codes" in result.output and "LIFECYCLE_STORE" in result.output


@pytest.mark.parametrize(
    "configured", [None, "sqlite:///rel.db", "memory://", "~/x/runs.db", "a b%.db"]
)
def test_default_store_url_is_the_sdks(
    configured: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from lifecycle._cli._base import default_store_url
    from lifecycle._workflow._store import default_store_url as sdk_default_store_url

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    if configured is None:
        monkeypatch.delenv("LIFECYCLE_STORE", raising=False)
    else:
        monkeypatch.setenv("LIFECYCLE_STORE", configured)
    assert default_store_url() == sdk_default_store_url()
