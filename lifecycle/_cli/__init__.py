"""The ``lifecycle`` command line (console script ``lifecycle = "lifecycle._cli:main"``).

Commands (DESIGN §10)::

    lifecycle job ls | get NAME | runs NAME [--since T] [--until T] [--limit N]
    lifecycle log read NAME [--run ID] [--task T] [--stderr] [--lines N] [--follow]
    lifecycle run TARGET | rerun RUN_ID [--from-task T] [--full] | abort RUN_ID
    lifecycle export [--output FILE] | replay FILE [--dialect D] [--at POSITION]
    lifecycle rebuild [--no-progress] [--json] | check [--full] [--json]
    lifecycle diagram [DIALECT] [--format mermaid|table|json] | demo [STORE_URL]

Global: ``--store URL`` (default ``$LIFECYCLE_STORE``, then
``sqlite:///~/.local/share/lifecycle/runs.db``), ``--json``, ``-v``. Exit codes: 0 ok; 1 a run
failed, a run's log does not fold (``replay``, ``rebuild``), the read model could not be wholly
rebuilt (``rebuild``: a run's dialect is not registered here), something was not found, or the
store could not be opened; 2 usage; 130 interrupted; 141 the reader of the output went away.

Built on Click (small, no dependencies of its own) and Rich (tables, colour). Importing this
package imports nothing; ``main`` imports Click, and each command what it uses, when it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import cli as cli

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """The ``lifecycle`` console script. Exits with the command's exit code; Ctrl-C at any
    point, even while the command is still being loaded, exits 130 without a traceback."""
    try:
        from ._app import main as run_cli
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    run_cli(argv)


def __getattr__(name: str) -> Any:
    if name == "cli":
        from ._app import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
