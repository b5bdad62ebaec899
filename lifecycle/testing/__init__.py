"""``lifecycle.testing``: the kit for testing dialects, stores, adapters and integrations.

Importing ``lifecycle`` never imports this package, nor Hypothesis.

- Adapter conformance: :func:`check_adapter`; :class:`MockAdapter` is a function-backed fake.
- Store conformance: :func:`check_event_store` (and ``STORE_CHECKS`` / ``PROCESS_CHECKS`` for one
  test per check), :func:`store_state_machine` (a Hypothesis model test of any store).
"""

from __future__ import annotations

from ._adapters import MockAdapter as MockAdapter
from ._adapters import check_adapter as check_adapter
from ._store_machine import StoreMachine as StoreMachine
from ._store_machine import store_state_machine as store_state_machine
from ._stores import PROCESS_CHECKS as PROCESS_CHECKS
from ._stores import STORE_CHECKS as STORE_CHECKS
from ._stores import MakeStore as MakeStore
from ._stores import StoreCheck as StoreCheck
from ._stores import StoreFactory as StoreFactory
from ._stores import check_event_store as check_event_store

__all__ = [
    "PROCESS_CHECKS",
    "STORE_CHECKS",
    "MakeStore",
    "MockAdapter",
    "StoreCheck",
    "StoreFactory",
    "StoreMachine",
    "check_adapter",
    "check_event_store",
    "store_state_machine",
]
