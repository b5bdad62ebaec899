"""A user dialect for the read-model tests: one that only the programs writing its runs
register (the ``lifecycle`` command never does)."""

from __future__ import annotations

import lifecycle

__all__ = ["declare_acme"]


def declare_acme() -> lifecycle.Dialect:
    """A user dialect, as a program that writes its runs registers it."""
    return lifecycle.Dialect(
        name="acme",
        states=[
            lifecycle.State("Waiting"),
            lifecycle.State("Working"),
            lifecycle.State("Done", outcome="succeeded"),
        ],
        initial="Waiting",
        transitions=[
            {"trigger": "ExecutionStarted", "source": "Waiting", "dest": "Working"},
            {"trigger": "ExecutionSucceeded", "source": "Working", "dest": "Done"},
        ],
        tolerate={"LogRecorded": ["Waiting", "Working"]},
    )
