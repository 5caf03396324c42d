"""The book: execute the notebooks with a parameter profile, check their parameters, build the Jupyter Book.

One package, layered so that nothing imports upwards:

* :mod:`.params` (the leaf): profiles, the table of contents, the notebooks' declared parameters, the parameter files
  (a chapter's shared setup under each page's own file), ``BookError``;
* :mod:`.rules`: what a parameter may be (:data:`~.rules.RULES`, the chapters' validators), checked once before any
  work;
* :mod:`.executor`: the one way a notebook is executed (papermill, the book's kernel, a temporary environment);
* :mod:`.runner` (execute what changed, the manifest, the timings page, the HTML build) and :mod:`.prefill` (fill
  the cache from several processes), both on the executor;
* :mod:`.page`: what a page calls in its own kernel (``page.check``, ``page.Downloads``);
* :mod:`.cli` and ``__main__``: ``python -m dscore.book build | run | check | prefill``.

The names below are the runner's and the leaf's, re-exported for scripts and tests (``from dscore import book;
book.load_params(...)``).
"""
from __future__ import annotations

from .executor import error_outputs, execute_notebook, kernel_name
from .params import (CELL_TIMEOUT, CHAPTER_PREFIX, KERNEL_NAME, OUTPUT_DIR, PAGES_DIR_PARAM, PROFILES, SHARED_PREFIX,
                     BookError, chapter_dependencies, chapter_of, check_profile, declared_parameters, deep_merge, dotted,
                     execution_order,
                     load_params, notebook_names, params_source, parse_overrides, read_overrides, DRY_TRIM, dry_values,
                     shared_params_path, NOTEBOOK_PROFILE, notebook_defaults, sync_parameter_cells)
from .rules import ParameterError, check_all, check_params, check_values
from .runner import (HTML_INCOMPLETE, MANIFEST, TIMINGS, TIMINGS_PAGE, build, build_html, collapse_injected_parameters,
                     execute, fingerprint, write_timings_page)
from .cli import main

__all__ = ["CELL_TIMEOUT", "CHAPTER_PREFIX", "KERNEL_NAME", "OUTPUT_DIR", "PAGES_DIR_PARAM", "PROFILES", "SHARED_PREFIX",
           "BookError", "ParameterError", "chapter_dependencies", "chapter_of", "check_profile", "declared_parameters",
           "deep_merge", "dotted", "execution_order", "load_params", "notebook_names", "params_source", "parse_overrides", "read_overrides", "DRY_TRIM", "dry_values", "shared_params_path", "NOTEBOOK_PROFILE", "notebook_defaults", "sync_parameter_cells",
           "check_all", "check_params", "check_values", "error_outputs", "execute_notebook", "kernel_name",
           "HTML_INCOMPLETE", "MANIFEST", "TIMINGS", "TIMINGS_PAGE", "build", "build_html",
           "collapse_injected_parameters", "execute", "fingerprint", "write_timings_page", "main"]
