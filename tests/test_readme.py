"""The README stays true: its diagrams are what the dialects draw, its snippets run, and every
output it shows is what the program prints.

Every fenced block of README.md is checked by something, and the HTML comment before it says
what (``test_every_block_is_checked`` fails a block without one):

- ``<!-- run -->``: Python, executed in README order in one directory, on a store that already
  holds the demo's runs (``LIFECYCLE_STORE``, ``sqlite:///runs.db``);
- ``<!-- console: NAME -->``: a shell session. The blocks of one NAME run, in README order, as
  one ``bash`` script in a fresh directory (shown as ``/tmp/readme``) that holds every
  ``<!-- file: NAME -->`` block; each ``$ command``'s output (stdout and stderr, as a terminal
  shows them, 100 columns wide) must be the lines shown under it, modulo times, durations and
  the repository's path (see :func:`normalize`);
- ``<!-- diagram: DIALECT -->``: what ``Dialect.to_mermaid()`` draws;
- ``<!-- file: NAME -->``: a file the console blocks use;
- ``<!-- pytest -->``: a user's test module, run by pytest in a fresh process
  (``tests/testing/test_readme_snippets.py``), as are the blocks of "Testing your own dialect";
- ``<!-- not run: WHY -->``: not runnable here, and why.

``python tests/test_readme.py --update`` rewrites the shown output of every console block with
what the program prints now (then read the diff).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import lifecycle

ROOT = Path(__file__).parent.parent
README_PATH = ROOT / "README.md"
README = README_PATH.read_text(encoding="utf-8")
SHOWN_DIR = "/tmp/readme"
"""Where the README says its console sessions ran."""
SHOWN_ROOT = "/work/main"
"""Where the README says the repository is (in tracebacks)."""
SECTIONS_TESTED_ELSEWHERE = ("## Testing your own dialect",)

_BLOCK = re.compile(
    r"(?:<!-- (?P<mark>[^>\n]*?) -->\n)?^```(?P<lang>\S*)\n(?P<body>.*?)^```$", re.S | re.M
)


@dataclass(frozen=True)
class Block:
    mark: str
    lang: str
    body: str
    start: int  # offset of the body in README.md
    line: int  # line of the opening fence

    @property
    def kind(self) -> str:
        return self.mark.partition(":")[0].strip()

    @property
    def arg(self) -> str:
        return self.mark.partition(":")[2].strip()


def blocks(text: str = README) -> list[Block]:
    return [
        Block(
            m["mark"] or "",
            m["lang"],
            m["body"],
            m.start("body"),
            text.count("\n", 0, m.start("lang")) + 1,
        )
        for m in _BLOCK.finditer(text)
    ]


def _section_of(offset: int) -> str:
    heads = [m for m in re.finditer(r"^## .*$", README, re.M) if m.start() < offset]
    return heads[-1].group(0) if heads else ""


# -- every block is checked -----------------------------------------------------------------------

KINDS = {"run", "console", "diagram", "file", "pytest", "not run"}


def test_every_block_is_checked() -> None:
    unchecked = [
        f"README.md:{b.line}: ```{b.lang}"
        for b in blocks()
        if b.kind not in KINDS and _section_of(b.start) not in SECTIONS_TESTED_ELSEWHERE
    ]
    assert not unchecked, (
        "every README block needs a mark saying how it is checked (see this module's "
        f"docstring): {unchecked}"
    )
    assert all(b.arg for b in blocks() if b.kind in ("console", "diagram", "file", "not run"))


def test_the_error_tree_names_every_error() -> None:
    (tree,) = [b.body for b in blocks() if b.body.startswith("LifecycleError\n")]
    named = set(re.findall(r"\b([A-Z]\w+)\b", tree))
    import lifecycle._errors  # the package's re-exports are lazy: load the module itself

    errors = set(lifecycle._errors.__all__)
    assert errors <= named, f"the README's error tree misses {sorted(errors - named)}"


# -- diagrams -------------------------------------------------------------------------------------


def diagrams() -> dict[str, str]:
    return {b.arg: b.body for b in blocks() if b.kind == "diagram"}


@pytest.mark.parametrize("name", ["datatailr", "domino", "qualytics"])
def test_readme_diagrams_are_current(name: str) -> None:
    d = lifecycle.dialect(name)
    drawn = diagrams()
    assert drawn[name] == d.to_mermaid(), f"regenerate the {name} diagram in README.md"
    if d.containers is not None and d.containers is not d:
        assert drawn[d.containers.name] == d.containers.to_mermaid()


# -- Python snippets ------------------------------------------------------------------------------


def _demo_store(directory: Path) -> str:
    """A store holding the demo's runs (what "export a store's log" needs to export)."""
    url = f"sqlite:///{directory}/runs.db"
    subprocess.run(
        [Path(sys.executable).parent / "lifecycle", "demo", url],
        check=True,
        capture_output=True,
        cwd=directory,
    )
    return url


def test_readme_marked_snippets_run_on_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marked = [b for b in blocks() if b.kind == "run"]
    assert marked and all(b.lang == "python" for b in marked)
    monkeypatch.setenv("LIFECYCLE_STORE", _demo_store(tmp_path))
    monkeypatch.chdir(tmp_path)
    try:
        for block in marked:
            code = "\n" * (block.line) + block.body  # tracebacks name README.md's lines
            exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    finally:
        lifecycle._dialects._REGISTRY.pop("mine", None)


# -- console sessions -----------------------------------------------------------------------------

