"""Turning output into log lines: never dropped, never unbounded.

Lines end at ``\\n`` (a trailing ``\\r`` is removed); a line longer than ``max_bytes`` (bytes) or
``max_chars`` (text) is cut into pieces of at most that size — at a UTF-8 character boundary, so
no character is split — and each piece is a line of its own. Invalid UTF-8 is replaced with
U+FFFD. Whatever is left without a final newline comes out on ``close``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_LINE", "ByteLines", "TextLines"]

MAX_LINE: Final = 64 * 1024
"""The longest log line, in bytes (subprocess output) or characters (captured text)."""


def _boundary(data: bytes | bytearray, limit: int) -> int:
    """A cut at or before ``limit`` that does not split a UTF-8 sequence."""
    cut = limit
    while cut > limit - 4 and cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > limit - 4 and cut > 0 else limit


def _text(data: bytes | bytearray) -> str:
    text = bytes(data).decode("utf-8", "replace")
    return text[:-1] if text.endswith("\r") else text


class ByteLines:
    """Splits a byte stream into text lines."""

    def __init__(self, max_bytes: int = MAX_LINE) -> None:
        self.max_bytes = max_bytes
        self._rest = bytearray()

    def feed(self, data: bytes) -> list[str]:
        """The complete lines ``data`` finishes (possibly none)."""
        self._rest += data
        if b"\n" not in data and len(self._rest) <= self.max_bytes:
            return []
        *complete, rest = self._rest.split(b"\n")
        out: list[str] = []
        for line in complete:
            self._long(line, out)
        self._rest = bytearray()
        while len(rest) > self.max_bytes:
            cut = _boundary(rest, self.max_bytes)
            out.append(_text(rest[:cut]))
            rest = rest[cut:]
        self._rest = bytearray(rest)
        return out

    def _long(self, line: bytes | bytearray, out: list[str]) -> None:
        while len(line) > self.max_bytes:
            cut = _boundary(line, self.max_bytes)
            out.append(_text(line[:cut]))
            line = line[cut:]
        out.append(_text(line))

    def close(self) -> list[str]:
        """The last, unterminated line, if any."""
        rest, self._rest = self._rest, bytearray()
        out: list[str] = []
        if rest:
            self._long(rest, out)
        return out


class TextLines:
    """Splits written text (``print``, ``sys.stderr.write``) into lines."""

    def __init__(self, max_chars: int = MAX_LINE) -> None:
        self.max_chars = max_chars
        self._rest = ""

    def feed(self, text: str) -> list[str]:
        if "\n" not in text and len(self._rest) + len(text) <= self.max_chars:
            self._rest += text
            return []
        *complete, rest = (self._rest + text).split("\n")
        out: list[str] = []
        for line in complete:
            self._long(line, out)
        while len(rest) > self.max_chars:
            out.append(rest[: self.max_chars])
            rest = rest[self.max_chars :]
        self._rest = rest
        return out

    def _long(self, line: str, out: list[str]) -> None:
        line = line.removesuffix("\r")
        while len(line) > self.max_chars:
            out.append(line[: self.max_chars])
            line = line[self.max_chars :]
        out.append(line)

    def close(self) -> list[str]:
        rest, self._rest = self._rest, ""
        out: list[str] = []
        if rest:
            self._long(rest, out)
        return out
