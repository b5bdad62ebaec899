"""The workflow SDK's error."""

from __future__ import annotations

from lifecycle._errors import LifecycleError

__all__ = ["WorkflowError"]


class WorkflowError(LifecycleError, ValueError):
    """A workflow definition or a call of the workflow API that cannot work; the message says
    which task and what to do. A ``ValueError`` too, as the seed's SDK documents."""
