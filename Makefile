# The two commands of the quickstart (`make demo`, `make test`) bootstrap everything they need:
# uv into .uv/ (with the machine's python3 and pip), then the locked environment into .venv/.
# `uv sync --locked` fails loudly when uv.lock no longer matches pyproject.toml.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test lint typecheck unit bench screenshots test-latest lock clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml adapters/pyproject.toml uv.lock
	$(UV) sync --locked --all-packages --all-extras --python $(PYTHON)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# The README's pictures of the dashboard (docs/ui-*.png), taken by its browser tests in Chromium.
screenshots: $(STAMP)
	LIFECYCLE_UI_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/ui/test_browser.py

# Re-resolve uv.lock after changing a dependency in either pyproject.toml.
lock: $(UV)
	$(UV) lock --python $(PYTHON)

# The whole suite on the newest releases of everything (not the CI gate): breakage seen before users see it.
test-latest: $(UV)
	rm -rf .venv-latest
	$(UV) venv --quiet --python $(PYTHON) .venv-latest
	$(UV) pip install --quiet --python .venv-latest/bin/python --upgrade --no-sources -e '.[dev]' -e ./adapters
	.venv-latest/bin/ruff check .
	.venv-latest/bin/mypy
	.venv-latest/bin/python -m pytest

clean:
	rm -rf $(VENV) .venv-latest .uv build dist *.egg-info
