"""The build step of a deploy, run in a fresh Python process: ``python -m
lifecycle._workflow._build FILE.py[:WORKFLOW]``.

It imports the file (so a syntax error or a module that is not installed fails here, as seed 000's
"bad dependency, syntax error" does), picks the workflow, builds its DAG, and prints the
definition as one JSON object on stdout. Anything else it prints, and the traceback of a
failure, goes to stderr: the build log. Exit status 0 on success, 1 on failure.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle._workflow._dag import Dag


def build(target: str) -> dict[str, Any]:
    """The definition of the workflow ``target`` names (``FILE.py`` or ``FILE.py:NAME``)."""
    from lifecycle._workflow import WorkflowFunction  # noqa: PLC0415

    head, _, name = target.partition(":")
    path = Path(head).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{head} does not exist")
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    found = {a: v for a, v in vars(module).items() if isinstance(v, WorkflowFunction)}
    chosen = [w for a, w in found.items() if not name or name in (a, w.name)]
    unique = list({id(w): w for w in chosen}.values())
    if len(unique) != 1:
        names = ", ".join(sorted({w.name for w in found.values()})) or "none"
        wanted = f"no workflow {name!r}" if name else f"{len(unique)} workflows: pick one"
        raise LookupError(f"{head}: {wanted} (workflows: {names})")
    return definition_of(unique[0].build())


def definition_of(dag: Dag) -> dict[str, Any]:
    """What a deploy records of a built DAG (JSON-able)."""
    return {
        "name": dag.name,
        "tasks": dag.definition(),
        "fingerprint": dag.fingerprint,
        "function": dag.function,
        "file": dag.file,
        "schedule": dag.schedule.to_dict() if dag.schedule else None,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m lifecycle._workflow._build FILE.py[:WORKFLOW]", file=sys.stderr)
        return 2
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # what the user's code prints is build log, not the definition
    try:
        definition = build(argv[0])
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout = real_stdout
    print(json.dumps(definition, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
