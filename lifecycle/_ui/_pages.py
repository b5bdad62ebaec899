"""The dashboard's pages: jobs, one job, one run, one page of a log.

Each handler reads through the run service and the CLI's read model, draws with
``lifecycle._draw`` and renders a template; nothing here writes.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Final
from urllib.parse import quote

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lifecycle._cli._model import job_detail, job_of, job_rows, workflow_tasks
from lifecycle._cli._render import fmt_duration, fmt_time
from lifecycle._draw import DagNode, StripRun, dag_svg, heatmap_svg, strip_svg
from lifecycle._errors import UnknownRun
from lifecycle._runs import AsyncRuns
from lifecycle._views import RunView

from . import _read
from ._context import Settings, render

__all__ = ["ROUTES", "job_url", "run_url"]

RUNS_SHOWN: Final = 100  # rows of a job's run history


def job_url(name: str) -> str:
    """The job page of ``name`` (any characters: quoted)."""
    return "/jobs/" + quote(name, safe="")


def run_url(run_id: int) -> str:
    """The run page of ``run_id``."""
    return f"/runs/{run_id}"


def _runs(request: Request) -> AsyncRuns:
    cfg: Settings = request.app.state.ui
    assert cfg.runs is not None  # set by the lifespan
    return cfg.runs


def _activity(request: Request) -> _read.Activity:
    cfg: Settings = request.app.state.ui
    return cfg.activity


def _common() -> dict[str, Any]:
    return {
        "job_url": job_url,
        "run_url": run_url,
        "fmt_time": fmt_time,
        "fmt_duration": fmt_duration,
    }


async def jobs_page(request: Request) -> Response:
    """Every job: dialect, tasks, state, schedule, the last 10 runs and the weekly heatmap."""
    runs = _runs(request)
    now = _dt.datetime.now(_dt.UTC)
    activity = _activity(request)
    await activity.refresh(runs, now)
    rows = []
    for row in await job_rows(runs):
        strip = [StripRun(h.run_id, h.state, h.outcome, h.warning) for h in row.history]
        rows.append(
            {
                "row": row,
                "strip": Markup(strip_svg(strip, href=run_url)),
                "heatmap": Markup(heatmap_svg(activity.grid(row.name, now), now)),
            }
        )
    return render(request, "jobs.html", rows=rows, now=now, **_common())


def _nodes(tasks: list[tuple[str, list[str]]], view: RunView | None) -> list[DagNode]:
    out = []
    for name, deps in tasks:
        c = view.containers.get(name) if view is not None else None
        detail = ""
        if c is not None:
            detail = fmt_duration(c.started_at, c.ended_at) if c.started_at else ""
            if c.reason:
                detail += f" {c.reason}"
        out.append(
            DagNode(
                name,
                deps,
                c.state if c is not None else None,
                c.outcome if c is not None else None,
                detail.strip(),
            )
        )
    return out


async def job_page(request: Request) -> Response:
    """One job: its DAG (coloured by its latest run), run history, definition and versions."""
    runs = _runs(request)
    name = request.path_params["name"]
    detail = await job_detail(runs, name)
    history = await job_of(runs, name, limit=RUNS_SHOWN)
    latest = await runs.get(detail.last_run_id)
    now = _dt.datetime.now(_dt.UTC)
    activity = _activity(request)
    await activity.refresh(runs, now)
    dag = dag_svg(
        _nodes([(t.name, list(t.depends_on)) for t in detail.tasks], latest),
        href=lambda task: f"{run_url(latest.run_id)}#task-{quote(task, safe='')}",
    )
    return render(
        request,
        "job.html",
        job=detail,
        history=history,
        dag=Markup(dag),
        heatmap=Markup(heatmap_svg(activity.grid(name, now), now)),
        runnable=detail.kind == "workflow",
        **_common(),
    )


async def run_page(request: Request) -> Response:
    """One run: its tasks, logs (live while it is active), timeline and results."""
    runs = _runs(request)
    run_id = int(request.path_params["run_id"])
    view = await runs.get(run_id)
    records = await runs.history(run_id)
    logs = _read.logs_of(records)
    pages = {task: _read.log_page(logs.get(task, []), task) for task in [None, *view.containers]}
    found = workflow_tasks(_requested(view))
    dag = None
    if found is not None and found[0]:
        nodes = _nodes([(t.name, list(t.depends_on)) for t in found[0]], view)
        dag = Markup(dag_svg(nodes, href=lambda task: f"#task-{quote(task, safe='')}"))
    last = records[-1].position if records else 0
    return render(
        request,
        "run.html",
        run=view,
        job=view.name or f"@{view.dialect}",
        logs=pages,
        timeline=_read.timeline(records),
        results=await _read.result_info(runs, view),
        dag=dag,
        is_workflow=found is not None,
        live=None if view.terminal else f"/runs/{run_id}/events?after={last}",
        **_common(),
    )


def _requested(view: RunView) -> Any:
    from lifecycle import events as ev  # noqa: PLC0415

    return ev.Requested(dialect=view.dialect, operation=view.operation, params=view.params)


async def log_page(request: Request) -> Response:
    """One page of one log of a run (``?task=NAME``; none: the run's own), ``?page=N`` counted
    from the newest."""
    runs = _runs(request)
    run_id = int(request.path_params["run_id"])
    view = await runs.get(run_id)
    task = request.query_params.get("task") or None
    if task is not None and task not in view.containers:
        raise UnknownRun(f"run {run_id} has no task {task!r}")
    try:
        page = int(request.query_params.get("page", "0"))
    except ValueError:
        page = 0
    logs = _read.logs_of(await runs.history(run_id))
    shown = _read.log_page(logs.get(task, []), task, page)
    return render(request, "log.html", run=view, log=shown, **_common())


ROUTES: Final = [
    Route("/", jobs_page, name="jobs"),
    Route("/jobs/{name:path}", job_page, name="job"),
    Route("/runs/{run_id:int}", run_page, name="run"),
    Route("/runs/{run_id:int}/log", log_page, name="log"),
]
