"""Rendering for the CLI: safe text, state badges, the history strip, times, tables.

Everything that came from a store — job and task names, reasons, log text — is *data*. It is
turned into :class:`rich.text.Text` objects (never markup strings, so ``[bold red]x[/bold red]``
prints as those characters), and control characters are neutralised first: every C0/C1 control
character except tab and newline (so ESC, BEL, CR, backspace, DEL), and the Unicode bidi and
line-separator controls, is shown as its escape (``\\x1b``, ``\\u202e``) instead of reaching the
terminal. ``--json`` output keeps the exact text (JSON escapes it).

Rich is imported lazily by the functions that need it, so importing the CLI stays light.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = [
    "badge",
    "console",
    "fmt_age",
    "fmt_clock",
    "fmt_duration",
    "fmt_end",
    "fmt_time",
    "history_strip",
    "neutralise",
    "print_json",
    "run_id_cell",
    "safe",
]

_BIDI: Final = "\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE_MULTILINE: Final = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_LINE: Final = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")

WARNING_MARK: Final = "⚠"
_PIPE_WIDTH: Final = 200

# outcome → (badge style, strip glyph, strip style); None is an active run
_OUTCOME: Final[dict[str | None, tuple[str, str, str]]] = {
    "succeeded": ("bold black on green", "✓", "bold green"),
    "failed": ("bold white on red", "✗", "bold red"),
    "cancelled": ("bold white on magenta", "⊘", "bold magenta"),
    None: ("bold black on cyan", "▸", "bold cyan"),
}
_WARNED: Final = ("!", "bold yellow")
_WARNING_STYLE: Final = "bold yellow"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def neutralise(text: str, *, multiline: bool = True) -> str:
    """``text`` with every terminal control character replaced by its visible escape.

    Tabs (and newlines, when ``multiline``) are kept; ESC, CR, BEL, backspace, DEL, the C1 range
    and the bidi overrides become ``\\x1b``, ``\\r``-as-``\\x0d``, … so a process's output can
    neither colour, move the cursor, retitle the terminal nor reorder what is shown.
    """
    pattern = _UNSAFE_MULTILINE if multiline else _UNSAFE_LINE
    return pattern.sub(_escape, text)


def safe(text: object, style: str = "", *, multiline: bool = False) -> Text:
    """Data as a Rich ``Text``: neutralised, never parsed as markup."""
    from rich.text import Text

    return Text(neutralise(str(text), multiline=multiline), style=style)


def console(*, stderr: bool = False) -> Console:
    """A console that never interprets markup, emoji codes or highlighting in strings.

    Colour follows Rich's rules: none when the output is not a terminal or ``NO_COLOR`` is set,
    forced by ``FORCE_COLOR``; width from the terminal or ``COLUMNS``.
    """
    from rich.console import Console

    out = Console(stderr=stderr, markup=False, emoji=False, highlight=False)
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out.width = _PIPE_WIDTH  # piped into a file or grep: do not cut tables at 80 columns
    return out


def badge(state: str, outcome: str | None) -> Text:
    """The state as a coloured badge (``Completed`` on green, ``Failed`` on red, …)."""
    return safe(f" {state} ", _OUTCOME.get(outcome, _OUTCOME[None])[0])


def run_id_cell(run_id: int, warning: bool) -> Text:
    """The run id with the Warning indicator next to it, as in the dashboards."""
    from rich.text import Text

    cell = Text(str(run_id))
    if warning:
        cell.append(f" {WARNING_MARK}", style=_WARNING_STYLE)
    return cell


def history_strip(entries: Sequence[tuple[str | None, bool]], width: int = 10) -> Text:
    """The last ``width`` runs, oldest on the left, one glyph each: ``✓`` succeeded, ``!``
    succeeded with the Warning indicator, ``✗`` failed, ``⊘`` cancelled, ``▸`` still active;
    ``·`` pads a job with fewer runs. The glyphs differ, so it reads without colour too."""
    from rich.text import Text

    strip = Text()  # styles go on spans: a base style would tint every glyph
    strip.append("·" * max(0, width - len(entries)), style="dim")
    for outcome, warning in entries[-width:]:
        if outcome == "succeeded" and warning:
            glyph, style = _WARNED
        else:
            _, glyph, style = _OUTCOME.get(outcome, _OUTCOME[None])
        strip.append(glyph, style=style)
    return strip


def fmt_time(at: _dt.datetime | None, *, short: bool = False) -> str:
    """A time in the local zone, to the second (``short``: without the year); ``-`` when
    unknown."""
    if at is None:
        return "-"
    return at.astimezone().strftime("%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S")


def fmt_end(start: _dt.datetime | None, end: _dt.datetime | None) -> str:
    """An end time: only the time of day when it is the start's local day, to save width."""
    if end is None or start is None:
        return fmt_time(end)
    if end.astimezone().date() == start.astimezone().date():
        return end.astimezone().strftime("%H:%M:%S")
    return fmt_time(end)


def fmt_age(at: _dt.datetime | None, now: _dt.datetime | None = None) -> str:
    """How long ago: ``12s ago``, ``5m ago``, ``3h ago``, ``4d ago``; a date past 30 days."""
    if at is None:
        return "-"
    seconds = ((now or _dt.datetime.now(_dt.UTC)) - at).total_seconds()
    if seconds < 0:
        return fmt_time(at)
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 30 * 86400:
        return f"{int(seconds // 86400)}d ago"
    return at.astimezone().strftime("%Y-%m-%d")


def fmt_clock(at: _dt.datetime | None) -> str:
    """A time of day in the local zone, to the millisecond (log lines)."""
    if at is None:
        return "--:--:--.---"
    return at.astimezone().strftime("%H:%M:%S.%f")[:-3]


def fmt_duration(start: _dt.datetime | None, end: _dt.datetime | None) -> str:
    """``0.42s``, ``12.0s``, ``3m 04s``, ``2h 05m``; a run still going counts to now (``…``)."""
    if start is None:
        return "-"
    going = end is None
    seconds = ((end or _dt.datetime.now(_dt.UTC)) - start).total_seconds()
    seconds = max(seconds, 0.0)
    if seconds < 10:
        text = f"{seconds:.2f}s"
    elif seconds < 60:
        text = f"{seconds:.1f}s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    else:
        text = f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"
    return text + ("…" if going else "")


def print_json(value: Any, *, lines: bool = False) -> None:
    """``value`` as JSON on stdout: indented, or one compact document per item when ``lines``
    (JSON Lines, for streams). Datetimes are RFC 3339 in UTC."""
    import msgspec  # ~40 ms: not for `--help`

    out = sys.stdout
    if lines:
        items: Iterable[Any] = value
        for item in items:
            out.write(msgspec.json.encode(item).decode())
            out.write("\n")
    else:
        out.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())
        out.write("\n")
    out.flush()
