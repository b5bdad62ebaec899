"""lifecycle: event-sourced state machines for the lifecycle of compute runs.

Facts (``lifecycle.events``) are appended to streams; dialects fold them into states; views show
a run as its facts say; stores keep the facts; the run service validates and records them.
Everything public is re-exported here; the modules behind it are private.
"""

from __future__ import annotations

from . import events as events
from ._dialects import START as START
from ._dialects import Dialect as Dialect
from ._dialects import State as State
from ._dialects import dialect as dialect
from ._dialects import dialects as dialects
from ._dialects import register_dialect as register_dialect
from ._errors import ConcurrencyError as ConcurrencyError
from ._errors import CorruptLog as CorruptLog
from ._errors import IdempotencyConflict as IdempotencyConflict
from ._errors import InvalidDialect as InvalidDialect
from ._errors import InvalidTransition as InvalidTransition
from ._errors import LifecycleError as LifecycleError
from ._errors import StoreError as StoreError
from ._errors import StreamClosed as StreamClosed
from ._errors import UnknownDialect as UnknownDialect
from ._errors import UnknownRun as UnknownRun
from ._runs import AsyncRuns as AsyncRuns
from ._runs import Runs as Runs
from ._stores import EventStore as EventStore
from ._stores import MemoryStore as MemoryStore
from ._stores import RunStore as RunStore
from ._stores import RunSummary as RunSummary
from ._stores import Write as Write
from ._stores import open_store as open_store
from ._views import ContainerView as ContainerView
from ._views import Projector as Projector
from ._views import RunView as RunView
from ._views import fold as fold

__version__ = "0.1.0.dev0"

__all__ = [
    "START",
    "AsyncRuns",
    "ConcurrencyError",
    "ContainerView",
    "CorruptLog",
    "Dialect",
    "EventStore",
    "IdempotencyConflict",
    "InvalidDialect",
    "InvalidTransition",
    "LifecycleError",
    "MemoryStore",
    "Projector",
    "RunStore",
    "RunSummary",
    "RunView",
    "Runs",
    "State",
    "StoreError",
    "StreamClosed",
    "UnknownDialect",
    "UnknownRun",
    "Write",
    "dialect",
    "dialects",
    "events",
    "fold",
    "open_store",
    "register_dialect",
]
