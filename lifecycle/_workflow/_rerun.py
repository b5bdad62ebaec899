"""Which tasks a rerun executes, and which it takes from the original run's cache.

Dagster's re-execution from failure is the anchor: by default a rerun executes the tasks that
failed, were interrupted (stopped, out of memory, still active) or never started, and everything
downstream of them; the other tasks end ``Completed`` at once with ``cached_from`` set and the
original result carried over. Two additions, both safe: a task whose definition changed since
the original run (its task id differs: new source, new constants) is executed too, and so is a
task the original run does not have (the workflow gained it). ``from_task=`` executes that task
and its downstream (plus any task whose result cannot be reused, and what depends on it);
``full=True`` executes everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lifecycle.events import ResultStored

from ._dag import Dag, WorkflowError

__all__ = ["Reuse", "select"]


@dataclass(frozen=True, slots=True)
class Reuse:
    """A task taken from the cache: its stored result (if any) and the run that computed it."""

    result: ResultStored | None
    cached_from: int


def select(
    dag: Dag,
    original_run_id: int,
    original: Any,
    *,
    from_task: str | None = None,
    full: bool = False,
) -> tuple[set[str], dict[str, Reuse]]:
    """``(to execute, to reuse)`` for a rerun of ``original`` (a ``RunView``) as ``dag``.

    Raises :class:`WorkflowError` when ``from_task`` is not a task of ``dag``.
    """
    if from_task is not None and from_task not in dag.tasks:
        raise WorkflowError(
            f"from_task={from_task!r} is not a task of workflow {dag.name!r} "
            f"(its tasks: {', '.join(dag.tasks)})"
        )
    if full:
        return set(dag.tasks), {}
    recorded = {t["name"]: t for t in original.params.get("workflow", {}).get("tasks", [])}
    reusable: dict[str, Reuse] = {}
    for spec in dag:
        container = original.containers.get(spec.name)
        old = recorded.get(spec.name)
        if (
            container is not None
            and container.outcome == "succeeded"
            and (old is None or old.get("id") == spec.id)
        ):
            reusable[spec.name] = Reuse(
                result=container.result, cached_from=container.cached_from or original_run_id
            )
    seeds = {n for n in dag.tasks if n not in reusable}
    if from_task is not None:
        seeds.add(from_task)
    execute = dag.downstream(seeds)
    return execute, {n: r for n, r in reusable.items() if n not in execute}
