"""``%load_ext lifecycle`` and ``%lifecycle_runs`` in a real IPython shell, driven through the
widget's controls: filters, Details, logs, Load into a cell (a pickle after confirming), Rerun."""

from __future__ import annotations

import subprocess
import sys
import threading

import ipywidgets as w
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from lifecycle import Workflow
from lifecycle._notebook import ExplorerWidget


def _open(shell: InteractiveShell, line: str) -> ExplorerWidget:
    widget = shell.run_line_magic("lifecycle_runs", line)
    assert isinstance(widget, ExplorerWidget)
    return widget


def _rows(widget: ExplorerWidget) -> list[int]:
    """The run ids of the table's rows (8 cells a row, after the header)."""
    cells = widget.table.children[8:]
    return [int(cells[i].value.split()[0]) for i in range(0, len(cells), 8)]


def _button(widget: ExplorerWidget, run_id: int, label: str) -> w.Button:
    cells = widget.table.children[8:]
    row = _rows(widget).index(run_id)
    found = [c for c in cells[row * 8 : row * 8 + 8] if getattr(c, "description", "") == label]
    assert len(found) == 1
    return found[0]


def _pending(widget: ExplorerWidget) -> threading.Thread | None:
    """The rerun in progress (read through a call: mypy keeps no narrowing across clicks)."""
    return widget.pending


def test_importing_lifecycle_does_not_import_ipython() -> None:
    code = (
        "import sys, lifecycle\n"
        "print(sorted(m for m in ('IPython', 'ipywidgets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_magic_opens_the_explorer(shell: InteractiveShell, store: str) -> None:
    widget = _open(shell, "")  # LIFECYCLE_STORE: the default environment
    try:
        assert widget.explorer.store == store
        assert widget.workflow.options == ("(choose a workflow)", "sales")
        assert widget.table.children == ()
        widget.workflow.value = "sales"  # the dropdown
        assert _rows(widget) == [2, 1]
        assert "page 1 of 1 (2 runs)" in widget.page_label.value
    finally:
        widget.close()
    assert widget.poller is not None and not widget.poller.running


def test_name_store_and_env(
    shell: InteractiveShell, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFECYCLE_STORE", "memory://")
    widget = _open(shell, f"sales --store '{store}'")
    assert (widget.explorer.workflow, widget.environment.value) == ("sales", "store")
    widget.close()
    monkeypatch.setenv("LIFECYCLE_STORE_PROD", store)
    widget = _open(shell, "sales --env prod --page-size 1")
    assert widget.environment.options == ("default", "prod")
    assert _rows(widget) == [2]
    widget.next_button.click()
    assert _rows(widget) == [1]
    widget.environment.value = "default"  # a memory store: no workflows there
    assert widget.workflow.options == ("(choose a workflow)",)
    widget.close()
    with pytest.raises(UsageError, match="LIFECYCLE_STORE_QA"):
        shell.run_line_magic("lifecycle_runs", "--env qa")
    with pytest.raises(UsageError, match="unexpected arguments"):
        shell.run_line_magic("lifecycle_runs", "sales extra")
    with pytest.raises(UsageError, match=r"sqlite:/x\.db"):
        shell.run_line_magic("lifecycle_runs", "sales --store sqlite:/x.db")
    with pytest.raises(UsageError, match="no workflow named 'nope'"):
        shell.run_line_magic("lifecycle_runs", "nope")


def test_filters_details_logs_and_load(shell: InteractiveShell) -> None:
    widget = _open(shell, "sales")
    try:
        first_end = widget.explorer.runs[1]["end_time"]
        widget.start.value = first_end.astimezone().replace(tzinfo=None)  # naive: local time
        assert _rows(widget) == [2]
        widget.start.value = None
        assert _rows(widget) == [2, 1]

        _button(widget, 1, "Details").click()
        assert widget.run_box.layout.display == "flex"
        assert 'data-task="as_pair"' in widget.graph.value
        assert [label for label, _ in widget.tasks.options] == [
            "fetch_data",
            "calculate_total",
            "as_pair",
        ]
        assert "fetching sales" in widget.log_view.value
        widget.tasks.value = widget.tasks.options[1][1]  # calculate_total
        assert "summing 3 values" in widget.log_view.value
        widget.stream.value = "stderr"
        assert "a warning on stderr" in widget.log_view.value
        assert "returned int: <code>450</code>" in widget.preview.value

        widget.select_run(99)  # an error is shown in the widget, not raised into the kernel
        assert "UnknownRun" in widget.message.value
        assert widget.explorer.selected is not None
        assert widget.explorer.selected["run_id"] == 1  # still shown

        widget.load_button.click()
        assert shell.user_ns["result_1_calculate_total"] == 450
        assert shell.rl_next_input is not None
        assert shell.rl_next_input.endswith("\nresult_1_calculate_total")
    finally:
        widget.close()


def test_a_pickle_is_loaded_after_confirming(shell: InteractiveShell) -> None:
    widget = _open(shell, "sales")
    try:
        _button(widget, 2, "Details").click()
        widget.tasks.value = widget.tasks.options[2][1]  # as_pair: a tuple, pickled
        assert "pickled result" in widget.preview.value
        widget.load_button.click()
        assert "result_2_as_pair" not in shell.user_ns
        assert widget.pickle_box.layout.display == "flex"
        assert "runs code" in widget.pickle_warning.value
        widget.cancel_load.click()
        assert widget.pickle_box.layout.display == "none"
        assert "result_2_as_pair" not in shell.user_ns
        widget.load_button.click()
        widget.confirm_load.click()
        assert shell.user_ns["result_2_as_pair"] == (450, "a tuple is pickled")
    finally:
        widget.close()


def test_rerun_through_the_popup(shell: InteractiveShell, store: str) -> None:
    widget = _open(shell, "sales")
    try:
        _button(widget, 1, "Rerun").click()
        assert widget.rerun_popup.layout.display == "flex"
        widget.cancel_rerun.click()
        assert widget.rerun_popup.layout.display == "none"
        assert _pending(widget) is None

        _button(widget, 1, "Rerun").click()
        widget.version.value = "one"
        widget.confirm_rerun.click()
        assert "version must be an integer" in widget.message.value
        assert _pending(widget) is None

        widget.version.value = "1"
        widget.full.value = True
        widget.confirm_rerun.click()
        started = _pending(widget)
        assert started is not None
        started.join()
        new = Workflow("sales", store=store).runs(refresh=True)[0]
        assert new["original_run_id"] == 1
        assert _rows(widget) == [new["run_id"], 2, 1]
        assert widget.explorer.selected is not None
        assert widget.explorer.selected["run_id"] == new["run_id"]
        assert f"run {new['run_id']} (rerun of 1): Completed" in widget.message.value

        _button(widget, 2, "Rerun").click()
        widget.version.value = "7"  # not the code loaded here: the SDK refuses, the widget says
        widget.confirm_rerun.click()
        failed = _pending(widget)
        assert failed is not None and failed is not started
        failed.join()
        assert "version=7 is not the code loaded" in widget.message.value
        assert len(Workflow("sales", store=store).runs(refresh=True)) == 3
    finally:
        widget.close()
