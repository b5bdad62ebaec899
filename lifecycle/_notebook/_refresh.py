"""``Poller``: the explorer's background refresh while a run it shows is still active.

A daemon thread calls ``tick()`` every ``interval`` seconds until :meth:`Poller.stop` (the widget
stops it when it is closed). ``tick`` decides whether there is anything to fetch, so an idle
explorer costs a wake-up, not a query. An exception in ``tick`` goes to ``on_error`` and the
polling goes on: a store briefly locked by a writer is no reason to stop refreshing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Poller"]


class Poller:
    """Call ``tick()`` every ``interval`` seconds in a daemon thread, from :meth:`start` until
    :meth:`stop`."""

    def __init__(
        self,
        tick: Callable[[], None],
        interval: float = 2.0,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval}")
        self.tick = tick
        self.interval = interval
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start polling (once: a stopped poller stays stopped)."""
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._loop, name="lifecycle-explorer-refresh", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for a tick in progress to end."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:
                if self.on_error is not None:
                    self.on_error(exc)
