"""Output becomes lines: split, replaced, never dropped."""

from __future__ import annotations

from lifecycle_adapters._lines import ByteLines, TextLines


def test_bytes_split_on_newlines_across_chunks() -> None:
    lines = ByteLines(max_bytes=100)
    assert lines.feed(b"one\r\ntw") == ["one"]
    assert lines.feed(b"o\n\nthree") == ["two", ""]
    assert lines.close() == ["three"]
    assert lines.close() == []


def test_invalid_utf8_is_replaced() -> None:
    lines = ByteLines()
    assert lines.feed(b"\xff\xfe ok \xc3\xa9\n") == ["\ufffd\ufffd ok é"]


def test_long_lines_are_split_at_character_boundaries() -> None:
    text = "é" * 1000  # two bytes each
    lines = ByteLines(max_bytes=101)
    out = lines.feed(text.encode() + b"\n")
    assert "".join(out) == text
    assert all(len(piece.encode()) <= 101 for piece in out)
    assert "\ufffd" not in "".join(out)
    # a long line still without its newline is not held back without bound
    partial = lines.feed(b"x" * 350)
    assert partial == ["x" * 101] * 3
    assert lines.close() == ["x" * 47]


def test_text_lines() -> None:
    lines = TextLines(max_chars=4)
    assert lines.feed("ab") == []
    assert lines.feed("cdefg\nh") == ["abcd", "efg"]
    assert lines.feed("ijklmn") == ["hijk"]
    assert lines.close() == ["lmn"]
