"""The process a task runs in under the ``subprocess`` adapter: ``python -m
lifecycle._workflow._worker IN OUT``.

Reads the pickled ``(task, args, kwargs)`` from ``IN``, calls it, and writes ``("ok", value)``
or ``("error", message, traceback)`` to ``OUT``. What the task prints goes to this process's
stdout/stderr, which the adapter turns into the task's logs; a traceback is printed to stderr.
Exit code 0 on success, 1 on failure.
"""

from __future__ import annotations

import os
import pickle
import runpy
import sys
import types
from pathlib import Path

from lifecycle._call_outcome import write_error, write_value

__all__ = ["main"]


def _load_main(path: str) -> None:
    """Load the parent's script as ``__mp_main__`` and alias it as ``__main__`` (what
    ``multiprocessing`` does), so tasks pickled as ``__main__.name`` are found."""
    module = types.ModuleType("__mp_main__")
    module.__file__ = path
    sys.modules["__mp_main__"] = sys.modules["__main__"] = module
    module.__dict__.update(runpy.run_path(path, run_name="__mp_main__"))


def main(argv: list[str]) -> int:
    inp, out = Path(argv[1]), Path(argv[2])
    main_file = os.environ.get("LIFECYCLE_WORKFLOW_MAIN")
    try:
        if main_file:
            _load_main(main_file)
        fn, args, kwargs = pickle.loads(inp.read_bytes())
        value = fn(*args, **kwargs)
    except BaseException as exc:
        return write_error(out, exc)
    return write_value(out, value)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
