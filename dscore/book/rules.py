"""What a page's parameters may be, checked once before any work: the schema (names and types from the notebook's
literal ``parameters`` cell), explicit ranges and choices of the top-level keys that have no config of their own
(:data:`RULES`: epochs >= 1, ratios in (0, 1], seeds >= 0, a known dataset, model or profile …), then the page's
chapter check (``studies.adq.pages.check_page``, ``studies.dreamplus.pages.check_page``: the typed setup with every
nested block, the methods, budgets that cannot work and the rule across seeds). Raises one :class:`ParameterError`
naming the key, the value and what is allowed.

The runner checks every page of every profile with :func:`check_all` before it starts a kernel; a page checks itself
again in its kernel (:func:`dscore.book.page.check`), the same function, so a notebook opened in JupyterLab gets the
same messages.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .params import BookError, PROFILES, chapter_of, declared_parameters as notebook_parameters, load_params, \
    notebook_names, params_source

__all__ = ["ParameterError", "RULES", "NULLABLE", "page_parameters", "check_values", "check_params", "check_all"]


class ParameterError(ValueError):
    """A page parameter is unknown, of the wrong type, out of range or impossible; the message names the key, the
    value and what is allowed."""


def page_parameters(page: str) -> dict[str, Any]:
    """The names and literal defaults of the ``parameters`` cell of ``notebooks/<page>.ipynb`` in this checkout."""
    from ..paths import repo_root

    path = repo_root() / "notebooks" / f"{page}.ipynb"
    if not path.exists():
        names = sorted(p.stem for p in path.parent.glob("*.ipynb"))
        raise ParameterError(f"page={page!r} is not a notebook of this book; allowed: {', '.join(names)}")
    return notebook_parameters(path)


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _check_type(name: str, value, default) -> None:
    """``value`` must have the type of the literal ``default`` (int for int; int or float for float; lists and
    mappings element by element where the default says what an element is)."""
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    elif isinstance(default, Mapping):
        ok = isinstance(value, Mapping)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        expected = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
                    tuple: "a list", dict: "a mapping"}.get(type(default), type(default).__name__)
        raise ParameterError(f"{name}={value!r} has type {_type_name(value)}; allowed: {expected} "
                             f"(like the default {default!r})")
    if isinstance(default, (list, tuple)) and default:
        kinds = {type(d) for d in default}
        if len(kinds) == 1 and kinds <= {int, float, str, bool}:
            for i, item in enumerate(value):
                _check_type(f"{name}[{i}]", item, default[0])
    if isinstance(default, Mapping):
        for key, sub in default.items():
            if key in value:
                _check_type(f"{name}[{key!r}]", value[key], sub)


# ------------------------------------------------------------------------------------------------ the rules

def _int(low=None, high=None) -> Callable[[str, Any], None]:
    def rule(name, value):
        from ..utils import check_int
        check_int(name, value, low=low, high=high)
    return rule


def _float(low=None, high=None, *, low_open=False, high_open=False) -> Callable[[str, Any], None]:
    def rule(name, value):
        from ..utils import check_float
        check_float(name, value, low=low, high=high, low_open=low_open, high_open=high_open)
    return rule


def _nullable(rule):
    def nullable(name, value):
        if value is not None:
            rule(name, value)
    return nullable


def _each(rule, *, unique: bool = False, non_empty: bool = True):
    def each(name, value):
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"{name}={value!r} must be a list")
        if non_empty and not value:
            raise ParameterError(f"{name}={value!r} must list at least one value")
        for i, item in enumerate(value):
            rule(f"{name}[{i}]", item)
        if unique:
            seen = [v for i, v in enumerate(value) if v in value[:i]]
            if seen:
                raise ParameterError(f"{name}={value!r} lists {seen[0]!r} twice; allowed: distinct values "
                                     "(a repeated seed would count the same run twice)")
    return each


def _counts_by_ipc(name, value):
    if not isinstance(value, Mapping):
        raise ParameterError(f"{name}={value!r} must be a mapping {{ipc: number of seeds}}")
    for k, v in value.items():
        _int(low=1)(f"{name} key {k!r}", k)
        _int(low=1)(f"{name}[{k!r}]", v)


def _choice(allowed: Callable[[], Sequence[str]]):
    def rule(name, value):
        from ..utils import check_choice
        check_choice(name, value, allowed())
    return rule


def _profiles():
    return PROFILES


def _datasets():
    from ..data import list_datasets
    return list_datasets()


def _models():
    from ..models import list_models
    return list_models()


def _device(name, value):
    if value == "auto":
        return
    from ..utils import check_choice
    if not isinstance(value, str):
        raise ParameterError(f"{name}={value!r} must be a string; allowed: 'auto', 'cpu', 'cuda' or 'cuda:N'")
    kind, _, index = value.partition(":")
    check_choice(name, kind, ("auto", "cpu", "cuda"))
    if index and not (kind == "cuda" and index.isdigit()):
        raise ParameterError(f"{name}={value!r} is not a device; allowed: 'auto', 'cpu', 'cuda' or 'cuda:N'")


def _arch_specs(value):
    from ..studies.common import arch_specs
    arch_specs(value)


_SEEDS = _each(_int(low=0), unique=True)

#: Ranges and choices of the parameters the pages share, by name, for what has no config of its own (a chapter's
#: setup keys are checked by its typed setup, ``ADQSetup`` or ``DreamSetup``; a page's parameter without a rule is
#: checked for its type, and by its chapter's validators).
RULES: dict[str, Callable[[str, Any], None]] = {
    "profile": _choice(_profiles),
    "dataset": _choice(_datasets),
    "model": _choice(_models),
    "device": _device,
    "epochs": _int(low=1),
    "batch_size": _int(low=1),
    "lr": _float(low=0.0, low_open=True),
    "seed": _int(low=0),
    "seeds": _SEEDS,
    "context_seeds": _SEEDS,
    "extractor_seeds": _SEEDS,
    "distill_seeds": _SEEDS,
    "seeds_at_ipc": _counts_by_ipc,
    "curve_eval_seeds": _SEEDS,
    "feat_seeds": _SEEDS,
    "tiny_seeds": _SEEDS,
    "tiny_ipcs": _each(_int(low=1), unique=True),
    "feat_eval_seeds": _SEEDS,
    "probe_seeds": _SEEDS,
    "samples_per_class": _int(low=1),
    "train_per_class": _int(low=1),
    "test_size": _int(low=1),
    "paper_class_size": _nullable(_int(low=1)),
    "ratio": _float(low=0.0, high=1.0, low_open=True),
    "ratios": _each(_float(low=0.0, high=1.0, low_open=True), unique=True),
    "betas": _each(_float(low=0.0, high=1.0), unique=True),
    "temperatures": _each(_float(low=0.0, low_open=True), unique=True),
    "theta": _float(low=0.0, high=1.0, high_open=True),
    "patch": _int(low=1),
    "ipc": _int(low=1),
    "ipcs": _each(_int(low=1), unique=True),
    "real_per_class": _int(low=1),
    "probe_batch": _int(low=1),
    "probe_pretrain_epochs": _int(low=0),
    "probe_draws": _int(low=1),
    "region_ipc": _int(low=1),
    "region_seeds": _each(_int(low=0), unique=True, non_empty=False),
    "region_eval_seeds": _SEEDS,
    "intervals": _each(_int(low=1), unique=True),
    "margin": _float(low=0.0),
    "steps": _int(low=1),
    "order_seed": _int(low=0),
    "temperature": _float(low=0.0, low_open=True),
    "kd_weight": _float(low=0.0),
    "eval_archs": lambda name, value: _arch_specs(value),
    "lengths": _each(_int(low=1), unique=True),
    "calibration_seeds": _SEEDS,
    "within": _float(low=0.0, high=1.0, high_open=True),
    "families": _each(_choice(lambda: ("idc", "dsa", "dc")), unique=True),
}

#: Parameters that may be null (None): the whole split instead of a per-class subset.
NULLABLE = {"pool_per_class", "test_per_class", "paper_class_size", "tiny_setup"}


# ------------------------------------------------------------------------------------------------ the checks

def _check_perf(values: Mapping[str, Any]) -> None:
    """The performance page: every size inside its sections is a positive integer, and no section picks more
    items (``budget``, ``clusters``) than it has (``n``); the throughput architectures are registered models."""
    for section, spec in values.items():
        if not isinstance(spec, Mapping):
            continue
        for key, value in spec.items():
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise ParameterError(f"{section}[{key!r}]={value!r} must be a positive integer; allowed: >= 1")
        n = spec.get("n")
        for key in ("budget", "clusters"):
            if isinstance(n, int) and isinstance(spec.get(key), int) and spec[key] > n:
                raise ParameterError(f"{section}[{key!r}]={spec[key]} exceeds {section}['n']={n}; "
                                     f"allowed: 1 <= {key} <= {n}")
    archs = values.get("throughput", {}).get("archs", {}) if isinstance(values.get("throughput"), Mapping) else {}
    for name in archs:
        _choice(_models)(f"throughput['archs'][{name!r}]", name)


def _page_check(page: str) -> Callable[[Mapping[str, Any]], None] | None:
    """The check of what ``page`` holds beyond types and ranges: its chapter's ``check_page`` (the chapter read from
    ``_toc.yml``: the sections of ``overview_adq`` and ``overview_dreamplus``), the performance page's own, or none."""
    from ..paths import repo_root

    chapter = chapter_of(repo_root(), page)
    if chapter == "overview_adq":
        from ..studies.adq.pages import check_page
        return check_page
    if chapter == "overview_dreamplus":
        from ..studies.dreamplus.pages import check_page
        return check_page
    return _check_perf if page == "perf_bench" else None


