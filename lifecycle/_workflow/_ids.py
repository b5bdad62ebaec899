"""Identity of what a workflow runs: task ids, the canonical bytes of constant inputs, and
memory sizes.

A task id is ``"{name}@{digest}"``; the digest hashes the call's name, the function's module,
qualified name and source, its constant inputs (canonical bytes: deterministic JSON where msgspec
can encode them, else a pickle digest, else the repr without memory addresses), its upstream
names and its options. So an id is stable from run to run and process to process while the
definition stays the same, and changes when it does.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import marshal
import pickle
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ._errors import WorkflowError

if TYPE_CHECKING:
    from ._dag import Task

__all__ = ["Ref", "canonical", "parse_memory", "task_id"]


class Ref:
    """Where a task's input is an upstream task's result (a plain class, so that the
    canonical encoding cannot mistake it for a constant dataclass or dict)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("Ref", self.name))

    def __repr__(self) -> str:
        return f"Ref({self.name!r})"


_UNITS: Final = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "ki": 2**10,
    "kib": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mi": 2**20,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gi": 2**30,
    "gib": 2**30,
    "t": 10**12,
    "tb": 10**12,
    "ti": 2**40,
    "tib": 2**40,
}


def parse_memory(value: int | str | None) -> int | None:
    """A memory limit in bytes from ``512 * 2**20``, ``"512Mi"``, ``"2G"`` or ``"1.5GiB"``."""
    if value is None or isinstance(value, int):
        if isinstance(value, int) and value <= 0:
            raise WorkflowError(f"memory_limit must be positive, not {value}")
        return value
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise WorkflowError(
            f"memory_limit {value!r} is not a size: use bytes or e.g. '512Mi', '2G', '1.5GiB'"
        )
    return int(float(match.group(1)) * _UNITS[unit])


_ADDRESS: Final = re.compile(r" at 0x[0-9a-fA-F]+")


def _fallback(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}:{_ADDRESS.sub('', repr(value))}"


def canonical(value: Any) -> bytes:
    """Deterministic bytes for a constant input (so the same constants keep the same version):
    deterministic JSON where msgspec can encode it, else a pickle digest, else the repr without
    memory addresses."""

    def hook(obj: Any) -> Any:
        if isinstance(obj, Ref):
            return {"$task": obj.name}
        raise NotImplementedError

    try:
        return bytes(msgspec.json.encode(value, enc_hook=hook, order="deterministic"))
    except (TypeError, ValueError, NotImplementedError, OverflowError):
        pass
    try:
        return b"pickle:" + hashlib.sha256(pickle.dumps(value, protocol=5)).hexdigest().encode()
    except Exception:
        return _fallback(value).encode()


@functools.cache
def _source_digest(fn: Callable[..., Any]) -> str:
    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = marshal.dumps(code) if code is not None else repr(fn).encode()
    return hashlib.sha256(text).hexdigest()


def task_id(name: str, spec_task: Task[Any, Any], args: Any, kwargs: Any, deps: Any) -> str:
    h = hashlib.sha256()
    for part in (
        name.encode(),
        spec_task.function.encode(),
        _source_digest(spec_task.fn).encode(),
        canonical(args),
        canonical(kwargs),
        canonical(sorted(deps)),
        canonical([spec_task.timeout, spec_task.memory_limit, spec_task.env]),
    ):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return f"{name}@{h.hexdigest()[:12]}"
