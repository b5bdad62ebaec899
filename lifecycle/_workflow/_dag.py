"""``@task`` and ``@workflow``: a workflow body, called, builds a DAG instead of running.

Inside a ``@workflow`` body, calling a ``@task`` function records a *call* and returns a
:class:`TaskCall` placeholder. A placeholder passed to another task call is a dependency edge
(also inside a ``list``, ``tuple`` or ``dict`` argument, and through ``*args``: fan-in); any other
argument is a constant input. ``.alias(name)`` renames a call: its display name, container name
and the name logs and results are addressed by. Names are checked when the body returns, so the
same task called twice without an alias is an error naming the task.

Outside a workflow body a task is a plain function: ``add(1, 2) == 3``. That keeps task functions
unit-testable, and it is also how a task runs once the engine calls it.

Task ids (``run_details(...)["tasks"][i]["id"]``) are ``"{name}@{digest}"``, the digest a hash of
what defines the call: its name, the function's module, qualified name and source, its constant
inputs, its upstream names and its options. The same definition keeps its id from run to run (so
an id from one run addresses the same task in another run of that version); a changed task gets
a new id, and the old id still addresses the old runs.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import inspect
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, ParamSpec, TypeVar, overload

from lifecycle._schedule import Schedule

from ._errors import WorkflowError
from ._ids import Ref, parse_memory, task_id

__all__ = [
    "Dag",
    "Ref",
    "Task",
    "TaskCall",
    "TaskSpec",
    "WorkflowError",
    "build_dag",
    "task",
    "where",
]

P = ParamSpec("P")
R = TypeVar("R")


_BUILDER: Final[contextvars.ContextVar[_Builder | None]] = contextvars.ContextVar(
    "lifecycle_workflow_builder", default=None
)


class Task(Generic[P, R]):
    """A function decorated with ``@task()``: a node type of workflows, a plain function
    elsewhere. ``timeout`` (seconds) and ``memory_limit`` (bytes or ``"512Mi"``) go to the
    engine; ``env`` is extra environment for adapters that start processes."""

    __name__: str
    __qualname__: str

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        timeout: float | None = None,
        memory_limit: int | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@task() decorates a function, not {fn!r}")
        self.fn = fn
        self.name = _check_name(name or fn.__name__, "task name")
        self.timeout = _check_timeout(timeout, self.name)
        self.memory_limit = parse_memory(memory_limit)
        self.env = dict(env or {})
        functools.update_wrapper(self, fn)

    @property
    def function(self) -> str:
        """``module.qualname`` of the decorated function (what runs record)."""
        return f"{self.fn.__module__}.{self.fn.__qualname__}"

    # Any in, Any out: inside a workflow body the arguments are TaskCalls and so is the result
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = _BUILDER.get()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        # by reference, like a function: the module attribute is this Task, not self.fn
        return (_import_attr, (self.fn.__module__, self.fn.__qualname__))

    def __repr__(self) -> str:
        return f"<task {self.name} ({self.function})>"


def _import_attr(module: str, qualname: str) -> Any:
    import importlib  # noqa: PLC0415  (only when unpickling in another process)

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    name: str | None = None,
    timeout: float | None = None,
    memory_limit: int | str | None = None,
    env: Mapping[str, str] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    timeout: float | None = None,
    memory_limit: int | str | None = None,
    env: Mapping[str, str] | None = None,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function a workflow task: ``@task()`` (as the seed writes it) or ``@task``."""
    if fn is not None:
        return Task(fn)

    def decorate(f: Callable[P, R]) -> Task[P, R]:
        return Task(f, name=name, timeout=timeout, memory_limit=memory_limit, env=env)

    return decorate


