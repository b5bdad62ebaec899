"""Qualytics' run lifecycle (seed 003).

Queued → Running → Success, with Failure (an unrecoverable error) and Aborted (the user clicked
Abort). Promote skips Queued and starts in Running. Profile and Scan have a per-container layer
whose containers use the same five state names; a failed container does not fail the run, which
ends Success with the Warning indicator (aggregation ``warn``). The other operations fold all
their work into the run-level state and have no container streams.

Choices where the seed is silent:

- ``InfrastructureFailed`` also ends a Queued run in Failure, when it can never start
  (extension).
- Phases the seed does not model (resources, preparation, image pull, finishing, stop requests)
  are tolerated without a state change, so the engine's canonical sequence fits; because Promote
  starts in Running, ``ExecutionStarted`` is tolerated there too.
- **ContainerAdded** is an extension (issue 13): a Queued or Running profile or scan can gain a
  container its orchestrator decided on at run time; the run's state does not change. Operations
  without a container layer refuse it (the run service raises ``InvalidTransition``).
- **Requeued** is an extension (issue 13): a retry takes a Running run or container back to
  Queued; the views count the attempt. Unlike the other dialects, a second ``ExecutionStarted``
  in Running is tolerated (Promote starts in Running and the engine still records it), so record
  a retry as ``Requeued``: only then does the attempt count. A retry that then succeeds ends
  Success without the Warning indicator.
"""

from __future__ import annotations

from typing import Any

from ._declare import Dialect, State

OPERATIONS = ("sync", "profile", "scan", "external_scan", "export", "materialize", "promote")

_STATES = [
    State("Queued", description="waiting for a worker"),
    State("Running", description="a worker is processing the run"),
    State("Success", "succeeded", "all containers processed"),
    State("Failure", "failed", "an unrecoverable error"),
    State("Aborted", "cancelled", "the user clicked Abort"),
]
_TRANSITIONS: list[dict[str, Any]] = [
    {
        "trigger": "ExecutionStarted",
        "source": "Queued",
        "dest": "Running",
        "label": "worker picks up the Run",
    },
    {
        "trigger": "ExecutionSucceeded",
        "source": "Running",
        "dest": "Success",
        "label": "all containers processed",
    },
    {
        "trigger": ["ExecutionFailed", "OutOfMemory", "InfrastructureFailed"],
        "source": "Running",
        "dest": "Failure",
        "label": "unrecoverable error",
    },
    {
        "trigger": "InfrastructureFailed",
        "source": "Queued",
        "dest": "Failure",
        "label": "can never start",
        "extension": True,
    },
    {
        "trigger": "Stopped",
        "source": ["Queued", "Running"],
        "dest": "Aborted",
        "label": "user clicks Abort",
    },
    {
        "trigger": "Requeued",
        "source": "Running",
        "dest": "Queued",
        "extension": True,
    },
]
_TOLERATE = {
    "LogRecorded": ["Queued", "Running"],
    "StopRequested": ["Queued", "Running"],
    "StoppingStarted": ["Queued", "Running"],
    "ResourcesRequested": ["Queued", "Running"],
    "ResourcesAssigned": ["Queued", "Running"],
    "PreparationStarted": ["Queued", "Running"],
    "ImagePullStarted": ["Queued", "Running"],
    "ExecutionStarted": ["Running"],
    "FinishingStarted": ["Running"],
    "ResultStored": ["Running"],
}

container = Dialect(
    name="qualytics.container",
    states=_STATES,
    initial="Queued",
    transitions=_TRANSITIONS,
    tolerate=_TOLERATE,
)

qualytics = Dialect(
    name="qualytics",
    description="Qualytics runs: sync, profile, scan, external scan, export, materialize, promote.",
    states=_STATES,
    initial={"promote": "Running", "*": "Queued"},
    transitions=_TRANSITIONS,
    tolerate={**_TOLERATE, "ContainerAdded": ["Queued", "Running"]},
    operations=OPERATIONS,
    containers=container,
    container_operations=("profile", "scan"),
    aggregation="warn",
)
