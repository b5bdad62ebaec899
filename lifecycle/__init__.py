"""lifecycle: event-sourced state machines for the lifecycle of compute runs.

Facts (``lifecycle.events``) are appended to streams; dialects fold them into states; views show
a run as its facts say; stores keep the facts; the run service validates and records them.
Everything public is re-exported here; the modules behind it are private.

The re-exports are loaded on first use (PEP 562 ``__getattr__``): ``import lifecycle`` costs
almost nothing, so ``lifecycle --help`` does not pay for the engine, the stores and structlog.
``from lifecycle import X``, ``lifecycle.X`` and ``from lifecycle import *`` work as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import events as events
    from ._blocking import Runs as Runs
    from ._dialects import START as START
    from ._dialects import Dialect as Dialect
    from ._dialects import State as State
    from ._dialects import dialect as dialect
    from ._dialects import dialects as dialects
    from ._dialects import load_dialect as load_dialect
    from ._dialects import register_dialect as register_dialect
    from ._engine import Adapter as Adapter
    from ._engine import Container as Container
    from ._engine import ContainerSpec as ContainerSpec
    from ._engine import Engine as Engine
    from ._engine import Finished as Finished
    from ._engine import Report as Report
    from ._engine import Upstream as Upstream
    from ._engine import adapter_names as adapter_names
    from ._engine import load_result as load_result
    from ._errors import ConcurrencyError as ConcurrencyError
    from ._errors import CorruptLog as CorruptLog
    from ._errors import IdempotencyConflict as IdempotencyConflict
    from ._errors import InvalidDialect as InvalidDialect
    from ._errors import InvalidFact as InvalidFact
    from ._errors import InvalidSchedule as InvalidSchedule
    from ._errors import InvalidTransition as InvalidTransition
    from ._errors import LifecycleError as LifecycleError
    from ._errors import PolicyViolation as PolicyViolation
    from ._errors import StoreError as StoreError
    from ._errors import StreamClosed as StreamClosed
    from ._errors import UnknownContainer as UnknownContainer
    from ._errors import UnknownDialect as UnknownDialect
    from ._errors import UnknownRun as UnknownRun
    from ._phases import Phase as Phase
    from ._processes import process_identity as process_identity
    from ._replay import Divergence as Divergence
    from ._replay import ReplayReport as ReplayReport
    from ._replay import areplay as areplay
    from ._replay import export as export
    from ._replay import import_log as import_log
    from ._replay import read_log as read_log
    from ._replay import replay as replay
    from ._runs import AsyncRuns as AsyncRuns
    from ._schedule import Schedule as Schedule
    from ._stores import EventStore as EventStore
    from ._stores import MemoryStore as MemoryStore
    from ._stores import RunStore as RunStore
    from ._stores import RunSummary as RunSummary
    from ._stores import Write as Write
    from ._stores import open_store as open_store
    from ._stores._rebuild import RebuildReport as RebuildReport
    from ._stores._rebuild import SkippedRun as SkippedRun
    from ._stores._rebuild import rebuild_summaries as rebuild_summaries
    from ._views import ContainerView as ContainerView
    from ._views import Projector as Projector
    from ._views import RunView as RunView
    from ._views import fold as fold
    from ._workflow import AsyncWorkflow as AsyncWorkflow
    from ._workflow import Environment as Environment
    from ._workflow import Progress as Progress
    from ._workflow import Task as Task
    from ._workflow import TaskCall as TaskCall
    from ._workflow import Workflow as Workflow
    from ._workflow import WorkflowError as WorkflowError
    from ._workflow import WorkflowFunction as WorkflowFunction
    from ._workflow import default_store_url as default_store_url
    from ._workflow import task as task
    from ._workflow import workflow as workflow
    from ._workflow._deploy import Deployment as Deployment
    from ._workflow._deploy import deploy as deploy
    from ._workflow._scheduler import Clock as Clock
    from ._workflow._scheduler import FastClock as FastClock
    from ._workflow._scheduler import Firing as Firing
    from ._workflow._scheduler import ManualClock as ManualClock
    from ._workflow._scheduler import Scheduler as Scheduler
    from ._workflow._scheduler import SystemClock as SystemClock
    from ._workflow._scheduler import pause_job as pause_job
    from ._workflow._scheduler import resume_job as resume_job
    from ._workflow._scheduler import undeploy_job as undeploy_job

__version__ = "0.1.0.dev0"

_WHERE: dict[str, str] = {
    "START": "._dialects",
    "Dialect": "._dialects",
    "State": "._dialects",
    "dialect": "._dialects",
    "dialects": "._dialects",
    "load_dialect": "._dialects",
    "register_dialect": "._dialects",
    "Adapter": "._engine",
    "Container": "._engine",
    "ContainerSpec": "._engine",
    "Engine": "._engine",
    "Finished": "._engine",
    "Report": "._engine",
    "Upstream": "._engine",
    "adapter_names": "._engine",
    "load_result": "._engine",
    "ConcurrencyError": "._errors",
    "CorruptLog": "._errors",
    "IdempotencyConflict": "._errors",
    "InvalidDialect": "._errors",
    "InvalidFact": "._errors",
    "InvalidSchedule": "._errors",
    "InvalidTransition": "._errors",
    "PolicyViolation": "._errors",
    "LifecycleError": "._errors",
    "StoreError": "._errors",
    "StreamClosed": "._errors",
    "UnknownContainer": "._errors",
    "UnknownDialect": "._errors",
    "UnknownRun": "._errors",
    "Phase": "._phases",
    "process_identity": "._processes",
    "Schedule": "._schedule",
    "Divergence": "._replay",
    "ReplayReport": "._replay",
    "areplay": "._replay",
    "export": "._replay",
    "import_log": "._replay",
    "read_log": "._replay",
    "replay": "._replay",
    "AsyncRuns": "._runs",
    "Runs": "._blocking",
    "EventStore": "._stores",
    "MemoryStore": "._stores",
    "RunStore": "._stores",
    "RunSummary": "._stores",
    "Write": "._stores",
    "open_store": "._stores",
    "RebuildReport": "._stores._rebuild",
    "SkippedRun": "._stores._rebuild",
    "rebuild_summaries": "._stores._rebuild",
    "ContainerView": "._views",
    "Projector": "._views",
    "RunView": "._views",
    "fold": "._views",
    "AsyncWorkflow": "._workflow",
    "Deployment": "._workflow._deploy",
    "deploy": "._workflow._deploy",
    "Clock": "._workflow._scheduler",
    "FastClock": "._workflow._scheduler",
    "Firing": "._workflow._scheduler",
    "ManualClock": "._workflow._scheduler",
    "Scheduler": "._workflow._scheduler",
    "SystemClock": "._workflow._scheduler",
    "pause_job": "._workflow._scheduler",
    "resume_job": "._workflow._scheduler",
    "undeploy_job": "._workflow._scheduler",
    "Environment": "._workflow",
    "Progress": "._workflow",
    "Task": "._workflow",
    "TaskCall": "._workflow",
    "Workflow": "._workflow",
    "WorkflowError": "._workflow",
    "WorkflowFunction": "._workflow",
    "default_store_url": "._workflow",
    "task": "._workflow",
    "workflow": "._workflow",
}
"""Where each re-exported name lives (``events`` is the public module itself)."""


def __getattr__(name: str) -> Any:
    if name == "events":
        value: Any = importlib.import_module(".events", __name__)
    elif name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later lookups do not come here
    return value


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext lifecycle``: register ``%lifecycle_runs`` (needs ``lifecycle[notebook]``).
    The notebook package is imported only here, so ``import lifecycle`` stays cheap."""
    from ._notebook import load_ipython_extension as load  # noqa: PLC0415

    load(ipython)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "START",
    "Adapter",
    "AsyncRuns",
    "AsyncWorkflow",
    "Clock",
    "ConcurrencyError",
    "Container",
    "ContainerSpec",
    "ContainerView",
    "CorruptLog",
    "Deployment",
    "Dialect",
    "Divergence",
    "Engine",
    "Environment",
    "EventStore",
    "FastClock",
    "Finished",
    "Firing",
    "IdempotencyConflict",
    "InvalidDialect",
    "InvalidFact",
    "InvalidSchedule",
    "InvalidTransition",
    "LifecycleError",
    "ManualClock",
    "MemoryStore",
    "Phase",
    "PolicyViolation",
    "Progress",
    "Projector",
    "RebuildReport",
    "ReplayReport",
    "Report",
    "RunStore",
    "RunSummary",
    "RunView",
    "Runs",
    "Schedule",
    "Scheduler",
    "SkippedRun",
    "State",
    "StoreError",
    "StreamClosed",
    "SystemClock",
    "Task",
    "TaskCall",
    "UnknownContainer",
    "UnknownDialect",
    "UnknownRun",
    "Upstream",
    "Workflow",
    "WorkflowError",
    "WorkflowFunction",
    "Write",
    "adapter_names",
    "areplay",
    "default_store_url",
    "deploy",
    "dialect",
    "dialects",
    "events",
    "export",
    "fold",
    "import_log",
    "load_dialect",
    "load_result",
    "open_store",
    "pause_job",
    "process_identity",
    "read_log",
    "rebuild_summaries",
    "register_dialect",
    "replay",
    "resume_job",
    "task",
    "undeploy_job",
    "workflow",
]
