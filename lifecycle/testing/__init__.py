"""``lifecycle.testing``: the kit for testing dialects, stores, adapters and integrations.

- Dialects (built-in or your own): Hypothesis strategies of valid and invalid histories
  (:func:`histories`, :func:`invalid_histories`, :func:`canonical_histories`, wire-safe
  :func:`facts`); :func:`paths` (shortest, simple, transition-covering) for
  ``pytest.mark.parametrize``; :func:`check_dialect` (the standard properties in one call).
- Integrations: :class:`RunStateMachine`, a Hypothesis stateful test to subclass.
- Golden logs: :func:`replay_histories` / :func:`golden_params` replay recorded histories.
- Stores: :func:`check_event_store` (``STORE_CHECKS`` / ``PROCESS_CHECKS`` for one test per
  check) and :func:`store_state_machine`.
- Adapters: :func:`check_adapter`; :class:`MockAdapter` is a function-backed fake.

Names load lazily (PEP 562): importing ``lifecycle`` never imports this package, and importing
this package (as the pytest plugin does in every session) imports neither Hypothesis nor the
suites until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._adapters import MockAdapter as MockAdapter
    from ._adapters import check_adapter as check_adapter
    from ._golden import HistoryReport as HistoryReport
    from ._golden import assert_replays as assert_replays
    from ._golden import golden_params as golden_params
    from ._golden import replay_histories as replay_histories
    from ._machine import RunStateMachine as RunStateMachine
    from ._machine import check_dialect as check_dialect
    from ._machine import fold_states as fold_states
    from ._machine import machine_states as machine_states
    from ._paths import Path as Path
    from ._paths import paths as paths
    from ._paths import walk as walk
    from ._store_machine import StoreMachine as StoreMachine
    from ._store_machine import store_state_machine as store_state_machine
    from ._stores import PROCESS_CHECKS as PROCESS_CHECKS
    from ._stores import STORE_CHECKS as STORE_CHECKS
    from ._stores import MakeStore as MakeStore
    from ._stores import StoreCheck as StoreCheck
    from ._stores import StoreFactory as StoreFactory
    from ._stores import check_event_store as check_event_store
    from ._strategies import InvalidHistory as InvalidHistory
    from ._strategies import canonical_histories as canonical_histories
    from ._strategies import fact_strategy as fact_strategy
    from ._strategies import facts as facts
    from ._strategies import histories as histories
    from ._strategies import invalid_histories as invalid_histories
    from ._strategies import recorded as recorded
    from ._strategies import register_strategies as register_strategies
    from ._strategies import rejected_facts as rejected_facts

_WHERE: dict[str, str] = {
    "histories": "_strategies",
    "invalid_histories": "_strategies",
    "InvalidHistory": "_strategies",
    "canonical_histories": "_strategies",
    "facts": "_strategies",
    "fact_strategy": "_strategies",
    "recorded": "_strategies",
    "rejected_facts": "_strategies",
    "register_strategies": "_strategies",
    "paths": "_paths",
    "Path": "_paths",
    "walk": "_paths",
    "RunStateMachine": "_machine",
    "check_dialect": "_machine",
    "fold_states": "_machine",
    "machine_states": "_machine",
    "replay_histories": "_golden",
    "golden_params": "_golden",
    "assert_replays": "_golden",
    "HistoryReport": "_golden",
    "PROCESS_CHECKS": "_stores",
    "STORE_CHECKS": "_stores",
    "MakeStore": "_stores",
    "StoreCheck": "_stores",
    "StoreFactory": "_stores",
    "check_event_store": "_stores",
    "StoreMachine": "_store_machine",
    "store_state_machine": "_store_machine",
    "MockAdapter": "_adapters",
    "check_adapter": "_adapters",
}

__all__ = [
    "PROCESS_CHECKS",
    "STORE_CHECKS",
    "HistoryReport",
    "InvalidHistory",
    "MakeStore",
    "MockAdapter",
    "Path",
    "RunStateMachine",
    "StoreCheck",
    "StoreFactory",
    "StoreMachine",
    "assert_replays",
    "canonical_histories",
    "check_adapter",
    "check_dialect",
    "check_event_store",
    "fact_strategy",
    "facts",
    "fold_states",
    "golden_params",
    "histories",
    "invalid_histories",
    "machine_states",
    "paths",
    "recorded",
    "register_strategies",
    "rejected_facts",
    "replay_histories",
    "store_state_machine",
    "walk",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'lifecycle.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lifecycle.testing.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
