"""Render the ``%lifecycle_runs`` widget in a real browser and save ``docs/explorer.png``.

    .venv/bin/python scripts/explorer_screenshot.py [OUT.png]

What it does: runs a small workflow a few times in a throwaway SQLite store (one run fails, one
reruns it), opens the explorer on it with a run selected, saves the widgets' state as HTML
(``ipywidgets.embed``), and has headless ``chromium`` (Debian's) screenshot that page. The page
loads ipywidgets' own renderer, ``@jupyter-widgets/html-manager``'s ``dist/embed.js``, fetched
with ``npm pack`` from the npm registry at the version ipywidgets names (no CDN at view time).
Needs ``chromium`` and ``npm`` on the PATH and the ``notebook`` extra installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ipywidgets import embed
from ipywidgets._version import __html_manager_version__

from lifecycle import task, workflow
from lifecycle._notebook import Explorer, ExplorerWidget

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1100, 740
FAIL = {"now": False}


@task()
def fetch_data() -> dict[str, list[int]]:
    print("fetching sales from 3 shops")
    return {"sales": [100, 200, 150]}


@task()
def calculate_total(data: dict[str, list[int]]) -> int:
    print(f"summing {len(data['sales'])} values")
    return sum(data["sales"])


@task()
def average(data: dict[str, list[int]]) -> float:
    return sum(data["sales"]) / len(data["sales"])


@task()
def check(total: int) -> int:
    if FAIL["now"]:
        raise RuntimeError("the ledger does not balance")
    return total


@task()
def report(total: int, mean: float) -> str:
    print("writing the report")
    return f"total {total}, mean {mean:.1f}"


@workflow(name="daily_sales_report")
def sales_pipeline() -> None:
    data = fetch_data()
    report(check(calculate_total(data)), average(data))


def html_manager(into: Path) -> Path:
    """``dist/`` of ``@jupyter-widgets/html-manager`` (the version ipywidgets names)."""
    spec = f"@jupyter-widgets/html-manager@{__html_manager_version__}"
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to fetch ipywidgets' renderer (apt-get install npm)")
    done = subprocess.run(
        [npm, "pack", "--silent", spec], cwd=into, capture_output=True, text=True, check=True
    )
    with tarfile.open(into / done.stdout.strip().splitlines()[-1]) as tar:
        tar.extractall(into, filter="data")
    return into / "package" / "dist"


def page(widget: ExplorerWidget) -> str:
    """An HTML page that renders ``widget`` from its saved state with ``embed.js``."""
    data = embed.embed_data(views=[widget])
    state = json.dumps(data["manager_state"], indent=None)
    view = json.dumps(data["view_specs"][0])
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%lifecycle_runs</title>
<script src="dist/embed.js"></script>
<style>body {{ font-family: sans-serif; margin: 16px; }}</style>
<script type="application/vnd.jupyter.widget-state+json">{state}</script>
</head><body>
<div style="font-family: monospace; color: #303f9f; margin-bottom: 8px">
In [3]: %lifecycle_runs daily_sales_report</div>
<script type="application/vnd.jupyter.widget-view+json">{view}</script>
</body></html>
"""


def main(out: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is needed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = f"sqlite:///{work / 'runs.db'}"
        for _ in range(3):
            sales_pipeline(local_run=True, store=store, progress=False)
        FAIL["now"] = True
        failed = sales_pipeline(local_run=True, store=store, progress=False)
        FAIL["now"] = False
        explorer = Explorer("daily_sales_report", environment="dev", store=store)
        explorer.rerun(failed.run_id)
        widget = ExplorerWidget(explorer, refresh_interval=None)
        widget.select_run(failed.run_id)
        widget.tasks.value = explorer.task(failed.run_id, "calculate_total")["id"]
        (work / "dist").symlink_to(html_manager(work))
        (work / "explorer.html").write_text(page(widget), encoding="utf-8")
        widget.close()
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",  # root in a container
                "--disable-gpu",
                "--hide-scrollbars",
                "--virtual-time-budget=15000",  # let embed.js render before the shot
                f"--window-size={WIDTH},{HEIGHT}",
                f"--screenshot={out.resolve()}",
                (work / "explorer.html").as_uri(),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "HOME": tmp},
        )
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "explorer.png")