def _check_timeout(timeout: float | None, task: str) -> float | None:
    """A timeout in seconds, checked where the task is defined rather than when it runs."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not timeout > 0
    ):
        raise WorkflowError(
            f"task {task!r}: timeout must be a positive number of seconds, not {timeout!r}"
        )
    return timeout


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise WorkflowError(f"{what} must be a non-empty string without '/', not {name!r}")
    return name


class TaskCall:
    """A task call recorded while a workflow body runs: a placeholder for its result.

    Pass it to other task calls (that is the dependency edge) and rename it with ``.alias()``.
    Its value does not exist until the workflow runs, so using it in Python code of the body
    (``if``, ``for``, indexing) is an error that says so.
    """

    __slots__ = ("_builder", "args", "kwargs", "name", "task")

    def __init__(
        self, builder: _Builder, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self._builder = builder
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.name = task.name

    def alias(self, name: str) -> TaskCall:
        """Give this call a distinct name (the same task called several times needs one each)."""
        if self._builder.done:
            raise WorkflowError(f"alias({name!r}) after the workflow body returned")
        self.name = _check_name(name, "alias")
        return self

    def _misuse(self, *_: Any, **__: Any) -> Any:
        raise WorkflowError(
            f"the result of task {self.name!r} does not exist while the workflow is being "
            "defined: pass it to another task instead of using it in the workflow body"
        )

    __bool__ = __iter__ = __len__ = __getitem__ = __contains__ = _misuse
    __int__ = __float__ = __index__ = _misuse

    def __repr__(self) -> str:
        return f"<task call {self.name} of {self.task.function}>"


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task of a built DAG: what runs, with which inputs, after which tasks."""

    id: str
    name: str
    task: Task[Any, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    depends_on: tuple[str, ...]

    @property
    def function(self) -> str:
        return self.task.function

    def record(self) -> dict[str, Any]:
        """The task as runs record it in ``Requested.params["workflow"]["tasks"]``."""
        return {
            "id": self.id,
            "name": self.name,
            "function": self.function,
            "depends_on": list(self.depends_on),
            "file": inspect.getsourcefile(self.task.fn) or "",
            "timeout": self.task.timeout,
            "memory_limit": self.task.memory_limit,
        }


@dataclass(frozen=True)
class Dag:
    """A built workflow: tasks in the order the body called them (a topological order)."""

    name: str
    tasks: dict[str, TaskSpec]
    fingerprint: str
    function: str = ""
    file: str = ""
    schedule: Schedule | None = None  # when it runs by itself (not part of the fingerprint)
    _down: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for spec in self.tasks.values():
            self._down.setdefault(spec.name, [])
            for up in spec.depends_on:
                self._down.setdefault(up, []).append(spec.name)

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(self.tasks.values())

    def __len__(self) -> int:
        return len(self.tasks)

    def downstream(self, names: Iterator[str] | list[str] | set[str]) -> set[str]:
        """``names`` and every task that depends on them, directly or not."""
        seen: set[str] = set()
        stack = [n for n in names if n in self.tasks]
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self._down.get(name, ()))
        return seen

    def definition(self) -> list[dict[str, Any]]:
        """The tasks as recorded on runs and in the version registry."""
        return [spec.record() for spec in self.tasks.values()]

    def to_mermaid(self) -> str:
        """The graph as the seed draws it (``graph LR``), constants as circles."""
        lines = ["graph LR"]
        for spec in self.tasks.values():
            for up in spec.depends_on:
                lines.append(f"    {_mid(up)}[{up}] --> {_mid(spec.name)}[{spec.name}]")
            for i, value in enumerate(_constants(spec.args, spec.kwargs)):
                node = f"{_mid(spec.name)}_c{i}"
                lines.append(f"    {node}(({value!r})) --> {_mid(spec.name)}[{spec.name}]")
            if not spec.depends_on and not _constants(spec.args, spec.kwargs):
                lines.append(f"    {_mid(spec.name)}[{spec.name}]")
        return "\n".join(lines)


def _mid(name: str) -> str:
    return "t_" + re.sub(r"\W", "_", name)


