"""The Datatailr-style workflow SDK (seed 001): ``@task``, ``@workflow``, ``Workflow``.

``_dag`` builds DAGs from workflow bodies; ``_define`` is the ``@workflow`` decorator and local
runs; ``_run`` drives a run through the engine; ``_rerun`` picks what a rerun executes;
``_version`` numbers definitions; ``_history`` is the ``Workflow`` history API; ``_results``
reads cached results; ``_progress`` shows a run as it goes; ``_store`` finds the default store.
"""

from __future__ import annotations

from ._dag import Dag, Task, TaskCall, TaskSpec, WorkflowError, task
from ._define import WorkflowFunction, workflow
from ._history import AsyncWorkflow, Environment, Workflow
from ._progress import Progress
from ._store import default_store_url

__all__ = [
    "AsyncWorkflow",
    "Dag",
    "Environment",
    "Progress",
    "Task",
    "TaskCall",
    "TaskSpec",
    "Workflow",
    "WorkflowError",
    "WorkflowFunction",
    "default_store_url",
    "task",
    "workflow",
]
