"""``lifecycle_adapters``: executors for the ``lifecycle`` engine, one module per executor.

- :mod:`lifecycle_adapters.inprocess` — Python callables, sync (worker threads) or async, with
  what they print and log captured per container (entry point ``inprocess``);
- :mod:`lifecycle_adapters.local_process` — real OS processes on this machine, with their
  output, exit codes, memory limit and process-group clean-up (entry point ``subprocess``).

The engine finds them by name through the entry-point group ``lifecycle.adapters``; importing
this package imports neither executor.
"""

from __future__ import annotations

__all__: list[str] = []
