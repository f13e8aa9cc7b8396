# zsar — one entry point. Every target bootstraps the virtual environment first (created if
# absent, re-installed when pyproject.toml changes), so a fresh clone needs nothing else.
#   make workbook   run every notebook in order on the embedded benchmark (full size)
#   make test       run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.zsar-installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: bootstrap workbook smoke test kernel lab benchmarks clean-runs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

bootstrap: $(STAMP)

workbook: $(STAMP)
	$(PY) -m zsar.workbook $(ARGS)

smoke: $(STAMP)
	$(PY) -m zsar.workbook --smoke --runs-dir runs/smoke --figures-dir runs/smoke/figures $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

kernel: $(STAMP)
	$(PY) -m ipykernel install --user --name zsar --display-name "Python (zsar)"

lab: kernel
	$(VENV)/bin/jupyter lab notebooks/

clean-runs:
	rm -rf runs
