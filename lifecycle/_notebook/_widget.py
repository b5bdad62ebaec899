"""``ExplorerWidget``: the ipywidgets view of an :class:`~._model.Explorer` (``%lifecycle_runs``).

A thin layer: every button calls one method of the model and then redraws from the model's
state, so what the widget shows is what the model (and so the SDK) returns. Layout, top to
bottom: environment and workflow dropdowns, the date and time range, the last runs strip, the
run table (a page of 25, with Details and Rerun on each row, Prev / Next below), the rerun
popup (version, full, Confirm / Cancel), and the selected run: its DAG, a task picker, the
task's logs (stdout / stderr) and its result (preview, Load into a cell; a pickle asks for
confirmation first, with a warning).

Reruns run in a background thread so the kernel keeps answering; a :class:`~._refresh.Poller`
refreshes while a run shown is active and is stopped when the widget is closed. One lock keeps
the model to one caller at a time. Text from the store is escaped before it becomes HTML.
"""

from __future__ import annotations

import datetime as _dt
import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from lifecycle._draw import colour, escape

from ._model import ConfirmationRequired, Explorer, outcome
from ._refresh import Poller

__all__ = ["ExplorerWidget"]

_PREVIEW = 2000  # characters of a result's repr shown before it is loaded
_NO_WORKFLOW = "(choose a workflow)"
_COLUMNS = ["run", "state", "start", "end", "version", "rerun of", "", ""]


