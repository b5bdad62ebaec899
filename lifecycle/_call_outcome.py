"""What a child process that ran one Python call writes back: ``("ok", value)`` or ``("error",
message, traceback)``, pickled to the file the adapter named. One protocol for every adapter
that runs calls in a process of their own (``subprocess``: ``lifecycle._workflow._worker``;
``dask``: ``lifecycle_adapters._dask_child``). Standard library only: the children import it at
start-up, which is most of a small container's cost.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from pathlib import Path

__all__ = ["write_error", "write_value"]


def write_error(out: Path, exc: BaseException) -> int:
    """Print the traceback of ``exc`` (being handled) to stderr and write it as the outcome.
    Returns the exit code: 1."""
    tb = traceback.format_exc()
    sys.stderr.write(tb)
    sys.stderr.flush()
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    out.write_bytes(pickle.dumps(("error", message, tb)))
    return 1


def write_value(out: Path, value: object) -> int:
    """Write ``value`` as the outcome, or say why it cannot be pickled. Returns the exit code:
    0, or 1 when the value cannot be written."""
    try:
        data = pickle.dumps(("ok", value), protocol=5)
    except Exception as exc:
        message = f"the result ({type(value).__name__}) cannot be serialized: {exc}"
        sys.stderr.write(message + "\n")
        out.write_bytes(pickle.dumps(("error", message, "")))
        return 1
    out.write_bytes(data)
    return 0
