"""How the library logs: through structlog, without ever configuring logging globally.

structlog's defaults print every level to standard output, which is right for an application
and wrong for a library embedded in one. So :func:`get_logger` decides on first use: if the
application has configured structlog (``structlog.is_configured()``), log through that; if not,
log through the standard library's ``logging.getLogger(name)``, which an unconfigured
application shows only from WARNING up, on standard error. Context binds the same either way.

structlog itself is imported on the first log call, not with this module: the run service and the
leases import this module, and ``lifecycle job --help`` must not pay ~0.2 s for structlog.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["get_logger"]


class LibraryLogger:
    """A lazily resolved, bindable logger (see the module docstring)."""

    __slots__ = ("_bound", "_context", "_name")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}
        self._bound: Any = None

    def bind(self, **values: Any) -> LibraryLogger:
        return LibraryLogger(self._name, {**self._context, **values})

    def _logger(self) -> Any:
        if self._bound is None:
            import structlog  # noqa: PLC0415  (see the module docstring)

            if structlog.is_configured():
                base = structlog.get_logger(self._name)
            else:
                base = structlog.wrap_logger(
                    logging.getLogger(self._name),
                    processors=[
                        structlog.stdlib.filter_by_level,
                        structlog.processors.format_exc_info,
                        structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
                    ],
                    wrapper_class=structlog.stdlib.BoundLogger,
                )
            self._bound = base.bind(**self._context)
        return self._bound

    def debug(self, event: str, **values: Any) -> None:
        self._logger().debug(event, **values)

    def info(self, event: str, **values: Any) -> None:
        self._logger().info(event, **values)

    def warning(self, event: str, **values: Any) -> None:
        self._logger().warning(event, **values)

    def error(self, event: str, **values: Any) -> None:
        self._logger().error(event, **values)

    def exception(self, event: str, **values: Any) -> None:
        self._logger().exception(event, **values)


def get_logger(name: str) -> LibraryLogger:
    """The logger for one part of the library (``lifecycle.engine``, …)."""
    return LibraryLogger(name)
