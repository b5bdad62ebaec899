"""``serve``'s address: what ``lifecycle ui`` prints (the server itself: ``tests/cli/test_ui.py``
starts it in a subprocess, the browser tests in a thread)."""

from __future__ import annotations

from lifecycle._ui._serve import url_of


def test_the_address_carries_the_token() -> None:
    assert url_of("127.0.0.1", 8765, "abc") == "http://127.0.0.1:8765/?token=abc"


def test_an_ipv6_host_is_bracketed() -> None:
    assert url_of("::1", 9000, "abc") == "http://[::1]:9000/?token=abc"
