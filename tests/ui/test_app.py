"""The guard: the token (once in the URL, then a cookie), the static files, the CSRF token."""

from __future__ import annotations

from starlette.testclient import TestClient

from lifecycle._ui import create_app, csrf_of
from lifecycle._ui._app import COOKIE

from ._support import Made
from .conftest import TOKEN


def test_pages_need_the_token(recorded: tuple[str, Made]) -> None:
    url, made = recorded
    with TestClient(create_app(url, token=TOKEN)) as client:
        for path in ("/", "/jobs/ui-numbers", f"/runs/{made.numbers}", f"/runs/{made.numbers}/log"):
            answer = client.get(path)
            assert answer.status_code == 401, path
            assert "token" in answer.text
        assert client.get("/?token=wrong").status_code == 401
        assert client.post(f"/actions/abort/{made.active}").status_code == 401
        client.cookies.set(COOKIE, "wrong")
        assert client.get("/").status_code == 401


def test_the_token_becomes_a_cookie_and_leaves_the_address(recorded: tuple[str, Made]) -> None:
    url, made = recorded
    with TestClient(create_app(url, token=TOKEN), follow_redirects=False) as client:
        answer = client.get(f"/runs/{made.numbers}/log?page=0&token={TOKEN}")
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/runs/{made.numbers}/log?page=0"
        cookie = answer.headers["set-cookie"]
        assert f"{COOKIE}={TOKEN}" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        client.cookies.set(COOKIE, TOKEN)
        assert client.get("/").status_code == 200
        elsewhere = client.get(f"http://testserver//evil.example/x?token={TOKEN}")
        assert elsewhere.headers["location"] == "/evil.example/x"  # stays on this site


def test_static_files_need_no_token(recorded: tuple[str, Made]) -> None:
    with TestClient(create_app(recorded[0], token=TOKEN)) as client:
        script = client.get("/static/live.js")
        assert script.status_code == 200
        assert "EventSource" in script.text
        assert "innerHTML" not in script.text  # log lines go in as text
        assert client.get("/static/style.css").status_code == 200


def test_each_token_has_its_own_csrf_token() -> None:
    assert csrf_of("a") == csrf_of("a")
    assert csrf_of("a") != csrf_of("b")
    assert TOKEN not in csrf_of(TOKEN)


def test_a_random_token_when_none_is_given(recorded: tuple[str, Made]) -> None:
    one, two = create_app(recorded[0]), create_app(recorded[0])
    assert one.state.ui.token != two.state.ui.token
    assert len(one.state.ui.token) >= 32
