"""Loading a dialect declared in a TOML or JSON file.

The file has the shape of :class:`~lifecycle.Dialect`'s arguments, so a dialect can live beside
the configuration of the system it describes::

    name = "mine"
    initial = "Waiting"                 # or a table: [initial] promote = "Running", "*" = "Queued"
    states = [
        "Waiting",                      # an active state: its name is enough
        { name = "Working", description = "the code runs" },
        { name = "Done", outcome = "succeeded" },
        { name = "Broken", outcome = "failed" },
    ]
    transitions = [
        { trigger = "ExecutionStarted", source = "Waiting", dest = "Working" },
        { trigger = ["ExecutionFailed", "OutOfMemory"], source = "Working", dest = "Broken" },
        { trigger = "ExecutionSucceeded", source = "Working", dest = "Done" },
    ]
    [tolerate]
    LogRecorded = ["Waiting", "Working"]

    [containers]                        # optional: the container machine, the same shape
    name = "mine.task"
    ...

Optional keys: ``description``, ``operations``, ``container_operations``, ``aggregation``.
``containers`` may also name a registered dialect. Every problem — unreadable file, wrong shape,
a declaration that fails validation — raises :class:`~lifecycle.InvalidDialect` naming the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from lifecycle._errors import InvalidDialect, UnknownDialect

from ._declare import Dialect, State

__all__ = ["load_dialect"]


class _State(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    outcome: Literal["succeeded", "failed", "cancelled"] | None = None
    description: str = ""
    extension: bool = False


class _Transition(msgspec.Struct, forbid_unknown_fields=True):
    trigger: str | list[str]
    source: str | list[str]
    dest: str
    when: dict[str, Any] | None = None
    label: str = ""
    extension: bool = False


class _DialectFile(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    states: list[str | _State]
    initial: str | dict[str, str]
    transitions: list[_Transition]
    tolerate: dict[str, str | list[str]] = {}
    description: str = ""
    operations: list[str] | None = None
    containers: str | _DialectFile | None = None
    container_operations: list[str] | None = None
    aggregation: Literal["fail", "warn"] = "fail"


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidDialect(f"{path}: cannot read the dialect file: {exc}") from exc
    try:
        if suffix == ".toml":
            return tomllib.loads(data.decode("utf-8"))
        if suffix == ".json":
            return msgspec.json.decode(data)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, msgspec.DecodeError) as exc:
        kind = "TOML" if suffix == ".toml" else "JSON"
        raise InvalidDialect(f"{path}: not valid {kind}: {exc}") from exc
    raise InvalidDialect(f"{path}: a dialect file must end in .toml or .json")


def _build(spec: _DialectFile, path: Path) -> Dialect:
    containers: Dialect | None = None
    if isinstance(spec.containers, str):
        from . import dialect as find_dialect  # noqa: PLC0415  (the registry imports this module)

        try:
            containers = find_dialect(spec.containers)
        except UnknownDialect as exc:
            raise InvalidDialect(f"{path}: containers: {exc}") from exc
    elif spec.containers is not None:
        containers = _build(spec.containers, path)
    states = [
        State(s) if isinstance(s, str) else State(s.name, s.outcome, s.description, s.extension)
        for s in spec.states
    ]
    transitions = [
        {
            "trigger": t.trigger,
            "source": t.source,
            "dest": t.dest,
            **({"when": t.when} if t.when else {}),
            **({"label": t.label} if t.label else {}),
            **({"extension": True} if t.extension else {}),
        }
        for t in spec.transitions
    ]
    return Dialect(
        name=spec.name,
        states=states,
        initial=spec.initial,
        transitions=transitions,
        tolerate=spec.tolerate,
        operations=spec.operations,
        containers=containers,
        container_operations=spec.container_operations,
        aggregation=spec.aggregation,
        description=spec.description,
    )


def load_dialect(path: str | os.PathLike[str]) -> Dialect:
    """The dialect declared in a ``.toml`` or ``.json`` file (see the module docs for the
    shape). It is validated like any declaration, but not registered: pass it to
    ``lifecycle.register_dialect`` to make runs of it. Raises ``InvalidDialect`` naming the
    file and the problem."""
    file = Path(path)
    raw = _read(file)
    try:
        spec = msgspec.convert(raw, _DialectFile)
    except msgspec.ValidationError as exc:
        raise InvalidDialect(f"{file}: {exc}") from exc
    try:
        return _build(spec, file)
    except InvalidDialect as exc:
        raise InvalidDialect(f"{file}: {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:  # a value of the wrong shape
        raise InvalidDialect(f"{file}: {exc}") from exc