def check_values(page: str, values: Mapping[str, Any], *, declared: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check a full or partial set of ``values`` for ``page``'s parameters (missing names keep their defaults).

    Raises :class:`ParameterError` (a ValueError) naming the page, the key, the value and what is allowed, for an
    unknown key, a wrong type, a value out of range, an unknown dataset/model/profile/method or an impossible budget.
    Loads no data. Returns the complete parameters (defaults, then ``values``).
    """
    declared = dict(page_parameters(page) if declared is None else declared)
    try:
        unknown = [k for k in values if k not in declared]
        if unknown:
            hints = [f"{k!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, declared, 1))
                     else repr(k) for k in unknown]
            raise ParameterError(f"unknown parameter(s) {', '.join(hints)}; the page declares: "
                                 f"{', '.join(sorted(declared))}")
        full = {**declared, **dict(values)}
        for key, value in full.items():
            if value is None and (key in NULLABLE or declared[key] is None):
                continue
            if value is None:
                raise ParameterError(f"{key}=null is not allowed; the default is {declared[key]!r}")
            _check_type(key, value, declared[key])
            _apply_rules(key, key, value)
        page_check = _page_check(page)
        if page_check is not None:
            page_check(full)
    except ParameterError as exc:
        raise ParameterError(f"page {page!r}: {exc}") from None
    except ValueError as exc:           # the library's own validators: same message shape
        raise ParameterError(f"page {page!r}: {exc}") from None
    return full


def _apply_rules(label: str, key: str, value) -> None:
    """The rule of ``key`` (if any) on ``value``, and the rules of the keys inside a mapping value, by their names
    (``extractor['epochs']`` follows the ``epochs`` rule, ``tuning['ratios']`` the ``ratios`` rule)."""
    if key in RULES and not (value is None and key in NULLABLE):
        RULES[key](label, value)
    if isinstance(value, Mapping):
        for sub, v in value.items():
            if isinstance(sub, str) and v is not None:
                _apply_rules(f"{label}[{sub!r}]", sub, v)



def check_params(root: Path, name: str, params: dict[str, Any], source: str) -> dict[str, Any]:
    """:func:`check_values` of page ``name`` (declared in ``root``'s notebook) on ``params``, before any kernel
    starts; a bad value raises BookError naming ``source`` (the parameter files), the key, the value and what is
    allowed."""
    declared = notebook_parameters(root / "notebooks" / f"{name}.ipynb")
    try:
        return check_values(name, params, declared=declared)
    except ValueError as exc:
        raise BookError(f"{source}: {exc}") from None


def check_all(root: Path) -> list[str]:
    """Validate every notebook against every profile before any work (keys, then values: types, ranges, budgets,
    :func:`check_values`); returns the notebook names."""
    names = notebook_names(root)
    for name in names:
        for profile in PROFILES:
            check_params(root, name, load_params(root, profile, name), params_source(root, profile, name))
    return names