def _when(value: _dt.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _badge(state: str | None) -> str:
    fill = colour(outcome(state), pending=state is None)
    return (
        f'<span style="background:{fill};color:#fff;border-radius:4px;padding:1px 6px">'
        f"{escape(state or 'not run')}</span>"
    )


class ExplorerWidget(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The explorer widget over ``explorer``; ``refresh_interval`` seconds between refreshes
    of active runs (``None``: no background refresh)."""

    def __init__(self, explorer: Explorer, *, refresh_interval: float | None = 2.0) -> None:
        self.poller: Poller | None = None
        self.explorer = explorer
        self.lock = threading.RLock()
        self.pending: threading.Thread | None = None  # the rerun in progress
        self.rerun_of: int | None = None  # the run the rerun popup is open for
        self.task: str | None = None  # the id of the task shown

        self.environment = w.Dropdown(description="Environment", options=[])
        self.workflow = w.Dropdown(description="Workflow", options=[])
        self.start = w.NaiveDatetimePicker(description="From")
        self.end = w.NaiveDatetimePicker(description="To")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.message = w.HTML()
        self.strip = w.HTML()
        self.table = w.GridBox(
            layout=w.Layout(grid_template_columns="repeat(8, max-content)", grid_gap="2px 14px")
        )
        self.prev_button = w.Button(description="Prev", icon="arrow-left")
        self.next_button = w.Button(description="Next", icon="arrow-right")
        self.page_label = w.HTML()
        self.version = w.Text(description="Version", placeholder="the code loaded now")
        self.full = w.Checkbox(description="full (run every task again)", value=False)
        self.confirm_rerun = w.Button(description="Rerun", button_style="warning")
        self.cancel_rerun = w.Button(description="Cancel")
        self.rerun_title = w.HTML()
        self.rerun_popup = w.VBox(
            [
                self.rerun_title,
                w.HBox([self.version, self.full]),
                w.HBox([self.confirm_rerun, self.cancel_rerun]),
            ],
            layout=w.Layout(display="none", border="2px solid #f9a825", padding="6px"),
        )
        self.run_title = w.HTML()
        self.graph = w.HTML()
        self.tasks = w.Dropdown(description="Task", options=[])
        self.stream = w.ToggleButtons(options=["stdout", "stderr"], value="stdout")
        self.log_view = w.HTML()
        self.preview = w.HTML()
        self.load_button = w.Button(description="Load into a cell", icon="download")
        self.pickle_warning = w.HTML()
        self.confirm_load = w.Button(description="Load the pickle", button_style="danger")
        self.cancel_load = w.Button(description="Cancel")
        self.pickle_box = w.VBox(
            [self.pickle_warning, w.HBox([self.confirm_load, self.cancel_load])],
            layout=w.Layout(display="none"),
        )
        self.run_box = w.VBox(
            [
                self.run_title,
                self.graph,
                w.HBox([self.tasks, self.stream]),
                self.log_view,
                self.preview,
                self.load_button,
                self.pickle_box,
            ],
            layout=w.Layout(display="none"),
        )
        super().__init__(
            [
                w.HTML("<b>lifecycle runs</b>"),
                w.HBox([self.environment, self.workflow, self.refresh_button]),
                w.HBox([self.start, self.end]),
                self.message,
                self.strip,
                self.table,
                w.HBox([self.prev_button, self.page_label, self.next_button]),
                self.rerun_popup,
                self.run_box,
            ]
        )
        self._quiet = False  # set while the view sets its own controls
        self.environment.observe(self._on_environment, names="value")
        self.workflow.observe(self._on_workflow, names="value")
        self.start.observe(self._on_range, names="value")
        self.end.observe(self._on_range, names="value")
        self.tasks.observe(self._on_task, names="value")
        self.stream.observe(self._on_task, names="value")
        self.refresh_button.on_click(lambda _: self._do(explorer.refresh))
        self.prev_button.on_click(lambda _: self._do(explorer.prev_page))
        self.next_button.on_click(lambda _: self._do(explorer.next_page))
        self.confirm_rerun.on_click(lambda _: self.start_rerun())
        self.cancel_rerun.on_click(lambda _: self.close_rerun())
        self.load_button.on_click(lambda _: self.load(confirm=False))
        self.confirm_load.on_click(lambda _: self.load(confirm=True))
        self.cancel_load.on_click(lambda _: self._show_pickle(None))
        self.render()
        if refresh_interval is not None:
            self.poller = Poller(self.tick, refresh_interval, on_error=self._error)
            self.poller.start()

    # -- plumbing -----------------------------------------------------------------------------

    def _say(self, text: str, *, error: bool = False) -> None:
        style = "color:#c62828" if error else "color:#555"
        self.message.value = f'<span style="{style}">{html.escape(text)}</span>' if text else ""

    def _error(self, exc: BaseException) -> None:
        self._say(f"{type(exc).__name__}: {exc}", error=True)

    def _do(self, action: Callable[[], object]) -> None:
        """Call the model, then redraw; a message the action returns is shown, and an error is
        shown rather than raised into the kernel's log."""
        with self.lock:
            try:
                said = action()
            except Exception as exc:
                self._redraw()
                self._error(exc)
                return
            if self._redraw():
                self._say(said if isinstance(said, str) else "")

    def _redraw(self) -> bool:
        """``render``; an error (e.g. the store went away) is shown in the widget rather than
        raised into the kernel's log, and ``False`` returned."""
        try:
            self.render()
        except Exception as exc:
            self._error(exc)
            return False
        return True

    def tick(self) -> None:
        """One background refresh: fetch again only while a run shown is active."""
        if not self.explorer.active or not self.lock.acquire(blocking=False):
            return
        try:
            self.explorer.refresh()
            self.render()
        finally:
            self.lock.release()

    def close(self) -> None:
        """Stop the background refresh, then close the widget."""
        poller = getattr(self, "poller", None)  # None if __init__ failed early
        if poller is not None:
            poller.stop()
        super().close()

    # -- events -------------------------------------------------------------------------------

    def _on_environment(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._do(lambda: self.explorer.select_environment(change["new"]))

    def _on_workflow(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            new = None if change["new"] == _NO_WORKFLOW else change["new"]
            self._do(lambda: self.explorer.select_workflow(new))

    def _on_range(self, _change: dict[str, Any]) -> None:
        if not self._quiet:
            self._do(lambda: self.explorer.set_range(self.start.value, self.end.value))

    def _on_task(self, _change: dict[str, Any]) -> None:
        if not self._quiet:
            self.task = self.tasks.value
            self._do(lambda: None)

    def select_run(self, run_id: int) -> None:
        """Show run ``run_id``: its graph, tasks, logs and results (the row's Details)."""

        def select() -> None:
            self.explorer.select_run(run_id)
            self.task = None  # its first task (only once the run is there)

        self._do(select)

    def open_rerun(self, run_id: int) -> None:
        """Open the rerun popup for run ``run_id`` (the row's Rerun)."""
        self.rerun_of = run_id
        self.version.value, self.full.value = "", False
        self.rerun_title.value = (
            f"<b>Rerun run {run_id}</b> of {escape(self.explorer.workflow)}: version (an integer, "
            "or empty for the code loaded now) and full"
        )
        self.rerun_popup.layout.display = "flex"

    def close_rerun(self) -> None:
        """Close the rerun popup without rerunning."""
        self.rerun_of = None
        self.rerun_popup.layout.display = "none"

    def start_rerun(self) -> None:
        """Confirm the popup: rerun in a background thread (``pending``), then redraw."""
        run_id = self.rerun_of
        if run_id is None or (self.pending is not None and self.pending.is_alive()):
            return
        text = self.version.value.strip()
        try:
            version = int(text) if text else None
        except ValueError:
            self._say(f"version must be an integer, not {text!r}", error=True)
            return
        full = bool(self.full.value)
        self.close_rerun()
        self._say(f"rerunning run {run_id}" + (" (full)" if full else "") + "…")

        def rerun() -> None:
            # unlocked while the tasks run, so the widget keeps answering; then one redraw
            try:
                entry = self.explorer.rerun(run_id, version=version, full=full, refresh=False)
            except Exception as exc:
                self._error(exc)
                return
            self._do(lambda: self._report(entry))

        self.pending = threading.Thread(target=rerun, name="lifecycle-explorer-rerun", daemon=True)
        self.pending.start()

    def _report(self, entry: dict[str, Any]) -> str:
        self.task = None
        self.explorer.refresh()
        self.explorer.select_run(entry["run_id"])
        return f"run {entry['run_id']} (rerun of {entry['original_run_id']}): {entry['state']}"

    def load(self, *, confirm: bool) -> None:
        """Load the task shown into the namespace (Load into a cell; Load the pickle)."""
        details = self.explorer.selected
        if details is None or self.task is None:
            return
        with self.lock:
            try:
                loaded = self.explorer.load_result(details["run_id"], self.task, confirm=confirm)
            except ConfirmationRequired as exc:
                self._show_pickle(str(exc))
                return
            except Exception as exc:
                self._error(exc)
                return
        self._show_pickle(None)
        self._say(
            f"loaded into {loaded.name} ({type(loaded.value).__name__}); the next cell reads it:"
            f" {loaded.code.splitlines()[-1]}"
        )

    def _show_pickle(self, warning: str | None) -> None:
        self.pickle_warning.value = (
            f'<span style="color:#c62828">⚠ {html.escape(warning)}</span>' if warning else ""
        )
        self.pickle_box.layout.display = "flex" if warning else "none"

    # -- drawing ------------------------------------------------------------------------------

    def render(self) -> None:
        """Redraw every part from the model."""
        ex = self.explorer
        self._quiet = True
        try:
            self.environment.options = list(ex.environments)
            self.environment.value = ex.environment
            self.workflow.options = [_NO_WORKFLOW, *ex.workflows()]
            self.workflow.value = ex.workflow or _NO_WORKFLOW
            self._render_runs()
            self._render_run()
        finally:
            self._quiet = False

    def _render_runs(self) -> None:
        ex = self.explorer
        self.strip.value = ex.strip_svg() if ex.workflow else ""
        cells: list[w.Widget] = [w.HTML(f"<b>{c}</b>") for c in _COLUMNS]
        for run in ex.page_runs:
            run_id = run["run_id"]
            details = w.Button(description="Details", layout=w.Layout(width="auto"))
            details.on_click(lambda _, r=run_id: self.select_run(r))
            rerun = w.Button(description="Rerun", layout=w.Layout(width="auto"))
            rerun.on_click(lambda _, r=run_id: self.open_rerun(r))
            rerun.disabled = outcome(run["state"]) is None  # a rerun starts from an ended run
            warning = " ⚠" if run["warning"] else ""
            cells += [
                w.HTML(f"{run_id}{warning}"),
                w.HTML(_badge(run["state"])),
                w.HTML(_when(run["start_time"])),
                w.HTML(_when(run["end_time"])),
                w.HTML(str(run["job_version"] or "")),
                w.HTML(str(run["original_run_id"] or "")),
                details,
                rerun,
            ]
        self.table.children = cells if ex.workflow else []
        total = len(ex.runs)
        self.page_label.value = f"page {ex.page + 1} of {ex.pages} ({total} runs)"
        self.prev_button.disabled = ex.page == 0
        self.next_button.disabled = ex.page >= ex.pages - 1

    def _render_run(self) -> None:
        ex = self.explorer
        details = ex.selected
        if details is None:
            self.run_box.layout.display = "none"
            return
        self.run_box.layout.display = "flex"
        run_id = details["run_id"]
        self.run_title.value = (
            f"<b>Run {run_id}</b> {_badge(details['state'])} version "
            f"{details['job_version'] or '?'}"
            + (f", rerun of {details['original_run_id']}" if details["original_run_id"] else "")
        )
        self.graph.value = ex.graph_svg()
        tasks = details["tasks"]
        self.tasks.options = [(t["name"], t["id"]) for t in tasks]
        if self.task not in {t["id"] for t in tasks}:
            self.task = tasks[0]["id"] if tasks else None
        self.tasks.value = self.task
        if self.task is None:
            self.log_view.value = self.preview.value = ""
            return
        entry = ex.task(run_id, self.task)
        text = ex.logs(run_id, self.task, stderr=self.stream.value == "stderr")
        self.log_view.value = (
            '<pre style="max-height:16em;overflow:auto;background:#f5f5f5;padding:4px">'
            f"{escape(text) or '(nothing)'}</pre>"
        )
        self.load_button.disabled = not entry["has_result"]
        self.preview.value = self._preview(run_id, entry)

    def _preview(self, run_id: int, entry: dict[str, Any]) -> str:
        state = f"{escape(entry['name'])} {_badge(entry['state'])}"
        if not entry["has_result"]:
            return f"{state}: no result stored"
        if entry["result_codec"] == "pickle":
            return f"{state}: a pickled result (shown once loaded, after a warning)"
        value = self.explorer.result(run_id, entry["id"])
        shown = repr(value)
        if len(shown) > _PREVIEW:
            shown = shown[:_PREVIEW] + "…"
        return f"{state} returned {escape(type(value).__name__)}: <code>{escape(shown)}</code>"
