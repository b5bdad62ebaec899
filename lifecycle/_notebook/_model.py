"""``Explorer``: what the results explorer shows and does, as plain Python (no widgets).

The ``%lifecycle_runs`` widget is a thin view over one :class:`Explorer`; tests and scripts drive
the same object. Every figure comes from the workflow SDK (:class:`lifecycle.Workflow`:
``runs``, ``run_details``, ``logs``, ``result``, ``rerun``) or, for the list of workflows, from the
CLI's read model of jobs (``lifecycle job ls``): the explorer runs no queries of its own, so it
shows what the SDK returns.

Loading a result binds it to a variable in the user's namespace and offers a code cell that
reads it. A result stored as a pickle is code: :meth:`Explorer.load_result` refuses it with
:class:`ConfirmationRequired` unless ``confirm=True`` (the widget's confirm button).
"""

from __future__ import annotations

import datetime as _dt
import keyword
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from lifecycle import _draw
from lifecycle._cli._model import job_rows
from lifecycle._dialects import dialect
from lifecycle._errors import LifecycleError
from lifecycle._workflow._environments import DEFAULT, environments, unknown_environment
from lifecycle._workflow._history import OPERATION, Workflow
from lifecycle._workflow._store import call_blocking, store_url

__all__ = ["ConfirmationRequired", "Explorer", "Loaded", "outcome"]

PAGE_SIZE = 25
_DEPLOY = "deploy"  # a deployed workflow's job may show its deploy run last


class ConfirmationRequired(LifecycleError):
    """The result is a pickle: unpickling runs code from the store. Load it only from a store you
    trust, with ``load_result(..., confirm=True)``."""


@dataclass(frozen=True)
class Loaded:
    """A result bound in the user's namespace: the variable, the value, the cell offered."""

    name: str
    value: Any
    code: str


def outcome(state: str | None) -> str | None:
    """The outcome of a workflow run's (or task's) state: ``succeeded``, ``failed``,
    ``cancelled``, or ``None`` while active or unknown."""
    found = dialect("datatailr").states.get(state or "")
    return found.outcome if found is not None else None


def variable_name(run_id: int, task: str) -> str:
    """A Python identifier for the result of ``task`` of run ``run_id``:
    ``result_29_fetch_data``."""
    return f"result_{run_id}_" + re.sub(r"\W", "_", task)


