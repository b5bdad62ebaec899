"""Deploying a workflow (issue 16, second part): seed 000's Building → Ready, or Created.

``deploy(runs, "pipeline.py:daily_sales_report")`` records a ``datatailr`` run of operation
``deploy`` named after the workflow, with ``build=True`` (so it starts in **Building**), runs a
real build in a fresh Python process (``_build``: import the file, build the DAG — a syntax
error or a module that is not installed fails there), and records its output as the run's log,
then ``BuildSucceeded`` (**Ready**) or ``BuildFailed`` (**Created**, the failure's last line as
the reason). The definition — tasks, function, file, schedule — goes in the run's params, as a
workflow run records it, and gets a ``job_version`` by the usual rules (``_version``).

Deploying again what is already deployed — the same definition and schedule, Ready or
Scheduled — records nothing (``changed=False``). A changed file gets a new version, and the deploy
run it replaces ends ``Stopped`` (``redeployed``), with the run it had armed for its next time.
The scheduler (``_scheduler``) arms and fires the job's schedule.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

import anyio
import msgspec

from lifecycle import events as ev
from lifecycle._runs import AsyncRuns
from lifecycle._schedule import as_schedule
from lifecycle._views import run_stream

from ._scheduler import last_fired, retire
from ._version import register_version

__all__ = ["Deployment", "deploy"]

OPERATION = "deploy"
MAX_LOG_LINES = 2000


class Deployment(msgspec.Struct, frozen=True, kw_only=True):
    """What ``deploy`` did: the job, its deploy run and state (``Ready`` — ``Scheduled`` when an
    unchanged deploy finds it armed — or ``Created``), the
    definition's ``job_version`` (``None`` when the build failed), whether anything was recorded,
    and the build log."""

    name: str
    run_id: int
    state: str
    job_version: int | None
    changed: bool
    log: str


class _Built:
    """A built definition as ``register_version`` reads a DAG."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.name = str(definition["name"])
        self.fingerprint = str(definition["fingerprint"])
        self.function = str(definition.get("function") or "")
        self.file = str(definition.get("file") or "")
        self._tasks: list[dict[str, Any]] = list(definition["tasks"])

    def definition(self) -> list[dict[str, Any]]:
        return self._tasks


async def deploy(
    runs: AsyncRuns,
    target: str,
    *,
    schedule: object = None,
    python: str = sys.executable,
    build_seconds: float = 300.0,
) -> Deployment:
    """Deploy workflow ``target`` (``FILE.py`` or ``FILE.py:NAME``); see the module docstring.
    ``schedule`` (a cron string or ``Schedule``) replaces the one the decorator gave; a build
    that takes longer than ``build_seconds`` is killed and raises ``TimeoutError``."""
    chosen = as_schedule(schedule)  # a bad schedule fails before anything is recorded
    with anyio.fail_after(build_seconds):
        done = await anyio.run_process(
            [python, "-m", "lifecycle._workflow._build", target], check=False
        )
    log = done.stderr.decode("utf-8", "replace")
    if done.returncode == 0:
        definition = json.loads(done.stdout)
        if chosen is not None:
            definition["schedule"] = chosen.to_dict()
        return await _record_ready(runs, definition, log)
    return await _record_failed(runs, target, log)


ACTIVE: Final = ("Ready", "Scheduled")
"""The states of a deploy run that is the job's current one."""


async def _active_deploys(runs: AsyncRuns, name: str) -> list[tuple[int, ev.Requested]]:
    """The job's deploy runs still active (normally one), newest first, with their request."""
    found = []
    for row in await runs.list(name=name):
        if row.operation == OPERATION and row.state in ACTIVE:
            head = await runs.store.read([run_stream(row.run_id)])
            first = head[0].event if head else None
            if isinstance(first, ev.Requested):
                found.append((row.run_id, first))
    return found


async def _record_ready(runs: AsyncRuns, definition: dict[str, Any], log: str) -> Deployment:
    name = str(definition["name"])
    active = await _active_deploys(runs, name)
    if active and active[0][1].params.get("workflow") == definition:
        run_id, previous = active[0]
        for old, _ in active[1:]:  # left by a deploy that died before it retired them
            await retire(runs, old, by="deploy", reason=f"redeployed as run {run_id}")
        return Deployment(
            name=name,
            run_id=run_id,
            state=(await runs.get(run_id)).state,
            job_version=previous.job_version,
            changed=False,
            log=log,
        )
    version = await register_version(runs.store, _Built(definition))  # type: ignore[arg-type]
    params: dict[str, Any] = {"workflow": definition}
    fired = [await last_fired(runs, old) for old, _ in active]
    if any(fired):  # the new version goes on after the last time the old one fired
        params["after"] = max(t for t in fired if t is not None).isoformat()
    run = await runs.create(
        "datatailr",
        operation=OPERATION,
        name=name,
        build=True,
        job_version=version,
        params=params,
    )
    facts: list[ev.Fact] = [ev.BuildStarted(), *_lines(log, "info"), ev.BuildSucceeded()]
    await runs.record(run.id, facts)
    for old, _ in active:  # the new version replaces them (and the runs they armed)
        await retire(runs, old, by="deploy", reason=f"redeployed as run {run.id}")
    return Deployment(
        name=name, run_id=run.id, state="Ready", job_version=version, changed=True, log=log
    )


async def _record_failed(runs: AsyncRuns, target: str, log: str) -> Deployment:
    head, _, wanted = target.partition(":")
    name = wanted or Path(head).stem
    lines = [line for line in log.splitlines() if line.strip()]
    reason = lines[-1].strip() if lines else "the build failed"
    run = await runs.create(
        "datatailr", operation=OPERATION, name=name, build=True, params={"target": target}
    )
    facts: list[ev.Fact] = [ev.BuildStarted(), *_lines(log, "error"), ev.BuildFailed(reason=reason)]
    await runs.record(run.id, facts)
    return Deployment(
        name=name, run_id=run.id, state="Created", job_version=None, changed=True, log=log
    )


def _lines(log: str, level: str) -> list[ev.Fact]:
    lines = log.splitlines()
    if len(lines) > MAX_LOG_LINES:
        cut = len(lines) - MAX_LOG_LINES
        lines = [f"[{cut} earlier lines of the build log left out]", *lines[-MAX_LOG_LINES:]]
    return [ev.LogRecorded(text=line, stream="stderr", level=level) for line in lines]