def _constants(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    return [v for v in (*args, *kwargs.values()) if not isinstance(v, Ref) and not _has_ref(v)]


def _has_ref(value: Any) -> bool:
    if isinstance(value, Ref):
        return True
    if type(value) in (list, tuple):
        return any(_has_ref(v) for v in value)
    if type(value) is dict:
        return any(_has_ref(v) for v in value.values())
    return False


# -- building -------------------------------------------------------------------------------------


class _Builder:
    """Collects the task calls of one run of a workflow body."""

    def __init__(self, workflow: str) -> None:
        self.workflow = workflow
        self.calls: list[TaskCall] = []
        self.done = False

    def add(self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskCall:
        for value in (*args, *kwargs.values()):
            self._check(value)
        call = TaskCall(self, task, args, kwargs)
        self.calls.append(call)
        return call

    def _check(self, value: Any) -> None:
        if isinstance(value, TaskCall) and value._builder is not self:
            raise WorkflowError(
                f"task call {value.name!r} belongs to another workflow definition; "
                "a task call can only be passed to tasks of the same workflow body"
            )
        if type(value) in (list, tuple):
            for v in value:
                self._check(v)
        elif type(value) is dict:
            for v in value.values():
                self._check(v)


def _refs(value: Any, found: list[str]) -> Any:
    """``value`` with every ``TaskCall`` replaced by a ``Ref`` (their names added to ``found``)."""
    if isinstance(value, TaskCall):
        found.append(value.name)
        return Ref(value.name)
    if type(value) is list:
        return [_refs(v, found) for v in value]
    if type(value) is tuple:
        return tuple(_refs(v, found) for v in value)
    if type(value) is dict:
        return {k: _refs(v, found) for k, v in value.items()}
    return value


def _check_unique(workflow: str, calls: list[TaskCall]) -> None:
    """Two calls may not share a name: the same task called twice without ``.alias()``, or an
    alias given twice (or one equal to another call's task name). The error says which."""
    by_name: dict[str, list[TaskCall]] = {}
    for call in calls:
        by_name.setdefault(call.name, []).append(call)
    clashes = {n: group for n, group in by_name.items() if len(group) > 1}
    if not clashes:
        return
    first, group = next(iter(clashes.items()))
    also = list(clashes)[1:]
    tail = f" (also used more than once: {', '.join(map(repr, also))})" if also else ""
    if all(call.name == call.task.name for call in group):
        raise WorkflowError(
            f"task {first!r} is called {len(group)} times in workflow {workflow!r}: give each "
            f"call a distinct name with .alias(), e.g. {first}(...).alias('{first}_2'){tail}"
        )
    users = ", ".join(
        f"task {call.task.name!r}" + (" (its own name)" if call.name == call.task.name else "")
        for call in group
    )
    raise WorkflowError(
        f"alias {first!r} is used by {len(group)} task calls in workflow {workflow!r}: {users}; "
        f"give each call a distinct alias{tail}"
    )


def where(exc: BaseException) -> str:
    """`` (file.py, line N)``: where in the user's code ``exc`` was raised (the innermost frame
    outside this package and the import machinery), or ``""``."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return ""  # its message says where already
    package = Path(__file__).resolve().parents[1]
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<") and package not in Path(filename).resolve().parents:
            found = f" ({Path(filename).name}, line {tb.tb_lineno})"
        tb = tb.tb_next
    return found


def build_dag(
    name: str,
    body: Callable[[], Any],
    *,
    function: str = "",
    file: str = "",
    schedule: Schedule | None = None,
) -> Dag:
    """Run a workflow body with task calls recorded, and check and freeze what it built.

    Raises :class:`WorkflowError` when the body calls no task, when two calls share a name (the
    same task called twice without ``.alias()``), or when a call belongs to another body.
    """
    if _BUILDER.get() is not None:
        raise WorkflowError(f"workflow {name!r} is called inside another workflow body")
    builder = _Builder(name)
    token = _BUILDER.set(builder)
    try:
        body()
    except WorkflowError:
        raise
    except Exception as exc:  # the user's code: said in one line, where it raised
        raise WorkflowError(
            f"workflow {name!r}: its body raised {type(exc).__name__}: {exc}{where(exc)}"
        ) from exc
    finally:
        _BUILDER.reset(token)
        builder.done = True
    if not builder.calls:
        raise WorkflowError(f"workflow {name!r} calls no @task function: there is nothing to run")
    _check_unique(name, builder.calls)
    tasks: dict[str, TaskSpec] = {}
    for call in builder.calls:
        found: list[str] = []
        args = _refs(call.args, found)
        kwargs = _refs(call.kwargs, found)
        deps = tuple(dict.fromkeys(found))
        tasks[call.name] = TaskSpec(
            id=task_id(call.name, call.task, args, kwargs, deps),
            name=call.name,
            task=call.task,
            args=args,
            kwargs=kwargs,
            depends_on=deps,
        )
    digest = hashlib.sha256("\n".join(sorted(s.id for s in tasks.values())).encode())
    return Dag(
        name=name,
        tasks=tasks,
        fingerprint=digest.hexdigest(),
        function=function,
        file=file,
        schedule=schedule,
    )
