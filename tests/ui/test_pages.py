"""The pages: jobs, one job, one run, one page of a log — what each shows, and that stored text
stays text."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import anyio
from starlette.testclient import TestClient

from lifecycle import events as ev
from lifecycle._runs import AsyncRuns
from lifecycle._ui import create_app
from lifecycle._ui._read import LOG_PAGE

from ._support import HOSTILE, Made, populate
from .conftest import TOKEN, portal

SVG = "{http://www.w3.org/2000/svg}"


def _svgs(page: str, cls: str) -> list[ET.Element]:
    """Every inline ``<svg class=cls>`` of a page, parsed as XML (so it is well formed)."""
    found = []
    start = 0
    while (at := page.find(f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}"', start)) >= 0:
        end = page.index("</svg>", at) + len("</svg>")
        found.append(ET.fromstring(page[at:end]))
        start = end
    return found


def test_jobs_page_lists_every_job(reader: TestClient, recorded: tuple[str, Made]) -> None:
    _, made = recorded
    page = reader.get("/").text
    for name in ("ui-numbers", "ui-flaky", "ui-nightly", "ui-live"):
        assert f'data-job="{name}"' in page
        assert f'href="/jobs/{name}"' in page
    assert page.count('class="strip"') == 4
    assert page.count('class="heatmap"') == 4
    heatmaps = _svgs(page, "heatmap")
    assert sum(int(r.get("data-count", 0)) for h in heatmaps for r in h.iter(f"{SVG}rect")) == 4
    strips = _svgs(page, "strip")
    marks = [g for s in strips for g in s.iter(f"{SVG}g") if g.get("data-run")]
    assert {int(g.get("data-run", 0)) for g in marks} == {
        made.numbers,
        made.flaky,
        made.warned,
        made.active,
    }
    assert "every day at 09:00" in page.lower() or "09:00" in page  # the schedule, explained
    row = page[page.index('data-job="ui-nightly"') :].split("</tr>")[0]
    assert "Success" in row
    assert "⚠" in row  # the Warning indicator beside the state, as Qualytics shows it
    assert "Failed" in page[page.index('data-job="ui-flaky"') :].split("</tr>")[0]


def test_job_page_has_the_dag_history_and_definition(
    reader: TestClient, recorded: tuple[str, Made]
) -> None:
    _, made = recorded
    page = reader.get("/jobs/ui-numbers").text
    (dag,) = _svgs(page, "dag")
    tasks = {
        g.get("data-task"): g.get("data-state") for g in dag.iter(f"{SVG}g") if g.get("data-task")
    }
    assert tasks == dict.fromkeys(["left", "right", "total", "plus_one"], "Completed")
    edges = [p for p in dag.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(edges) == 3
    assert f'data-run="{made.numbers}"' in page
    assert "tests.ui._support.add" in page  # the definition's functions
    assert 'action="/actions/run"' in page  # a workflow can be run from here


def test_run_page_shows_tasks_logs_timeline_and_results(
    reader: TestClient, recorded: tuple[str, Made]
) -> None:
    _, made = recorded
    page = reader.get(f"/runs/{made.numbers}").text
    for task in ("left", "right", "total", "plus_one"):
        assert f'data-task="{task}"' in page
    assert "ExecutionSucceeded" in page  # the timeline
    assert '<pre class="preview">85</pre>' in page  # plus_one's result, previewed
    assert "msgpack" in page
    assert "data-live" not in page  # ended: frozen, no live updates
    assert 'action="/actions/rerun/' in page

    failed = reader.get(f"/runs/{made.flaky}").text
    assert "flaky is failing on purpose" in failed
    assert "flaky got 42" in failed  # the task's own log


def test_stored_text_is_shown_as_text(reader: TestClient, recorded: tuple[str, Made]) -> None:
    _, made = recorded
    page = reader.get(f"/runs/{made.warned}").text
    assert "<script>document" not in page
    assert "<b>bold</b>" not in page
    assert "\x1b" not in page
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert "\\x1b[31mred\\x1b[0m [bold red]rich[/bold red]" in page
    assert "bad column &lt;td&gt;" in page
    assert "⚠" in page
    assert HOSTILE not in page


def test_an_active_run_page_goes_live(reader: TestClient, recorded: tuple[str, Made]) -> None:
    _, made = recorded
    page = reader.get(f"/runs/{made.active}").text
    assert f'data-live="/runs/{made.active}/events?after=' in page
    assert 'action="/actions/abort/' in page
    assert 'action="/actions/rerun/' not in page


def test_unknown_things_are_404(reader: TestClient, recorded: tuple[str, Made]) -> None:
    _, made = recorded
    assert reader.get("/runs/9999").status_code == 404
    assert reader.get("/jobs/no-such-job").status_code == 404
    assert reader.get(f"/runs/{made.numbers}/log?task=nope").status_code == 404
    assert reader.get("/runs/9999/events").status_code == 404


def test_a_long_log_is_paged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    lines = LOG_PAGE * 2 + 10

    async def record() -> int:
        async with AsyncRuns(url) as runs:
            run = await runs.create("domino", operation="job", name="ui-chatty")
            await runs.record(run.id, [ev.ResourcesAssigned(), ev.PreparationStarted()])
            await runs.record(run.id, ev.ExecutionStarted())
            await runs.record(
                run.id,
                [
                    ev.LogRecorded(level="info", stream="stdout", text=f"line {i}")
                    for i in range(lines)
                ],
            )
            await runs.record(run.id, ev.ExecutionSucceeded())
            return run.id

    run_id = anyio.run(record, backend="asyncio")
    with TestClient(create_app(url, token=TOKEN)) as client:
        client.get(f"/?token={TOKEN}")
        page = client.get(f"/runs/{run_id}").text
        assert f"line {lines - 1}\n" in page
        assert f"line {lines - LOG_PAGE}\n" in page
        assert f"line {lines - LOG_PAGE - 1}\n" not in page
        assert f'href="/runs/{run_id}/log?page=1"' in page
        earlier = client.get(f"/runs/{run_id}/log?page=1").text
        assert f"line {lines - LOG_PAGE - 1}\n" in earlier
        assert f"line {lines - 1}\n" not in earlier
        first = client.get(f"/runs/{run_id}/log?page=2").text
        assert "line 0\n" in first
        assert "line 10\n" not in first
        assert "Page 1 of 3" in first
        assert client.get(f"/runs/{run_id}/log?page=99").text == first  # clamped


def test_a_memory_store_is_shared_within_the_process() -> None:
    runs = AsyncRuns("memory://")
    app = create_app(runs, token=TOKEN)
    with TestClient(app) as client:
        made = portal(client).call(populate, runs)
        client.get(f"/?token={TOKEN}")
        assert 'data-job="ui-nightly"' in client.get("/").text
        assert "flaky got 42" in client.get(f"/runs/{made.flaky}").text