_MARK = "@@readme-output-ends@@"
_PROMPT = "$ "


@dataclass(frozen=True)
class Step:
    command: str
    shown: list[str]
    block: Block


def steps(name: str) -> list[Step]:
    out: list[Step] = []
    for block in (b for b in blocks() if b.kind == "console" and b.arg == name):
        lines = block.body.splitlines()
        assert lines and lines[0].startswith(_PROMPT), f"README.md:{block.line}: starts with `$ `"
        for line in lines:
            if line.startswith(_PROMPT):
                out.append(Step(line[len(_PROMPT) :], [], block))
            else:
                out[-1].shown.append(line)
    return out


def sessions() -> list[str]:
    return list(dict.fromkeys(b.arg for b in blocks() if b.kind == "console"))


def run_session(name: str, directory: Path) -> list[list[str]]:
    """Run the session's commands as one bash script in ``directory``; the output of each."""
    for block in blocks():
        if block.kind == "file":
            (directory / block.arg).write_text(block.body, encoding="utf-8")
    script = ["exec 2>&1"]
    for step in steps(name):
        script += [
            step.command.replace(SHOWN_DIR, str(directory)),
            f"__s=$?; printf '\\n{_MARK}\\n'; (exit $__s)",
        ]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "100",
        "LINES": "50",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "HOME": str(directory),
        "TZ": "UTC",
    }
    env.pop("LIFECYCLE_STORE", None)
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    chunks = done.stdout.split(f"\n{_MARK}\n")[:-1]
    outputs = [chunk.splitlines() for chunk in chunks]
    assert len(outputs) == len(steps(name)), done.stdout + done.stderr
    return [[_shown(line, directory) for line in lines] for lines in outputs]


def _shown(line: str, directory: Path) -> str:
    """One output line as the README shows it: our paths as the README's, no trailing blanks."""
    return (
        line.replace(str(directory.resolve()), SHOWN_DIR)
        .replace(str(directory), SHOWN_DIR)
        .replace(str(ROOT), SHOWN_ROOT)
        .rstrip()
    )


_VARIABLE = [
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?"), "<time>"),
    (re.compile(r"\b\d\d-\d\d \d\d:\d\d:\d\d\b"), "<time>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d\b"), "<time>"),  # minutes: due times
    (re.compile(r"\b\d\d:\d\d:\d\d(\.\d+)?\b"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)?(s|ms|µs) ago\b"), "<ago>"),
    (re.compile(r"\b\d+\.\d+s\b"), "<duration>"),
    (re.compile(r", line \d+, in "), ", line <n>, in "),  # our own sources move
    # how many lines the demo's aborted run prints before its abort lands varies by a few, and
    # with it every count and position after it
    (re.compile(r"\b\d+ records\b"), "<n> records"),
    (re.compile(r"\bline \d+, position"), "line <n>, position"),
    (re.compile(r"\bposition(\"?:)? ?\d+"), "position <n>"),
    (re.compile(r"\s+"), " "),  # alignment follows the widths of what varies
]


def normalize(lines: list[str]) -> list[str]:
    """What may differ between two runs of a command: times, ages and durations, where our own
    source lines are, and so the column alignment."""
    out = []
    for line in lines:
        said = line
        for pattern, replacement in _VARIABLE:
            said = pattern.sub(replacement, said)
        out.append(said.strip())
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", sessions())
def test_console_sessions_print_what_the_readme_shows(name: str, tmp_path: Path) -> None:
    if shutil.which("sqlite3") is None and any("sqlite3" in s.command for s in steps(name)):
        pytest.skip("the session uses the sqlite3 shell, which is not installed")
    outputs = run_session(name, tmp_path)
    for step, got in zip(steps(name), outputs, strict=True):
        assert normalize(got) == normalize(step.shown), (
            f"README.md:{step.block.line}: `$ {step.command}` printed\n"
            + "\n".join(got)
            + "\n(run `python tests/test_readme.py --update` and read the diff)"
        )


def _drawn_now() -> dict[str, str]:
    """Every built-in dialect's diagram (and its container machine's) as drawn today."""
    drawn: dict[str, str] = {}
    for name in ["datatailr", "domino", "qualytics"]:
        d = lifecycle.dialect(name)
        drawn[name] = d.to_mermaid()
        if d.containers is not None and d.containers is not d:
            drawn[d.containers.name] = d.containers.to_mermaid()
    return drawn


def update() -> None:
    """Rewrite the output shown under every console command with what it prints now, and
    every dialect diagram with what ``Dialect.to_mermaid()`` draws now."""
    text = README
    bodies: dict[int, str] = {}  # by the start of a block's body
    drawn = _drawn_now()
    for block in blocks():
        if block.kind == "diagram" and block.arg in drawn:
            bodies[block.start] = drawn[block.arg]
    for name in sessions():
        with tempfile.TemporaryDirectory() as tmp:
            outputs = run_session(name, Path(tmp))
        for step, printed in zip(steps(name), outputs, strict=True):
            same = normalize(printed) == normalize(step.shown)
            shown = "".join(f"{line}\n" for line in (step.shown if same else printed))
            bodies[step.block.start] = bodies.get(step.block.start, "") + (
                f"{_PROMPT}{step.command}\n{shown}"
            )
    for block in sorted(blocks(), key=lambda b: b.start, reverse=True):
        if block.start in bodies:
            end = block.start + len(block.body)
            text = text[: block.start] + bodies[block.start] + text[end:]
    README_PATH.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_readme.py --update")
    update()
