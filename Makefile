# dscore — build the book, run the tests, open the notebooks.
#   make book                 execute every notebook with params/$(PROFILE) and build the HTML book
#   make book PROFILE=smoke   the fast profile CI uses
#   make test                 the test suite (includes a smoke build of the whole book and
#                             pytest --nbval-lax over notebooks/ with the notebooks' own (smoke) defaults)
#   make test-fast            the fast tier for working loops (no book builds, no slow tests)
#   make nbval                only the nbval run over notebooks/
#   make lab                  JupyterLab on notebooks/
#   make bench                the CPU benchmarks in benchmarks/
#   make publish REMOTE=URL   push the built book (_build/html) to URL's gh-pages branch
PROFILE ?= default
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dscore-installed
PYTEST_ARGS ?=

.PHONY: book data test test-fast nbval lab bench venv clean-book publish

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

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

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

bench: $(STAMP)
	$(PY) -m benchmarks

clean-book:
	rm -rf _build book/nb
