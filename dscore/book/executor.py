"""One way to execute a notebook: papermill with the book's kernel, a fixed working directory, a per-cell timeout
and a temporary environment; used by the runner (:mod:`dscore.book.runner`) and the prefill
(:mod:`dscore.book.prefill`) alike."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

from .params import KERNEL_NAME, BookError

__all__ = ["kernel_name", "error_outputs", "environment", "execute_notebook"]


def kernel_name(*, warn: bool = True) -> str:
    """The ``dscore`` Jupyter kernel when installed (``make venv`` installs it), else ``python3`` (with a warning on
    stderr when ``warn``): that kernel must then run in an environment where dscore imports."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL_NAME in KernelSpecManager().find_kernel_specs():
        return KERNEL_NAME
    if warn:
        print(f"[dscore.book] warning: no '{KERNEL_NAME}' Jupyter kernel is installed (make venv installs it); "
              "executing with 'python3', which must be an environment where dscore imports", file=sys.stderr)
    return "python3"


def error_outputs(notebook: Path) -> list[str]:
    """Error outputs in an executed notebook, as 'ename: evalue' strings."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


@contextlib.contextmanager
def environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (a string) or remove (None) the variables of ``changes`` in ``os.environ`` (which a kernel started inside
    inherits), and restore every one of them afterwards, also on error."""
    def put(values: Mapping[str, str | None]) -> None:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    saved = {k: os.environ.get(k) for k in changes}
    try:
        put(changes)
        yield
    finally:
        put(saved)


def _literal_translator():
    """papermill's Python translator, except that a mapping's keys keep their type: papermill writes every key as a
    string, so ``{1: 3}`` (``seeds_at_ipc``) would reach the kernel as ``{"1": 3}``, unlike the value the runner
    checked. Keys that are not strings are written as literals of their own type."""
    from papermill.translators import PythonTranslator

    class LiteralKeys(PythonTranslator):
        @classmethod
        def translate_dict(cls, val):
            items = ", ".join(f"{cls.translate(k) if not isinstance(k, str) else cls.translate_str(k)}: "
                              f"{cls.translate(v)}" for k, v in val.items())
            return f"{{{items}}}"

    return LiteralKeys


def execute_notebook(source: Path, out: Path, parameters: Mapping[str, Any], *, cwd: Path, timeout: int | None,
                     env: Mapping[str, str | None] | None = None, kernel: str | None = None,
                     log_output: bool = True) -> None:
    """Execute ``source`` into ``out`` with papermill (``parameters`` injected after the parameters cell), in
    ``cwd``, with a per-cell ``timeout`` (None: none) and the environment ``changes`` of :func:`environment`.
    Raises :class:`BookError` when the notebook stores an error output; papermill's own errors propagate."""
    import papermill
    from papermill.translators import papermill_translators

    kernel = kernel or kernel_name()
    papermill_translators.register(kernel, _literal_translator())     # the translator of this kernel's parameters
    with environment(env or {}):
        papermill.execute_notebook(str(source), str(out), parameters=dict(parameters),
                                   kernel_name=kernel, language="python", cwd=str(cwd),
                                   execution_timeout=timeout, log_output=log_output, progress_bar=False)
    errors = error_outputs(out)
    if errors:
        raise BookError(f"error outputs: {errors}")
