"""Progress while a workflow runs: a line per state change, or a live table on a terminal.

It watches the store, not the engine: it reads every record committed after the run was created
(``read_all``, one indexed range read per wake-up), keeps the records of the run's streams, and
folds them with the run's dialect. So it shows exactly what the history will say, and it works
for any engine and adapter.

Plain mode (stdout is not a terminal, or ``live=False``) prints one line per change::

    [run 12] fetch_data: Running
    [run 12] calculate_total: Failed (ZeroDivisionError: division by zero)

Live mode redraws a table in place (ANSI cursor movement, no dependency), at most ten times a
second; with more tasks than fit, it shows counts per state and the tasks that are active or
failed. Text from user code (task names, error messages) is stripped of control characters, so
it cannot move the cursor or change colours.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from typing import Final, TextIO

import anyio

from lifecycle import events as ev
from lifecycle._dialects import dialect as find_dialect
from lifecycle._stores import RunStore
from lifecycle._views import RunFold, parse_stream

__all__ = ["Progress", "clean"]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_COLOURS: Final = {
    "Completed": "32",
    "Running": "36",
    "Starting": "36",
    "Failed": "31",
    "Out of Memory": "31",
    "Stopped": "33",
}


def clean(text: str, limit: int = 120) -> str:
    """``text`` on one line, without control characters, at most ``limit`` characters."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Progress:
    """Shows the progress of one run on ``out`` (stdout by default).

    ``live=None`` picks the live table when ``out`` is a terminal, plain lines otherwise.
    """

    def __init__(
        self, out: TextIO | None = None, *, live: bool | None = None, refresh: float = 0.1
    ) -> None:
        self.out = out if out is not None else sys.stdout
        isatty = getattr(self.out, "isatty", None)
        self.live = bool(isatty and isatty()) if live is None else live
        self.refresh = refresh
        self._drawn = 0
        self._last_draw = 0.0
        self._started = time.monotonic()

    async def watch(
        self, store: RunStore, run_id: int, *, after: int = 0, poll: float = 0.2
    ) -> None:
        """Show the run's changes from position ``after`` on, until the run is terminal."""
        prefix = f"run-{run_id}"
        fold: RunFold | None = None
        position = after
        self._started = time.monotonic()
        while True:
            records = await store.read_all(after=position)
            for record in records:
                position = record.position
                stream = record.stream
                if not (stream == prefix or stream.startswith(prefix + "/")):
                    continue
                if fold is None:
                    if not isinstance(record.event, ev.Requested):
                        continue  # watching began late: wait for a view of our own
                    fold = RunFold(find_dialect(record.event.dialect), run_id)
                _, container = parse_stream(stream)
                acc = fold.stream(container)
                before = acc.state
                fold.apply(record)
                if acc.state != before and not self.live:
                    self._line(fold, container, acc.state)
            if fold is not None and self.live:
                self._draw(fold, force=fold.terminal)
            if fold is not None and fold.terminal:
                return
            with anyio.move_on_after(poll):
                await store.wait(position)

    # -- plain ------------------------------------------------------------------------------------

    def _line(self, fold: RunFold, container: str | None, state: str) -> None:
        if container is None:
            req = fold.run.requested
            name = req.name if req else ""
            acc = fold.run
        else:
            if fold.containers[container].version <= 1:
                return  # Pending at creation: the run's own line says it started
            name, acc = container, fold.containers[container]
        note = self._note(acc.reason, acc.cached_from, state)
        self.out.write(f"[run {fold.run_id}] {clean(name)}: {state}{note}\n")
        self.out.flush()

    @staticmethod
    def _note(reason: str | None, cached_from: int | None, state: str) -> str:
        if state == "Completed" and cached_from is not None:
            return f" (cached from run {cached_from})"
        if reason and state in ("Failed", "Out of Memory", "Stopped"):
            return f" ({clean(reason, 100)})"
        return ""

    # -- live -------------------------------------------------------------------------------------

    def _draw(self, fold: RunFold, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.refresh:
            return
        self._last_draw = now
        width, height = shutil.get_terminal_size((100, 30))
        req = fold.run.requested
        tasks = {name: fold.containers.get(name) for name in (req.containers if req else ())}
        states = [c.state if c else "Pending" for c in tasks.values()]
        done = sum(1 for c in tasks.values() if c is not None and c.outcome is not None)
        header = (
            f"run {fold.run_id}  {clean(req.name if req else '')}  "
            f"{self._badge(fold.run.state)}  {done}/{len(tasks)} tasks done  "
            f"{now - self._started:6.1f}s"
        )
        rows: list[str] = []
        room = max(height - 4, 3)
        names = list(tasks)
        if len(names) > room:
            counts: dict[str, int] = {}
            for s in states:
                counts[s] = counts.get(s, 0) + 1
            rows.append("  " + "  ".join(f"{self._badge(s)} {n}" for s, n in counts.items()))
            names = [
                n
                for n, c in tasks.items()
                if c is not None and c.state not in ("Pending", "Completed")
            ][: room - 1]
        pad = min(max((len(n) for n in names), default=10), 40)
        for name in names:
            c = tasks[name]
            state = c.state if c else "Pending"
            note = self._note(c.reason, c.cached_from, state) if c else ""
            rows.append(
                f"  {clean(name, 40):<{pad}}  {self._badge(state)}{clean(note, width - pad - 20)}"
            )
        frame = [header, *rows]
        out = self.out
        if self._drawn:
            out.write(f"\x1b[{self._drawn}F")  # back to the first line of the previous frame
        for line in frame:
            out.write("\x1b[2K" + line + "\n")
        for _ in range(self._drawn - len(frame)):
            out.write("\x1b[2K\n")  # blank out what the previous, longer frame left
        extra = max(self._drawn - len(frame), 0)
        if extra:
            out.write(f"\x1b[{extra}F")
        self._drawn = len(frame)
        out.flush()

    @staticmethod
    def _badge(state: str) -> str:
        colour = _COLOURS.get(state)
        return f"\x1b[{colour}m{state:<13}\x1b[0m" if colour else f"{state:<13}"
