"""The background refresh: a run still active is fetched again while the widget is open, and the
refresh stops when the widget is closed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from lifecycle import Runs
from lifecycle._notebook import Explorer, ExplorerWidget
from lifecycle._notebook._refresh import Poller


def test_the_poller_ticks_until_stopped() -> None:
    ticks: list[int] = []
    errors: list[BaseException] = []
    third = threading.Event()

    def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise RuntimeError("the store is busy")
        if len(ticks) == 3:
            third.set()

    poller = Poller(tick, interval=0.001, on_error=errors.append)
    poller.start()
    assert third.wait(30), "the poller stopped ticking"
    poller.stop()
    assert not poller.running
    assert [str(e) for e in errors] == ["the store is busy"]  # and it went on
    poller.start()  # a stopped poller stays stopped
    assert not poller.running
    with pytest.raises(ValueError, match="positive"):
        Poller(tick, interval=0)


def test_an_active_run_refreshes_while_the_widget_is_open(store: str) -> None:
    with Runs(store) as runs:
        active = runs.create("datatailr", operation="workflow", name="sales", containers=["x"])
        widget = ExplorerWidget(Explorer("sales", store=store), refresh_interval=0.01)
        poller = widget.poller
        assert poller is not None
        running = [poller.running]
        badge = widget.table.children[9]  # the first row's state
        assert "Stopped" not in badge.value
        active_before = widget.explorer.active
        stopped = threading.Event()

        def seen(_change: dict[str, Any]) -> None:
            if "Stopped" in widget.table.children[9].value:
                stopped.set()

        widget.table.observe(seen, names="children")
        runs.abort(active.id)
        assert stopped.wait(30), "the widget did not refresh the active run"
    assert (active_before, widget.explorer.active) == (True, False)  # nothing left to refresh
    widget.close()
    running.append(poller.running)
    assert running == [True, False]


def test_an_idle_widget_fetches_nothing(store: str) -> None:
    widget = ExplorerWidget(Explorer("sales", store=store), refresh_interval=None)
    assert widget.poller is None
    children = widget.table.children
    widget.tick()  # every run shown has ended: no refresh, no redraw
    assert widget.table.children is children
    widget.close()
