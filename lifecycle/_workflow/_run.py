"""Running a built DAG: the run's layout in the store, the engine, progress, reruns.

Layout (agreed with the CLI): a ``datatailr`` run, ``operation="workflow"``, ``name`` = the
workflow's name, ``containers`` = the task names, ``job_version`` = the definition's version, and
``params["workflow"]`` = ``{"tasks": [{"id", "name", "function", "depends_on", ...}],
"schedule": {"cron", "timezone", "end"} or None, "function", "file", "fingerprint"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from lifecycle._engine import Adapter, Container, Engine, Upstream
from lifecycle._runs import AsyncRuns
from lifecycle._views import RunView, run_stream

from ._dag import Dag, Ref, TaskSpec, WorkflowError
from ._history import OPERATION, note_write
from ._process import workflow_adapter
from ._progress import Progress
from ._rerun import Reuse, select
from ._version import load_registry, register_version

if TYPE_CHECKING:
    from ._history import AsyncWorkflow

__all__ = ["execute", "rerun"]


def _params(dag: Dag) -> dict[str, Any]:
    return {
        "workflow": {
            "tasks": dag.definition(),
            "schedule": dag.schedule.to_dict() if dag.schedule else None,
            "function": dag.function,
            "file": dag.file,
            "fingerprint": dag.fingerprint,
        }
    }


async def execute(
    runs: AsyncRuns,
    dag: Dag,
    *,
    job_version: int | None,
    adapter: str | Adapter = "inprocess",
    max_parallel: int | None = None,
    progress: bool | Progress = False,
    reuse: dict[str, Reuse] | None = None,
    original_run_id: int | None = None,
    root_run_id: int | None = None,
) -> RunView:
    """Run ``dag`` through the engine as a new run (a rerun when ``original_run_id`` is given)
    and wait for its end. Tasks in ``reuse`` are submitted as cached: the engine ends them
    ``Completed`` at once, with ``cached_from`` and the original ``ResultStored``."""
    reuse = reuse or {}
    containers = [_container(spec, reuse.get(spec.name)) for spec in dag]
    chosen, owned = workflow_adapter(adapter)
    engine = Engine(runs, adapter=chosen, max_parallel=max_parallel)
    try:
        view = await engine.submit(
            "datatailr",
            operation=OPERATION,
            name=dag.name,
            containers=containers,
            params=_params(dag),
            job_version=job_version,
            mode="new" if original_run_id is None else "rerun",
            original_run_id=original_run_id,
            root_run_id=root_run_id,
        )
        shown = progress if isinstance(progress, Progress) else (Progress() if progress else None)
        if shown is None:
            return await engine.wait(view.run_id)
        head = await runs.store.read([run_stream(view.run_id)], after=0)
        watched = anyio.Event()

        async def watch() -> None:
            await shown.watch(runs.store, view.run_id, after=head[0].position - 1)
            watched.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            final = await engine.wait(view.run_id)
            with anyio.move_on_after(5):  # the ending is committed: the display catches up
                await watched.wait()
            tg.cancel_scope.cancel()
        return final
    finally:
        note_write(dag.name)  # a Workflow's cached history is stale now
        await engine.aclose()
        if owned and isinstance(chosen, Adapter):
            await chosen.aclose()


def _container(spec: TaskSpec, reused: Reuse | None) -> Container:
    """The engine's container for one task: a cached one, or a call of the task."""
    if reused is not None:
        return Container(spec.name, cached_from=reused.cached_from)
    return Container(
        spec.name,
        call=spec.task,  # a Task called outside a workflow body runs its function
        args=_upstreams(spec.args),
        kwargs=_upstreams(spec.kwargs),
        depends_on=spec.depends_on,
        timeout=spec.task.timeout,
        memory_limit=spec.task.memory_limit,
        env=spec.task.env,
    )


def _upstreams(value: Any) -> Any:
    """``value`` with every ``Ref`` replaced by the engine's ``Upstream`` placeholder."""
    if isinstance(value, Ref):
        return Upstream(value.name)
    if type(value) is list:
        return [_upstreams(v) for v in value]
    if type(value) is tuple:
        return tuple(_upstreams(v) for v in value)
    if type(value) is dict:
        return {k: _upstreams(v) for k, v in value.items()}
    return value


async def rerun(
    wf: AsyncWorkflow,
    run_id: int,
    *,
    from_task: str | None = None,
    full: bool = False,
    version: int | None = None,
    adapter: str | Adapter = "inprocess",
    max_parallel: int | None = None,
    progress: bool | Progress | None = None,
) -> RunView:
    """A new run of workflow ``wf`` with ``original_run_id=run_id``, waited for.

    The code run is the workflow's code as this process can load it now (see
    ``find_workflow``); ``version=`` insists that this code is that version (``ValueError``
    otherwise: lifecycle runs the code it can import, it keeps no images of old versions).
    What is executed and what is reused: see ``_rerun``.
    """
    from ._define import find_workflow  # noqa: PLC0415  (_define imports this module)

    runs = wf.runs_service
    original = await wf.view(run_id)
    if not original.terminal:
        raise WorkflowError(
            f"run {run_id} is still {original.state}: a rerun starts from a run that has ended"
        )
    dag = find_workflow(wf.name, original.params.get("workflow", {})).build()
    if version is not None:
        registry = await load_registry(runs.store, dag.name)
        known = next((v for v in registry.versions if v.fingerprint == dag.fingerprint), None)
        if known is None or known.version != version:
            loaded = known.version if known else "a new version"
            raise WorkflowError(
                f"version={version} is not the code loaded in this process (it is {loaded}): "
                "lifecycle runs the code it can import; load version "
                f"{version}'s code, or rerun without version="
            )
    _, reuse = select(dag, run_id, original, from_task=from_task, full=full)
    job_version = await register_version(runs.store, dag)
    return await execute(
        runs,
        dag,
        job_version=job_version,
        adapter=adapter,
        max_parallel=max_parallel,
        progress=True if progress is None else progress,
        reuse=reuse,
        original_run_id=run_id,
        root_run_id=original.root_run_id or run_id,
    )
