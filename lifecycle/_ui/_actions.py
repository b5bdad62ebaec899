"""The dashboard's actions: run a deployed job, stop a run, rerun an ended one.

Each is a ``POST`` form that must carry the page's CSRF token and comes from this site (an
``Origin`` header naming another is refused); ``--read-only`` refuses them all (403). They go
through the same services the CLI's commands use: ``AsyncRuns.abort`` (recorded as
``StopRequested(by="ui")``, so the run's facts say who stopped it), ``AsyncRuns.rerun`` for runs of
other orchestrators, and the workflow SDK's rerun and run for workflows — which execute here, in
the server's task group, on the in-process adapter, exactly as ``lifecycle rerun`` and
``lifecycle run NAME`` execute them in the terminal. The answer is a redirect (303) to the page
of the run acted on or started.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import anyio
import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lifecycle._cli._model import find_job, requested
from lifecycle._runs import AsyncRuns
from lifecycle._views import RunView

from ._context import Settings, render

__all__ = ["BY", "ROUTES"]

BY: Final = "ui"
"""Who the facts say asked (``StopRequested(by="ui")``)."""
_START_WAIT: Final = 10.0  # seconds to wait for a launched workflow's run to be recorded

log = structlog.get_logger("lifecycle.ui")


async def _form(request: Request) -> dict[str, str] | Response:
    """The form's fields, or the refusal to send (read-only, bad CSRF token, foreign origin)."""
    cfg: Settings = request.app.state.ui
    if cfg.read_only:
        return render(
            request,
            "error.html",
            403,
            title="Read-only",
            message="this dashboard was started with --read-only: actions are refused",
        )
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        here = urlsplit(str(request.base_url))
        there = urlsplit(origin)
        if (there.scheme, there.netloc) != (here.scheme, here.netloc):
            return render(request, "error.html", 403, title="Refused", message="foreign origin")
    fields = {
        k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
    }
    if not hmac.compare_digest(fields.get("csrf", "").encode(), cfg.csrf.encode()):
        return render(
            request,
            "error.html",
            403,
            title="Refused",
            message="the form's CSRF token is missing or wrong: reload the page and try again",
        )
    return fields


def _runs(request: Request) -> tuple[Settings, AsyncRuns]:
    cfg: Settings = request.app.state.ui
    assert cfg.runs is not None
    assert cfg.tasks is not None
    return cfg, cfg.runs


def _see(run_id: int) -> Response:
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


async def abort(request: Request) -> Response:
    """Stop run ``run_id`` and its active tasks."""
    fields = await _form(request)
    if isinstance(fields, Response):
        return fields
    _, runs = _runs(request)
    run_id = int(request.path_params["run_id"])
    await runs.abort(run_id, by=BY)
    return _see(run_id)


async def rerun(request: Request) -> Response:
    """A new run from ended run ``run_id``: ``full`` (workflows: execute every task again) and
    ``version`` (workflows: the job version the loaded code must be; other runs: the new run's
    ``job_version``)."""
    fields = await _form(request)
    if isinstance(fields, Response):
        return fields
    cfg, runs = _runs(request)
    run_id = int(request.path_params["run_id"])
    full = fields.get("full") in ("1", "on", "true")
    text = fields.get("version", "").strip()
    try:
        version = int(text) if text else None
    except ValueError:
        return render(request, "error.html", 400, title="Cannot rerun", message="bad version")
    original = await runs.get(run_id)
    if not isinstance(original.params.get("workflow"), dict):
        if full:
            return render(
                request,
                "error.html",
                400,
                title="Cannot rerun",
                message=f"full applies to workflow runs; run {run_id} is a {original.dialect} "
                f"{original.operation} run",
            )
        changes = {} if version is None else {"job_version": version}
        return _see((await runs.rerun(run_id, **changes)).run_id)

    async def go() -> RunView:
        from lifecycle._workflow._history import AsyncWorkflow  # noqa: PLC0415
        from lifecycle._workflow._run import rerun as rerun_workflow  # noqa: PLC0415

        wf = AsyncWorkflow(original.name, runs)
        return await rerun_workflow(wf, run_id, full=full, version=version, progress=False)

    return await _launch(
        request, cfg=cfg, runs=runs, name=original.name, go=go, wanted=lambda r: r == run_id
    )


async def run_job(request: Request) -> Response:
    """Run deployed workflow ``job`` now, from the code its latest run recorded."""
    fields = await _form(request)
    if isinstance(fields, Response):
        return fields
    cfg, runs = _runs(request)
    name = fields.get("job", "")
    latest = (await find_job(runs, name, limit=1))[0]
    spec = (await requested(runs, latest.run_id)).params.get("workflow")
    if not isinstance(spec, dict):
        return render(
            request,
            "error.html",
            400,
            title="Cannot run",
            message=f"job {name!r} is not a workflow: the dashboard runs workflows",
        )

    async def go() -> RunView:
        from lifecycle._workflow._define import _run_dag, deployed_workflow  # noqa: PLC0415

        dag = deployed_workflow(name, spec).build()
        return await _run_dag(runs, dag, "inprocess", None, False)

    return await _launch(request, cfg=cfg, runs=runs, name=name, go=go, wanted=lambda r: True)


async def _launch(
    request: Request,
    *,
    cfg: Settings,
    runs: AsyncRuns,
    name: str,
    go: Callable[[], Awaitable[RunView]],
    wanted: Callable[[int | None], bool],
) -> Response:
    """Start ``go`` in the server's task group and redirect to the run it records (found as the
    newest run of job ``name`` past those there now whose original ``wanted`` accepts); if it
    fails before recording one, show why."""
    before = await runs.list(name=name, limit=1)
    newest = before[0].run_id if before else 0
    failed: list[BaseException] = []
    done = anyio.Event()

    async def work() -> None:
        try:
            await go()
        except Exception as exc:
            failed.append(exc)
            log.warning("ui action failed", job=name, error=str(exc))
        finally:
            done.set()

    assert cfg.tasks is not None
    cfg.tasks.start_soon(work)
    with anyio.move_on_after(_START_WAIT):
        while True:
            found = [
                r
                for r in await runs.list(name=name, limit=5)
                if r.run_id > newest and wanted(r.original_run_id)
            ]
            if found:
                return _see(found[-1].run_id)
            if done.is_set():
                break
            with anyio.move_on_after(0.05):
                await done.wait()
    message: Any = failed[0] if failed else "the run did not start in time"
    return render(request, "error.html", 400, title="Cannot start it", message=str(message))


ROUTES: Final = [
    Route("/actions/abort/{run_id:int}", abort, methods=["POST"], name="abort"),
    Route("/actions/rerun/{run_id:int}", rerun, methods=["POST"], name="rerun"),
    Route("/actions/run", run_job, methods=["POST"], name="run_job"),
]
