"""Export, import and replay of event logs (JSON Lines).

- :func:`export` — a store's log to a JSONL file of ``Recorded`` envelopes, atomically.
- :func:`read_log` — the records of a JSONL file (envelopes, or bare facts as one run stream),
  checked line by line; :class:`~lifecycle.CorruptLog` names the line that cannot be read.
- :func:`import_log` — a JSONL file into a store: checked whole first, appended at once,
  idempotent, read model rebuilt for the imported runs.
- :func:`replay` / :func:`areplay` — views rebuilt from a file or a store, under each run's
  dialect or another one, optionally as of a global position, with the first divergence of
  every run (:class:`ReplayReport`, :class:`Divergence`).

``_jsonl`` reads, ``_replayer`` folds and reports, ``_transfer`` moves logs in and out of stores.
"""

from __future__ import annotations

from ._jsonl import BARE_RUN_ID, UNKNOWN_TIME, decode_fact_json, read_log
from ._replayer import Divergence, ReplayReport, areplay, replay, replay_records
from ._transfer import export, import_log

__all__ = [
    "BARE_RUN_ID",
    "UNKNOWN_TIME",
    "Divergence",
    "ReplayReport",
    "areplay",
    "decode_fact_json",
    "export",
    "import_log",
    "read_log",
    "replay",
    "replay_records",
]
