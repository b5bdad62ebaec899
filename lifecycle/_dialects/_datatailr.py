"""Datatailr's compute-process lifecycle (seed 000); the tasks of a workflow are its containers.

Building → Ready → (Scheduled) → Pending → Starting → Running → Completed, with the failure states
Created (the build failed), Failed, Out of Memory and Expired.

Choices where the seed is silent:

- ``Requested(build=True)`` starts in Building; without a build, a process starts Ready.
- ``InfrastructureFailed`` ends any active state in Failed: no process stays active forever.
- ``ExecutionFailed`` and ``OutOfMemory`` are accepted from Starting as well as Running (code can
  fail while it loads).
- **Stopped** is an extension: the dashboard can stop a process, and the seed names no state for
  it. Tasks that can no longer start because an upstream task failed end Stopped too, with reason
  ``upstream_failed``.
- **ContainerAdded** is an extension (issue 13): in any active state a run can gain a task its
  orchestrator decided on at run time; the run's state does not change.
- **Requeued** is an extension (issue 13): a retry takes a Starting or Running process or task
  back to Pending; it starts again and the views count the attempt. A second
  ``ExecutionStarted`` without it is refused. A retry that then succeeds ends Completed without
  the Warning indicator.
- Phases the seed does not model (preparation, image pull, finishing, stop requests) are tolerated
  without a state change, so the engine's canonical sequence fits.

Tasks (the container machine): Pending → Starting → Running → Completed / Failed / Out of Memory /
Stopped. An in-process task needs no node, so Running is also reachable straight from Pending.
"""

from __future__ import annotations

from ._declare import Dialect, State

ACTIVE_LOGS = "*"

# A retry (issue 13): a task or process that started goes back to Pending and starts again.
_REQUEUED = {
    "trigger": "Requeued",
    "source": ["Starting", "Running"],
    "dest": "Pending",
    "extension": True,
}

task = Dialect(
    name="datatailr.task",
    states=[
        State("Pending", description="waiting for compute"),
        State("Starting", description="a node is assigned; the image is being prepared"),
        State("Running", description="the task's code is executing"),
        State("Completed", "succeeded", "finished successfully; the result is cached"),
        State("Failed", "failed", "the task raised or exited non-zero"),
        State("Out of Memory", "failed", "the task exceeded its memory allocation"),
        State(
            "Stopped",
            "cancelled",
            "stopped by a user, or could not start (upstream_failed)",
            extension=True,
        ),
    ],
    initial="Pending",
    transitions=[
        {"trigger": "ResourcesAssigned", "source": "Pending", "dest": "Starting"},
        {"trigger": "ExecutionStarted", "source": ["Pending", "Starting"], "dest": "Running"},
        {"trigger": "ExecutionSucceeded", "source": "Running", "dest": "Completed"},
        {"trigger": "ExecutionFailed", "source": ["Starting", "Running"], "dest": "Failed"},
        {"trigger": "InfrastructureFailed", "source": "*", "dest": "Failed"},
        {"trigger": "OutOfMemory", "source": ["Starting", "Running"], "dest": "Out of Memory"},
        {"trigger": "Stopped", "source": "*", "dest": "Stopped", "extension": True},
        _REQUEUED,
    ],
    tolerate={
        "LogRecorded": "*",
        "StopRequested": "*",
        "StoppingStarted": "*",
        "ResourcesRequested": ["Pending"],
        "PreparationStarted": ["Starting"],
        "ImagePullStarted": ["Starting"],
        "FinishingStarted": ["Running"],
        "ResultStored": ["Running"],
    },
)

datatailr = Dialect(
    name="datatailr",
    description="Datatailr compute processes: workflows, apps, services, Excel add-ins.",
    states=[
        State("Building", description="the code is packaged into a container image"),
        State("Created", "failed", "the build failed (bad dependency, syntax error)"),
        State("Ready", description="the image is built; ready to run"),
        State("Scheduled", description="waiting for the next scheduled time"),
        State("Pending", description="compute resources are being allocated"),
        State("Starting", description="a node is assigned; the image is downloading"),
        State("Running", description="the code is executing"),
        State("Completed", "succeeded", "finished successfully"),
        State("Failed", "failed", "the code threw an unhandled exception"),
        State("Out of Memory", "failed", "exceeded its memory allocation"),
        State("Expired", "cancelled", "the schedule's end date has passed"),
        State("Stopped", "cancelled", "stopped from the dashboard or CLI", extension=True),
    ],
    initial="Ready",
    transitions=[
        {
            "trigger": "Requested",
            "source": "[*]",
            "dest": "Building",
            "when": {"build": True},
            "label": "code uploaded",
        },
        {"trigger": "BuildSucceeded", "source": "Building", "dest": "Ready"},
        {"trigger": "BuildFailed", "source": "Building", "dest": "Created"},
        {"trigger": "ScheduleArmed", "source": "Ready", "dest": "Scheduled"},
        {"trigger": "ScheduleExpired", "source": ["Ready", "Scheduled"], "dest": "Expired"},
        {"trigger": "ResourcesRequested", "source": ["Ready", "Scheduled"], "dest": "Pending"},
        {"trigger": "ResourcesAssigned", "source": "Pending", "dest": "Starting"},
        {"trigger": "ExecutionStarted", "source": "Starting", "dest": "Running"},
        {"trigger": "ExecutionSucceeded", "source": "Running", "dest": "Completed"},
        {"trigger": "ExecutionFailed", "source": ["Starting", "Running"], "dest": "Failed"},
        {"trigger": "InfrastructureFailed", "source": "*", "dest": "Failed"},
        {"trigger": "OutOfMemory", "source": ["Starting", "Running"], "dest": "Out of Memory"},
        {"trigger": "Stopped", "source": "*", "dest": "Stopped", "extension": True},
        _REQUEUED,
    ],
    tolerate={
        "LogRecorded": "*",
        "ContainerAdded": "*",
        "StopRequested": "*",
        "StoppingStarted": "*",
        "BuildStarted": ["Building"],
        "ScheduleArmed": ["Scheduled"],
        "SchedulePaused": ["Ready", "Scheduled"],
        "ScheduleResumed": ["Ready", "Scheduled"],
        "PreparationStarted": ["Starting"],
        "ImagePullStarted": ["Starting"],
        "FinishingStarted": ["Running"],
        "ResultStored": ["Running"],
    },
    containers=task,
    aggregation="fail",
)
