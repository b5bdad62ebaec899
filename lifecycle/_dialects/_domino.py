"""Domino's run states (seed 002).

Queued → Scheduled → Preparing → (Building) → (Pulling) → Running → Finishing → Succeeded; a stop
goes StopRequested → Stopping → Stopped; Failed is a problem with the user's code, Error one
outside it.

Choices where the seed is silent:

- Building happens after Preparing and only with a custom environment; Pulling follows Preparing
  or Building; Running follows any of the three (cached images skip both).
- A run can succeed or fail from Finishing as well as Running.
- A stop can be requested in any active state before StopRequested; Stopped needs StopRequested
  first (the seed's order), Stopping is skipped when there is nothing to sync.
- ``InfrastructureFailed`` ends any active state in Error; ``BuildFailed``, ``ExecutionFailed``
  and ``OutOfMemory`` end in Failed.
- **ContainerAdded** is an extension (issue 13): in any active state a run can gain a container
  its orchestrator decided on at run time; the run's state does not change. (Recorded on a
  container stream it is refused by the run service: it is a run-level fact.)
- **Requeued** is an extension (issue 13): a retry takes a run from any state between Scheduled
  and Finishing back to Queued (not once a stop was requested: the stop wins). A second
  ``ExecutionStarted`` without it is refused. A retry that then succeeds ends Succeeded.
- Domino has no containers of its own: a run's containers follow the same machine.
"""

from __future__ import annotations

from ._declare import Dialect, State

_BEFORE_STOP = ["Queued", "Scheduled", "Preparing", "Building", "Pulling", "Running", "Finishing"]

domino = Dialect(
    name="domino",
    description="Domino runs.",
    states=[
        State("Queued", description="waiting for a machine of the hardware tier"),
        State("Scheduled", description="an executor acknowledged the run"),
        State("Preparing", description="project files are copied to the executor"),
        State("Building", description="the custom environment's image is built"),
        State("Pulling", description="the image is fetched"),
        State("Running", description="the code is executing"),
        State("Finishing", description="file changes are copied back"),
        State("Succeeded", "succeeded", "finished without error"),
        State("StopRequested", description="the request to stop was received"),
        State("Stopping", description="files are synced back before stopping"),
        State("Stopped", "cancelled", "manually stopped"),
        State("Failed", "failed", "a problem with the user's code"),
        State("Error", "failed", "a problem outside the user's code"),
    ],
    initial="Queued",
    transitions=[
        {"trigger": "ResourcesAssigned", "source": "Queued", "dest": "Scheduled"},
        {"trigger": "PreparationStarted", "source": "Scheduled", "dest": "Preparing"},
        {"trigger": "BuildStarted", "source": "Preparing", "dest": "Building"},
        {"trigger": "ImagePullStarted", "source": ["Preparing", "Building"], "dest": "Pulling"},
        {
            "trigger": "ExecutionStarted",
            "source": ["Preparing", "Building", "Pulling"],
            "dest": "Running",
        },
        {"trigger": "FinishingStarted", "source": "Running", "dest": "Finishing"},
        {"trigger": "ExecutionSucceeded", "source": ["Running", "Finishing"], "dest": "Succeeded"},
        {
            "trigger": ["ExecutionFailed", "OutOfMemory"],
            "source": ["Running", "Finishing"],
            "dest": "Failed",
        },
        {"trigger": "BuildFailed", "source": "Building", "dest": "Failed"},
        {"trigger": "InfrastructureFailed", "source": "*", "dest": "Error"},
        {"trigger": "StopRequested", "source": _BEFORE_STOP, "dest": "StopRequested"},
        {"trigger": "StoppingStarted", "source": "StopRequested", "dest": "Stopping"},
        {"trigger": "Stopped", "source": ["StopRequested", "Stopping"], "dest": "Stopped"},
        {
            "trigger": "Requeued",
            "source": _BEFORE_STOP[1:],
            "dest": "Queued",
            "extension": True,
        },
    ],
    tolerate={
        "LogRecorded": "*",
        "ContainerAdded": "*",
        "ResourcesRequested": ["Queued"],
        "BuildSucceeded": ["Building"],
        "ResultStored": ["Running", "Finishing"],
    },
    aggregation="fail",
)
domino.containers = domino
