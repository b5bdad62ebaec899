"""Rendering helpers: data never reaches the terminal as control sequences or markup."""

from __future__ import annotations

import datetime as _dt

import pytest

from lifecycle._cli._render import (
    badge,
    fmt_age,
    fmt_duration,
    fmt_end,
    history_strip,
    neutralise,
    safe,
)

T0 = _dt.datetime(2025, 11, 20, 9, 30, tzinfo=_dt.UTC)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("title\x1b]0;pwned\x07", "title\\x1b]0;pwned\\x07"),
        ("cr\roverwrite", "cr\\x0doverwrite"),
        ("back\bspace\x7f", "back\\x08space\\x7f"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("rtl\u202eevil\u2066", "rtl\\u202eevil\\u2066"),
        ("tab\tstays", "tab\tstays"),
        ("[bold red]x[/bold red]", "[bold red]x[/bold red]"),
        ("ünïcödé ✓", "ünïcödé ✓"),
    ],
)
def test_neutralise_escapes_every_control_character(raw: str, shown: str) -> None:
    assert neutralise(raw) == shown


def test_newlines_are_kept_only_in_multiline_text() -> None:
    assert neutralise("a\nb") == "a\nb"
    assert neutralise("a\nb", multiline=False) == "a\\x0ab"


def test_safe_text_is_never_markup() -> None:
    text = safe("[bold red]x[/bold red]")
    assert text.plain == "[bold red]x[/bold red]"
    assert not text.spans


def test_badge_says_the_state_without_colour() -> None:
    assert badge("Out of Memory", "failed").plain.strip() == "Out of Memory"


def test_history_strip_reads_without_colour_oldest_first() -> None:
    strip = history_strip(
        [
            ("succeeded", False),
            ("failed", False),
            ("succeeded", True),
            ("cancelled", False),
            (None, False),
        ]
    )
    assert strip.plain == "·····✓✗!⊘▸"
    assert len(history_strip([("succeeded", False)] * 12).plain) == 10


def test_durations_and_ages() -> None:
    assert fmt_duration(T0, T0 + _dt.timedelta(seconds=0.42)) == "0.42s"
    assert fmt_duration(T0, T0 + _dt.timedelta(seconds=184)) == "3m 04s"
    assert fmt_duration(T0, T0 + _dt.timedelta(hours=2, minutes=5)) == "2h 05m"
    assert fmt_duration(None, None) == "-"
    assert fmt_duration(T0, None).endswith("…")  # still going
    assert fmt_age(T0, T0 + _dt.timedelta(seconds=12)) == "12s ago"
    assert fmt_age(T0, T0 + _dt.timedelta(days=3)) == "3d ago"
    assert fmt_age(None) == "-"
    assert ":" in fmt_end(T0, T0 + _dt.timedelta(seconds=1))
