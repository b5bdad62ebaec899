"""What the engine runs: containers, their dependencies, and placeholders for upstream results.

:class:`Container` is what a user hands to :meth:`Engine.submit` (contract: ``name``, ``command``
or ``call``, ``depends_on``, ``timeout``, ``memory_limit``, ``env``). :class:`ContainerSpec` is
what an adapter is asked to execute: one container of one run, with every :class:`Upstream`
placeholder already replaced by the value it stands for. :func:`plan` checks a whole submission
(names, dependencies, cycles) before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

__all__ = ["Container", "ContainerSpec", "Upstream", "placeholders", "plan", "resolve_args"]


@dataclass(frozen=True, slots=True)
class Upstream:
    """Stands for the stored result of container ``name``: of the same run (then ``name`` is an
    implicit dependency), or of run ``run_id`` (a result cached by another run or workflow).

    Put it anywhere in ``Container.args`` / ``kwargs`` (also inside lists, tuples and dicts); the
    engine replaces it with the decoded result just before the callable runs. A container that
    stored nothing (it returned ``None``) resolves to ``None``.
    """

    name: str
    run_id: int | None = None


@dataclass(frozen=True, slots=True)
class Container:
    """One unit of work of a run: an OS ``command`` or a Python ``call`` (with ``args`` and
    ``kwargs``), run once every container in ``depends_on`` has succeeded.

    ``timeout`` (seconds) bounds the execution: past it the work is stopped and the container
    ends ``InfrastructureFailed(reason="timeout")``. ``memory_limit`` (bytes) is enforced by
    adapters that can (``subprocess``: ``RLIMIT_AS``); exceeding it ends ``OutOfMemory``. ``env``
    is added to the inherited environment of a command.

    ``cached_from=RUN_ID`` reuses the result this container stored in that (terminal) run: the
    engine records the start sequence, the original ``ResultStored`` and
    ``ExecutionSucceeded(cached_from=...)`` without executing anything (resume / rerun from a task).

    Raises ``ValueError`` / ``TypeError`` for a spec that cannot run (no name, both or neither of
    ``command`` and ``call``, a non-positive timeout or limit).
    """

    name: str
    _: KW_ONLY
    command: Sequence[str | os.PathLike[str]] | None = None
    call: Callable[..., Any] | None = None
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    depends_on: Sequence[str] = ()
    timeout: float | None = None
    memory_limit: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cached_from: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"a container needs a non-empty name without '/', not {self.name!r}")
        if (self.command is None) == (self.call is None) and self.cached_from is None:
            raise ValueError(
                f"container {self.name!r}: give exactly one of command= (an OS command) "
                "or call= (a Python callable)"
            )
        if self.command is not None:
            if isinstance(self.command, str | bytes) or not self.command:
                raise TypeError(
                    f"container {self.name!r}: command= is a non-empty list of arguments, "
                    f"e.g. ['echo', 'hi'], not {self.command!r}"
                )
            object.__setattr__(self, "command", tuple(os.fspath(a) for a in self.command))
        if self.call is not None and not callable(self.call):
            raise TypeError(f"container {self.name!r}: call= must be callable, not {self.call!r}")
        if isinstance(self.depends_on, str):
            object.__setattr__(self, "depends_on", (self.depends_on,))
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "kwargs", dict(self.kwargs))
        object.__setattr__(self, "env", {str(k): str(v) for k, v in self.env.items()})
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"container {self.name!r}: timeout must be > 0 seconds")
        if self.memory_limit is not None and not self.memory_limit > 0:
            raise ValueError(f"container {self.name!r}: memory_limit must be > 0 bytes")

    @property
    def kind(self) -> Literal["command", "call"]:
        """``command`` or ``call``: what an adapter must be able to run."""
        return "command" if self.command is not None else "call"

    @property
    def requires(self) -> tuple[str, ...]:
        """``depends_on`` plus the containers of this run its ``Upstream`` placeholders name."""
        extra = [p.name for p in placeholders((self.args, self.kwargs)) if p.run_id is None]
        return tuple(dict.fromkeys([*self.depends_on, *extra]))


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What an adapter executes: one container of run ``run_id``, placeholders resolved.

    Exactly one of ``command`` (argv) and ``call`` is set. ``env`` is added to the inherited
    environment; ``memory_limit`` is in bytes (``None``: no limit).
    """

    run_id: int
    name: str
    command: tuple[str, ...] | None = None
    call: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    memory_limit: int | None = None

    @property
    def kind(self) -> Literal["command", "call"]:
        return "command" if self.command is not None else "call"


def placeholders(value: Any) -> Iterator[Upstream]:
    """Every :class:`Upstream` inside ``value`` (lists, tuples and dict values are searched)."""
    if isinstance(value, Upstream):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from placeholders(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from placeholders(item)


def resolve_args(value: Any, lookup: Callable[[Upstream], Any]) -> Any:
    """``value`` with every :class:`Upstream` replaced by ``lookup(placeholder)``; containers
    without placeholders are returned as they are (no copy)."""
    if isinstance(value, Upstream):
        return lookup(value)
    if isinstance(value, list | tuple):
        items = [resolve_args(v, lookup) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else type(value)(items)
    if isinstance(value, dict):
        resolved = {k: resolve_args(v, lookup) for k, v in value.items()}
        if all(resolved[k] is v for k, v in value.items()):
            return value
        return resolved
    return value


def plan(containers: Sequence[Container]) -> list[str]:
    """Check a submission and return its container names in an order where every container comes
    after what it requires. Raises ``ValueError`` naming the problem: a duplicate name, a
    dependency on a container that is not submitted, or a dependency cycle (with its path)."""
    if not containers:
        raise ValueError("submit at least one container")
    by_name: dict[str, Container] = {}
    for c in containers:
        if not isinstance(c, Container):
            raise TypeError(f"containers must be lifecycle.Container, not {c!r}")
        if c.name in by_name:
            raise ValueError(f"two containers are named {c.name!r}; names must be unique")
        by_name[c.name] = c
    for c in containers:
        for dep in c.requires:
            if dep not in by_name:
                raise ValueError(
                    f"container {c.name!r} depends on {dep!r}, which is not submitted "
                    f"(containers: {', '.join(by_name)})"
                )
            if dep == c.name:
                raise ValueError(f"container {c.name!r} depends on itself")
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root, container in by_name.items():
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(container.requires))]
        state[root] = 1
        while stack:
            name, deps = stack[-1]
            nxt: str | None = next(deps, None)
            if nxt is None:
                stack.pop()
                state[name] = 2
                order.append(name)
            elif state.get(nxt) == 1:
                path = [n for n, _ in stack]
                cycle = [*path[path.index(nxt) :], nxt]
                raise ValueError(f"dependency cycle: {' -> '.join(cycle)} (-> reads 'depends on')")
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(by_name[nxt].requires)))
    return order