class Explorer:
    """The explorer's state: environment, workflow, time range, page, selected run.

    ``store`` (a URL or a path) adds an environment named ``environment`` (``"store"`` if not
    given) and selects it; otherwise ``environment`` picks one of :func:`environments`.
    ``namespace`` receives loaded results (default: a new dict); ``set_next_input`` is offered
    the code cell that reads one (IPython's ``set_next_input``)."""

    def __init__(
        self,
        workflow: str | None = None,
        *,
        environment: str | None = None,
        store: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        namespace: MutableMapping[str, Any] | None = None,
        set_next_input: Callable[[str], None] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}")
        self.environments = environments(environ)
        if store is not None:
            environment = (environment or "store").lower()
            self.environments[environment] = store_url(store)
        self.namespace: MutableMapping[str, Any] = {} if namespace is None else namespace
        self.set_next_input = set_next_input
        self.page_size = page_size
        self.environment = DEFAULT
        self.workflow: str | None = None
        self.start: _dt.datetime | None = None
        self.end: _dt.datetime | None = None
        self.page = 0
        self.selected: dict[str, Any] | None = None  # run_details of the selected run
        self._wf: Workflow | None = None
        self._workflows: list[str] | None = None
        self._runs: list[dict[str, Any]] = []
        self.select_environment(environment or DEFAULT)
        if workflow is not None:
            self.select_workflow(workflow)

    # -- choosing what to show ----------------------------------------------------------------

    @property
    def store(self) -> str:
        """The URL of the selected environment's store."""
        return self.environments[self.environment]

    def select_environment(self, name: str) -> None:
        """Show environment ``name``; the workflow stays selected if the store has it. Raises
        ``ValueError`` (naming the variable to set) for an environment not configured."""
        key = name.lower()
        if key not in self.environments:
            raise unknown_environment(name, self.environments)
        self.environment = key
        self._workflows = None
        keep = self.workflow
        self.workflow, self._wf, self._runs, self.selected = None, None, [], None
        if keep is not None and keep in self.workflows():
            self.select_workflow(keep)

    def workflows(self) -> list[str]:
        """The names of the workflows in the store (the CLI's ``job ls``, workflows only)."""
        if self._workflows is None:
            rows = call_blocking(self.store, job_rows)
            self._workflows = [
                r.name
                for r in rows
                if r.dialect == "datatailr" and r.operation in (OPERATION, _DEPLOY)
            ]
        return self._workflows

    def select_workflow(self, name: str | None) -> None:
        """Show the runs of workflow ``name`` (none with ``None``). Raises ``ValueError`` for a
        workflow the store does not have."""
        self.selected, self.page, self._runs = None, 0, []
        if name is None:
            self.workflow, self._wf = None, None
            return
        self._wf = Workflow(name, get_existing=True, store=self.store)
        self.workflow = name
        self._runs = self._wf.runs(self.start, self.end, refresh=True)

    def set_range(self, start: _dt.datetime | None, end: _dt.datetime | None) -> None:
        """Only runs that started within ``[start, end]`` (either may be ``None``; naive times
        are local time), from page one."""
        if start is not None and end is not None and end < start:
            raise ValueError(f"the range ends ({end}) before it starts ({start})")
        self.start, self.end, self.page = start, end, 0
        if self._wf is not None:
            self._runs = self._wf.runs(start, end)

    def refresh(self) -> None:
        """Fetch the runs (and the selected run) again: runs started or ended since show."""
        self._workflows = None
        if self._wf is not None:
            self._runs = self._wf.runs(self.start, self.end, refresh=True)
            self.page = min(self.page, self.pages - 1)
        if self.selected is not None:
            self.select_run(self.selected["run_id"])

    # -- what is shown ------------------------------------------------------------------------

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Every run in the range, newest first, as ``Workflow.runs`` returns them."""
        return list(self._runs)

    @property
    def pages(self) -> int:
        """How many pages the runs fill (at least one)."""
        return max(1, -(-len(self._runs) // self.page_size))

    @property
    def page_runs(self) -> list[dict[str, Any]]:
        """The runs of the current page."""
        first = self.page * self.page_size
        return self._runs[first : first + self.page_size]

    def next_page(self) -> None:
        """The next page of runs (stays on the last)."""
        self.page = min(self.page + 1, self.pages - 1)

    def prev_page(self) -> None:
        """The previous page of runs (stays on the first)."""
        self.page = max(self.page - 1, 0)

    @property
    def active(self) -> bool:
        """Whether a run shown (on this page, or selected) is still active: worth refreshing."""
        shown = [*self.page_runs, *([self.selected] if self.selected else [])]
        return any(outcome(r["state"]) is None for r in shown)

    def _workflow(self) -> Workflow:
        if self._wf is None:
            raise ValueError("select a workflow first")
        return self._wf

    def select_run(self, run_id: int) -> dict[str, Any]:
        """Select run ``run_id`` and return its ``run_details`` (every task)."""
        self.selected = self._workflow().run_details(run_id)
        return self.selected

    def task(self, run_id: int, task: str) -> dict[str, Any]:
        """The ``run_details`` entry of ``task`` (its name or its id) in run ``run_id``. Raises
        ``ValueError`` when the run has no such task."""
        details = self.selected
        if details is None or details["run_id"] != run_id:
            details = self._workflow().run_details(run_id)
        for entry in details["tasks"]:
            if task in (entry["id"], entry["name"]):
                return dict(entry)
        names = ", ".join(t["name"] for t in details["tasks"])
        raise ValueError(f"run {run_id} has no task {task!r} (its tasks: {names})")

    def logs(self, run_id: int, task: str, *, stderr: bool = False) -> str:
        """The task's stdout (``stderr=True``: stderr), as ``Workflow.logs`` returns it."""
        task_id = self.task(run_id, task)["id"]
        return self._workflow().logs(run_id, stderr=stderr, task_id=task_id)

    def graph_svg(self, run_id: int | None = None) -> str:
        """The DAG of run ``run_id`` (default: the selected run), boxes coloured by task state."""
        details = self.selected if run_id is None else self._workflow().run_details(run_id)
        if details is None:
            raise ValueError("select a run first")
        return _draw.dag_svg(
            [
                _draw.DagNode(
                    name=t["name"],
                    depends_on=t.get("depends_on") or (),
                    state=t["state"],
                    outcome=outcome(t["state"]),
                    detail=t["reason"] or "",
                )
                for t in details["tasks"]
            ]
        )

    def strip_svg(self) -> str:
        """The last ten runs in the range, oldest on the left."""
        return _draw.strip_svg(
            [
                _draw.StripRun(r["run_id"], r["state"], outcome(r["state"]), bool(r["warning"]))
                for r in reversed(self._runs[:10])
            ]
        )

    # -- what it does -------------------------------------------------------------------------

    def result(self, run_id: int, task: str, *, confirm: bool = False) -> Any:
        """The return value of ``task`` (its name or id) of run ``run_id``, as
        ``Workflow.result`` gives it (``None`` when nothing is stored). Raises
        :class:`ConfirmationRequired` for a pickled result unless ``confirm=True``."""
        entry = self.task(run_id, task)
        if entry.get("result_codec") == "pickle" and not confirm:
            raise ConfirmationRequired(
                f"the result of {entry['name']} (run {run_id}) is a pickle: loading it runs code "
                f"from {self.store}. Load it only if you trust that store (confirm=True)"
            )
        return self._workflow().result(run_id, task_id=entry["id"])

    def load_result(
        self, run_id: int, task: str, *, confirm: bool = False, name: str | None = None
    ) -> Loaded:
        """Load the return value of ``task`` (its name or id) of run ``run_id`` with
        ``Workflow.result``, bind it to ``name`` (default :func:`variable_name`) in the namespace
        and offer a code cell that reads it. ``None`` when nothing is stored.

        Raises :class:`ConfirmationRequired` — having loaded nothing — for a pickled result
        unless ``confirm=True``: unpickling runs code from the store."""
        entry = self.task(run_id, task)
        value = self.result(run_id, entry["id"], confirm=confirm)
        name = name or variable_name(run_id, entry["name"])
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{name!r} is not a Python variable name")
        self.namespace[name] = value
        code = (
            f"# the result of task {entry['name']!r} of run {run_id} of {self.workflow!r}, "
            "loaded by %lifecycle_runs; again with lifecycle.Workflow("
            f"{self.workflow!r}, store={self.store!r}).result({run_id}, "
            f"task_id={entry['id']!r})\n{name}"
        )
        if self.set_next_input is not None:
            self.set_next_input(code)
        return Loaded(name, value, code)

    def rerun(
        self, run_id: int, version: int | None = None, full: bool = False, *, refresh: bool = True
    ) -> dict[str, Any]:
        """Rerun run ``run_id`` with ``Workflow.rerun`` (``version``: insist on that version of
        the code; ``full``: run every task again), wait for it, and return the new run as
        ``runs()`` lists it. ``refresh``: fetch the runs again afterwards (the widget does that
        itself: it reruns in a background thread and keeps the explorer's state to one thread)."""
        entry = self._workflow().rerun(run_id, full=full, version=version, progress=False)
        if refresh:
            self.refresh()
        return entry
