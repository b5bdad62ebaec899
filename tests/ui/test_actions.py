"""Actions: stop, rerun, run a deployed workflow — through the run service and the workflow SDK,
with the CSRF token, never in read-only mode, recorded in the run's facts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from lifecycle import events as ev
from lifecycle._runs import AsyncRuns
from lifecycle._ui import csrf_of
from lifecycle._views import RunView

from ._support import FLAKY, Made
from .conftest import TOKEN, portal, signed_in

CSRF = csrf_of(TOKEN)


def _ended(client: TestClient, url: str, run_id: int) -> RunView:
    """Run ``run_id`` once it has ended (followed to its end on the server's loop)."""

    async def follow() -> RunView:
        async with AsyncRuns(url) as runs:
            async for _ in runs.follow(run_id):
                pass
            return await runs.get(run_id)

    return portal(client).call(follow)


def _history(client: TestClient, url: str, run_id: int) -> list[ev.Recorded]:
    async def read() -> list[ev.Recorded]:
        async with AsyncRuns(url) as runs:
            return await runs.history(run_id)

    return portal(client).call(read)


def _redirect(answer: object) -> int:
    location = getattr(answer, "headers")["location"]  # noqa: B009
    assert location.startswith("/runs/")
    return int(location.rsplit("/", 1)[1])


@pytest.fixture
def acting(fresh: tuple[str, Made]) -> Iterator[TestClient]:
    with signed_in(fresh[0]) as client:
        client.get(f"/?token={TOKEN}")
        client.follow_redirects = False
        yield client


def test_stop_a_run(acting: TestClient, fresh: tuple[str, Made]) -> None:
    url, made = fresh
    page = acting.get(f"/runs/{made.active}").text
    assert f'name="csrf" value="{CSRF}"' in page
    answer = acting.post(f"/actions/abort/{made.active}", data={"csrf": CSRF})
    assert answer.status_code == 303
    assert _redirect(answer) == made.active
    view = _ended(acting, url, made.active)
    assert view.state == "Stopped"
    stops = [
        r.event for r in _history(acting, url, made.active) if isinstance(r.event, ev.StopRequested)
    ]
    assert [s.by for s in stops] == ["ui"]
    assert acting.post(f"/actions/abort/{made.active}", data={"csrf": CSRF}).status_code == 409


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        ({}, {}),
        ({"csrf": "wrong"}, {}),
        ({"csrf": CSRF}, {"origin": "http://evil.example"}),
    ],
    ids=["no-csrf", "bad-csrf", "foreign-origin"],
)
def test_a_forged_action_is_refused(
    acting: TestClient, fresh: tuple[str, Made], data: dict[str, str], headers: dict[str, str]
) -> None:
    url, made = fresh
    answer = acting.post(f"/actions/abort/{made.active}", data=data, headers=headers)
    assert answer.status_code == 403
    assert not any(
        isinstance(r.event, ev.StopRequested) for r in _history(acting, url, made.active)
    )


def test_actions_are_get_proof(acting: TestClient, fresh: tuple[str, Made]) -> None:
    _, made = fresh
    assert acting.get(f"/actions/abort/{made.active}?csrf={CSRF}").status_code == 405


def test_read_only_refuses_every_action(fresh: tuple[str, Made]) -> None:
    url, made = fresh
    with signed_in(url, read_only=True) as client:
        client.get(f"/?token={TOKEN}")
        page = client.get(f"/runs/{made.active}").text
        assert "read-only" in page
        assert "/actions/" not in page
        assert "/actions/" not in client.get("/jobs/ui-numbers").text
        for path, data in (
            (f"/actions/abort/{made.active}", {"csrf": CSRF}),
            (f"/actions/rerun/{made.flaky}", {"csrf": CSRF}),
            ("/actions/run", {"csrf": CSRF, "job": "ui-numbers"}),
        ):
            assert client.post(path, data=data).status_code == 403
        assert _ended_or_active(client, url, made.active) == "Running"


def _ended_or_active(client: TestClient, url: str, run_id: int) -> str:
    async def state() -> str:
        async with AsyncRuns(url) as runs:
            return (await runs.get(run_id)).state

    return portal(client).call(state)


def test_rerun_a_failed_workflow_run(acting: TestClient, fresh: tuple[str, Made]) -> None:
    url, made = fresh
    FLAKY["fail"] = False
    answer = acting.post(f"/actions/rerun/{made.flaky}", data={"csrf": CSRF})
    assert answer.status_code == 303
    new = _redirect(answer)
    view = _ended(acting, url, new)
    assert (view.original_run_id, view.mode, view.state) == (made.flaky, "rerun", "Completed")
    assert view.containers["get_number"].cached_from == made.flaky  # reused: it had succeeded

    full = _redirect(acting.post(f"/actions/rerun/{new}", data={"csrf": CSRF, "full": "1"}))
    view = _ended(acting, url, full)
    assert view.original_run_id == new
    assert all(c.cached_from is None for c in view.containers.values())


def test_rerun_with_a_version_the_code_is_not(acting: TestClient, fresh: tuple[str, Made]) -> None:
    _, made = fresh
    answer = acting.post(f"/actions/rerun/{made.flaky}", data={"csrf": CSRF, "version": "99"})
    assert answer.status_code == 400
    assert "version=99" in answer.text


def test_rerun_another_orchestrators_run(acting: TestClient, fresh: tuple[str, Made]) -> None:
    url, made = fresh
    new = _redirect(
        acting.post(f"/actions/rerun/{made.warned}", data={"csrf": CSRF, "version": "3"})
    )
    view = _ended_or_active(acting, url, new)
    assert view == "Queued"  # recorded for the orchestrator that runs it
    page = acting.get(f"/runs/{new}").text
    assert f'href="/runs/{made.warned}"' in page
    assert (
        acting.post(f"/actions/rerun/{made.warned}", data={"csrf": CSRF, "full": "1"}).status_code
        == 400
    )
    assert acting.post(f"/actions/rerun/{made.active}", data={"csrf": CSRF}).status_code == 409


def test_run_a_deployed_workflow_now(acting: TestClient, fresh: tuple[str, Made]) -> None:
    url, made = fresh
    answer = acting.post("/actions/run", data={"csrf": CSRF, "job": "ui-numbers"})
    new = _redirect(answer)
    assert new > made.active
    view = _ended(acting, url, new)
    assert (view.name, view.state, view.mode) == ("ui-numbers", "Completed", "new")
    refused = acting.post("/actions/run", data={"csrf": CSRF, "job": "ui-nightly"})
    assert refused.status_code == 400
    assert acting.post("/actions/run", data={"csrf": CSRF, "job": "nope"}).status_code == 404
