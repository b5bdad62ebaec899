"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

The server is the real one (uvicorn, on a free port of 127.0.0.1, in a thread of this process so
the test workflows are importable by its reruns); another writer records facts into the same
SQLite store while a page is open, as an engine in another process would. Playwright's own
browser download cannot work here: ``executable_path`` points at ``/usr/bin/chromium``
(installed by ``.ci/run``). Where Chromium is missing these tests skip, saying so; under
``CI=true`` they fail instead, so a CI run cannot pass by skipping them.

Screenshots of the three pages go to ``$LIFECYCLE_UI_SCREENSHOTS`` when it is set (``make
screenshots`` sets it to ``docs/``, the README's pictures), else to a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
import uvicorn

from lifecycle import events as ev
from lifecycle._runs import AsyncRuns
from lifecycle._ui import create_app

from ._support import FLAKY, HOSTILE, Made, populate_url

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

TOKEN = "browser-token-0123456789"
CHROMIUM = os.environ.get("LIFECYCLE_TEST_CHROMIUM", "/usr/bin/chromium")
WAIT_MS = 10_000  # how long a page may take to show what it must; not a measurement

pytestmark = pytest.mark.slow
T = TypeVar("T")


def _chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if found is None:
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI: {reason}")
        pytest.skip(reason)
    return found


class Site:
    """The running dashboard: its address, its store, what ``populate`` recorded there."""

    def __init__(self, base: str, url: str, made: Made) -> None:
        self.base = base
        self.url = url
        self.made = made

    def write(self, fn: Callable[[AsyncRuns], Awaitable[T]]) -> T:
        """Run ``fn`` on another connection to the store, on a thread of its own (as a writer
        in another process would; Playwright's sync API holds this thread's event loop)."""

        async def main() -> T:
            async with AsyncRuns(self.url) as runs:
                return await fn(runs)

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(anyio.run, main).result()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'runs.db'}"
    with ThreadPoolExecutor(1) as pool:  # not on this thread: Playwright may hold its loop
        made = pool.submit(populate_url, url).result()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(url, token=TOKEN), log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            threading.Event().wait(0.02)
        yield Site(f"http://127.0.0.1:{port}", url, made)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = _chromium()
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    opened.goto(f"{site.base}/?token={TOKEN}")  # signs in: the cookie, then the jobs page
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("LIFECYCLE_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _active_run(site: Site, name: str) -> int:
    async def create(runs: AsyncRuns) -> int:
        run = await runs.create("domino", operation="job", name=name)
        await runs.record(run.id, [ev.ResourcesAssigned(), ev.PreparationStarted()])
        await runs.record(run.id, ev.ExecutionStarted())
        await runs.record(run.id, ev.LogRecorded(level="info", stream="stdout", text="booting"))
        return run.id

    return site.write(create)


def test_jobs_page_then_a_jobs_dag(page: Any, site: Site, shots: Path) -> None:
    expect = playwright.expect
    assert page.url == f"{site.base}/"  # the token left the address
    rows = page.locator("tr.job")
    expect(rows.first).to_be_visible()
    names = rows.evaluate_all("rows => rows.map(r => r.dataset.job)")
    assert {"ui-numbers", "ui-flaky", "ui-nightly", "ui-live"} <= set(names)
    expect(page.locator('tr[data-job="ui-nightly"] .warning')).to_have_count(1)
    page.screenshot(path=shots / "ui-jobs.png", full_page=True)

    page.click('a[href="/jobs/ui-numbers"]')
    tasks = page.locator("svg.dag g.task")
    expect(tasks).to_have_count(4)
    assert sorted(tasks.evaluate_all("gs => gs.map(g => g.dataset.task)")) == [
        "left",
        "plus_one",
        "right",
        "total",
    ]
    expect(page.locator("svg.dag path[marker-end]")).to_have_count(3)
    page.screenshot(path=shots / "ui-job.png", full_page=True)


def test_a_running_jobs_log_is_live(page: Any, site: Site) -> None:
    expect = playwright.expect
    run_id = _active_run(site, "ui-live-log")
    page.goto(f"{site.base}/runs/{run_id}")
    expect(page.locator(".live")).to_be_visible()
    log = page.locator('pre.log[data-task=""]')
    expect(log).to_contain_text("booting")
    page.wait_for_function("() => document.readyState === 'complete'")

    async def more(runs: AsyncRuns) -> None:
        await runs.record(
            run_id,
            ev.LogRecorded(level="info", stream="stdout", text="printed after the page opened"),
        )
        await runs.record(run_id, ev.LogRecorded(level="warning", stream="stderr", text=HOSTILE))

    site.write(more)
    expect(log).to_contain_text("printed after the page opened")
    expect(log).to_contain_text(HOSTILE.replace("\x1b", "\\x1b"), timeout=WAIT_MS)  # as text
    assert page.title() != "pwned"
    assert page.locator("pre.log script, pre.log b").count() == 0

    async def end(runs: AsyncRuns) -> None:
        await runs.record(run_id, ev.ExecutionSucceeded())

    site.write(end)
    expect(page.locator('[data-state-of="run"]')).to_have_text("Succeeded")
    expect(page.locator(".live")).to_have_count(0)  # reloaded: frozen once terminal


def test_stop_a_run_with_the_button(page: Any, site: Site) -> None:
    expect = playwright.expect
    run_id = _active_run(site, "ui-to-stop")
    page.goto(f"{site.base}/runs/{run_id}")
    page.click("button.stop")
    expect(page.locator('[data-state-of="run"]')).to_have_text("Stopped")
    assert page.url == f"{site.base}/runs/{run_id}"

    async def stops(runs: AsyncRuns) -> list[str]:
        return [
            r.event.by for r in await runs.history(run_id) if isinstance(r.event, ev.StopRequested)
        ]

    assert site.write(stops) == ["ui"]


def test_rerun_a_failed_run(page: Any, site: Site, shots: Path) -> None:
    expect = playwright.expect
    failed = site.made.flaky
    page.goto(f"{site.base}/runs/{failed}")
    expect(page.locator('[data-state-of="run"]')).to_have_text("Failed")
    expect(page.locator('svg.dag g.task[data-state="Failed"]')).to_have_count(1)
    page.screenshot(path=shots / "ui-run.png", full_page=True)
    FLAKY["fail"] = False
    page.click("button.rerun")
    page.wait_for_url(lambda url: url != f"{site.base}/runs/{failed}")
    expect(page.locator('[data-state-of="run"]')).to_have_text("Completed")
    expect(page.locator(".facts")).to_contain_text(f"run {failed}")  # rerun of the failed run


def test_an_injected_script_renders_as_text(page: Any, site: Site) -> None:
    expect = playwright.expect
    page.goto(f"{site.base}/runs/{site.made.warned}")
    log = page.locator('pre.log[data-task=""]')
    expect(log).to_contain_text("<script>document.title='pwned'</script> <b>bold</b>")
    expect(log).to_contain_text("\\x1b[31mred\\x1b[0m [bold red]rich[/bold red]")
    assert page.title() != "pwned"
    assert page.locator("pre.log script, pre.log b").count() == 0
    expect(page.locator("h1 .warning")).to_have_count(1)  # Success, with the Warning indicator
    expect(page.locator('[data-state-of="run"]')).to_have_text("Success")
