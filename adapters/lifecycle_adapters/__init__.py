"""``lifecycle_adapters``: executors for the ``lifecycle`` engine, one module per executor.

- :mod:`lifecycle_adapters.inprocess` — Python callables, sync (worker threads) or async, with
  what they print and log captured per container (entry point ``inprocess``);
- :mod:`lifecycle_adapters.local_process` — real OS processes on this machine, with their
  output, exit codes, memory limit and process-group clean-up (entry point ``subprocess``);
- :mod:`lifecycle_adapters.dask_adapter` — containers on a Dask cluster, each a child process
  of a Dask task on a worker (entry point ``dask``; extra ``lifecycle-adapters[dask]``).

Integrations the other way round, recording an orchestrator's own work:
:mod:`lifecycle_adapters.dask` (a Dask scheduler plugin) and :mod:`lifecycle_adapters.prefect`.

The engine finds them by name through the entry-point group ``lifecycle.adapters``; importing
this package imports no executor.
"""

from __future__ import annotations

__all__: list[str] = []
