"""The engine: containers, adapters, runs driven to their end, results, leases.

``_spec`` is what users submit (``Container``, ``Upstream``) and what adapters execute
(``ContainerSpec``); ``_adapter`` the adapter contract and the entry-point lookup; ``_engine``
the ``Engine``; ``_driver`` one run being driven; ``_writer`` one stream being written;
``_results`` how return values are stored and read back. Leases and reconciling a dead
engine's runs live below the engine, in ``lifecycle._leases`` (re-exported here).
"""

from __future__ import annotations

from lifecycle._leases import DEFAULT_LEASE_TTL, reconcile

from ._adapter import (
    ENTRY_POINT_GROUP,
    Adapter,
    Ending,
    Finished,
    Report,
    adapter_names,
    load_adapter,
)
from ._engine import Engine
from ._results import decode_result, encode_result, find_result, load_result
from ._spec import Container, ContainerSpec, Upstream

__all__ = [
    "DEFAULT_LEASE_TTL",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "Container",
    "ContainerSpec",
    "Ending",
    "Engine",
    "Finished",
    "Report",
    "Upstream",
    "adapter_names",
    "decode_result",
    "encode_result",
    "find_result",
    "load_adapter",
    "load_result",
    "reconcile",
]
