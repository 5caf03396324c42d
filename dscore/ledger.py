"""The book's claims ledger: every claim of a chapter judged once, Holm-adjusted over the chapter, shown everywhere.

How a claim travels:

1. A page's claim function (``dscore.studies.<paper>.claims``) turns its runs into :class:`ClaimResult` rows:
   a stable id (``"adq_main.gain_avg"``), the literal id of the paper's claim it tests (``dscore.papers``), the
   statement, the paper's size (or the smallest effect of interest), the unit, gates, and the
   :class:`dscore.stats.Judgement` of the claim alone.
2. :func:`record` writes them to the page's files (``<page>_files/claims.json``) and shows the *evidence*
   (effect, interval, MDE, units, raw p) — never a word: words are decided over the whole chapter.
3. The chapter's overview notebook reads every page's file (:func:`load_pages`), adjusts the hypotheses of the
   chapter as one family (:func:`dscore.stats.family`: every word re-decided on the interval at the level where the
   adjustment stopped) and adds a row ``untestable here`` for every claim of the paper that no page judges
   (:func:`chapter_verdicts`). It writes one verdict table per page (``<page>_verdicts.md``, included by that page),
   its own full table, a forest plot, and the landing page's one line per claim (:func:`at_a_glance`).

So a claim is judged in exactly one place, and the page, the overview and the landing page print the same word.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from . import stats

__all__ = ["ClaimResult", "EvidenceTable", "Design", "Gate", "gate", "claim", "equivalence", "untestable_claim", "record", "evidence_table", "verdict_table", "load_pages",
           "chapter_verdicts", "verdict_markdown", "verdict_box", "word_counts", "forest_plot", "at_a_glance", "publish", "CLAIMS_FILE", "WORD_COLOURS",
           "family_level", "definitions_markdown", "raw_text", "ours_text", "relative_sesoi",
           "load_scale", "scale_line", "SCALE_FILE"]

CLAIMS_FILE = "claims.json"
SCALE_FILE = "scale.json"

#: colour of each word in the forest plots and tables
WORD_COLOURS = {"reproduced": "#1b7837", "stronger than claimed": "#00441b", "weaker than claimed": "#a6dba0",
                "not reproduced": "#d6604d", "contradicted": "#762a83", "inconclusive": "#dfc27d",
                "underpowered": "#878787", "equivalent": "#2166ac", "not equivalent": "#f4a582",
                "untestable here": "#bababa", "descriptive": "#b2abd2"}


@dataclass(frozen=True)
class ClaimResult:
    """One judged claim. ``id`` is stable (``"<page>.<key>"``, glued and linked by it); ``paper_id`` the literal id of
    the paper's claim in :mod:`dscore.papers` it tests (None for a check of our own); ``statement`` what A − B is;
    ``paper`` what the paper reports (its size and source); ``unit`` the unit of ``judgement.diff``, ``ci`` and
    ``mde``; ``note`` anything a reader must know to read the row (a different IPC, the margin's origin)."""

    id: str
    paper_id: str | None
    statement: str
    paper: str
    unit: str
    judgement: stats.Judgement
    note: str = ""

    @property
    def page(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def word(self) -> str:
        return self.judgement.word

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "paper_id": self.paper_id, "statement": self.statement, "paper": self.paper,
                "unit": self.unit, "note": self.note, "judgement": self.judgement.as_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ClaimResult":
        return cls(id=d["id"], paper_id=d.get("paper_id"), statement=d["statement"], paper=d["paper"], unit=d["unit"],
                   note=d.get("note", ""), judgement=stats.Judgement.from_dict(d["judgement"]))


def _check_id(claim_id: str) -> str:
    if not isinstance(claim_id, str) or claim_id.count(".") != 1 or not all(claim_id.split(".")):
        raise ValueError(f"claim id {claim_id!r} must read '<page>.<key>', e.g. 'adq_main.gain_avg'")
    return claim_id


@dataclass(frozen=True)
class Gate:
    """A precondition under which a claim's comparison can show the claimed effect (e.g. "IDC's final set beats its
    initial set"), judged with its own numbers. ``passed`` False turns the claim ``untestable here`` with ``text``
    (what was measured) and ``remedy`` (what scale would pass it); a passed gate is listed in the row's note."""

    name: str
    passed: bool
    text: str
    remedy: str = ""


def gate(name: str, a: Any, b: Any, *, unit: str, sesoi: float, scale: float = 1.0, remedy: str = "",
         alpha: float = 0.05) -> Gate:
    """A gate judged like a claim on its own (:func:`dscore.stats.judge`, paired by unit id, at ``alpha``, not
    in the chapter's family): it passes when its interval excludes zero on the positive side (A > B) and the effect
    is at least ``sesoi`` (a precondition holds clearly, not by a consistent hair)."""
    dropped: list[str] = []
    ua, ub = _arms(name, a, b, scale, dropped)
    j = stats.judge(ua, ub, sesoi=sesoi, alpha=alpha)
    ok = j.word in ("reproduced", "stronger than claimed", "weaker than claimed") and j.diff >= sesoi
    lo, hi = j.ci
    text = (f"{name}: {_num(j.diff)} [{_num(lo)}, {_num(hi)}] {unit} ({100 * (1 - alpha):g} % interval, n {j.n}, "
            f"{j.test}, p {_p(j.p)}; passes when the interval excludes 0 and the effect is at least {sesoi:g})"
            + "".join(f"; {d}" for d in dropped))
    if j.min_p is not None and j.min_p >= alpha:
        need = next(n for n in range(2, 64) if 2.0 / 2 ** n < alpha)
        remedy = (f"with {j.n} units no test can pass this gate (smallest p {j.min_p:.3g}): at least {need} are needed"
                  + (f"; {remedy}" if remedy else ""))
    return Gate(name, ok, text, remedy)


@dataclass(frozen=True)
class Design:
    """How a claim's units came about, beyond its arms: ``discrete`` (the outcome takes few values: the exact test at
    any n), ``censored`` (``{unit: +1 | -1}``, values that are only a lower / upper bound), ``descriptive`` (why the
    units are not independent: the row is shown, never judged), ``gates`` (:func:`gate` preconditions; a failed one
    makes the row ``untestable here`` with its numbers), ``note`` (what a reader must know to read the row)."""

    discrete: bool = False
    censored: Mapping[Any, int] | None = None
    descriptive: str | None = None
    gates: Sequence[Gate] = ()
    note: str = ""


def _arms(claim_id: str, a: Any, b: Any, scale: float, notes: list[str]) -> tuple[dict, dict]:
    """Both arms scaled; a unit missing (NaN) in either arm is dropped from both, and ``notes`` says so."""
    def scaled(values):
        if isinstance(values, Mapping):
            return {u: (float(v) * scale if v is not None else math.nan) for u, v in values.items()}
        return {u: v * scale for u, v in stats.as_units(values, claim_id).items()}

    ua, ub = scaled(a), scaled(b)
    dropped = sorted({u for u, v in ua.items() if not math.isfinite(v)} | {u for u, v in ub.items()
                                                                         if not math.isfinite(v)}, key=str)
    if dropped:
        ua = {u: v for u, v in ua.items() if u not in dropped}
        ub = {u: v for u, v in ub.items() if u not in dropped}
        notes.append(f"units {dropped} dropped from both arms: a cell of theirs is missing (NaN)")
    return ua, ub


def _judged(claim_id, paper_id, statement, paper, unit, design: Design, notes: list[str], judge_it) -> ClaimResult:
    notes = ([design.note] if design.note else []) + notes + [f"gate passed: {g.text}" for g in design.gates
                                                              if g.passed]
    failed = [g for g in design.gates if not g.passed]
    if failed:
        why = "; ".join(f"gate failed — {g.text}" + (f"; {g.remedy}" if g.remedy else "") for g in failed)
        j = stats.untestable(why)
    else:
        j = judge_it()
        if design.descriptive:
            j = stats.descriptive(j, design.descriptive)
    return ClaimResult(claim_id, paper_id, statement, paper, unit, j, "; ".join(n for n in notes if n))


def claim(claim_id: str, paper_id: str | None, statement: str, paper: str, a: Any, b: Any, *, unit: str,
          claim_sign: int = 1, claimed: float | None = None, sesoi: tuple[float, str] | None = None,
          scale: float = 1.0, design: Design | None = None) -> ClaimResult:
    """Judge the claim "A − B has sign ``claim_sign``" (:func:`dscore.stats.judge`, the arms paired by unit id) and
    wrap it with what a table needs.

    ``a``/``b``: one value per unit (``{unit id: value}``), multiplied by ``scale`` (e.g. 100: accuracies in
    points); ``claimed`` (the paper's size) is in the scaled unit. A claim of a sign only declares ``sesoi`` as
    ``(smallest effect of interest, where it comes from)`` in the scaled unit, so that a tight null reads ``not
    reproduced``. ``design``: :class:`Design` (discrete outcomes, censored values, descriptive rows, gates, a note).

    A unit whose value is missing (NaN) in either arm is dropped from both arms and the row says so; the remaining
    units are judged (never an average over fewer cells: the tables give a unit NaN when any of its cells is).
    """
    _check_id(claim_id)
    design = design or Design()
    notes: list[str] = []
    value, source = _with_source(sesoi, "sesoi")
    if value is not None and not source:
        raise ValueError(f"{claim_id}: sesoi={sesoi!r} needs where it comes from: (value, source)")
    if value is not None and claimed in (None, 0):
        notes.append(f"smallest effect of interest {value:g} {unit}: {source}")
    ua, ub = _arms(claim_id, a, b, scale, notes)
    return _judged(claim_id, paper_id, statement, paper, unit, design, notes, lambda: stats.judge(
        ua, ub, claim_sign=claim_sign, claimed=claimed, sesoi=value if claimed in (None, 0) else None,
        discrete=design.discrete, censored=design.censored))


def equivalence(claim_id: str, paper_id: str | None, statement: str, paper: str, a: Any, b: Any, *, unit: str,
                margin: tuple[float, str], scale: float = 1.0, design: Design | None = None) -> ClaimResult:
    """Judge the claim "|A − B| < margin" ("no worse", "lossless", "negligible") by two one-sided tests, ``margin`` as
    ``(bound, where the bound comes from)`` in the scaled unit; a bound without its source is ``untestable here``.
    The rest as :func:`claim`."""
    _check_id(claim_id)
    design = design or Design()
    value, source = _with_source(margin, "margin")
    notes = [f"margin ±{value:g} {unit}: {source}"] if source else []
    ua, ub = _arms(claim_id, a, b, scale, notes)
    if not source:
        return ClaimResult(claim_id, paper_id, statement, paper, unit, stats.untestable(
            "an equivalence claim needs its margin stated with where it comes from; none was given", margin=value),
            design.note)
    return _judged(claim_id, paper_id, statement, paper, unit, design, notes, lambda: stats.judge(
        ua, ub, margin=value, discrete=design.discrete, censored=design.censored))


def relative_sesoi(values: Any, fraction: float, what: str, *, scale: float = 1.0) -> tuple[float, str]:
    """A smallest effect of interest of ``fraction`` × the mean magnitude of ``values`` (one per unit, multiplied by
    ``scale`` like the claim's arms), with its source: ``(0.1 × mean, "10 % of IDC's mean (0.0123)")``. For claims
    measured in units with no natural size (distances, seconds, MMD²). A mean of 0 gives the smallest float."""
    units = stats.as_units({u: v for u, v in values.items() if v == v} if isinstance(values, Mapping) else values,
                           what)
    mean = float(np.mean([abs(v) for v in units.values()])) * scale if units else 0.0
    value = fraction * mean if mean > 0 else float(np.finfo(float).tiny)
    return value, f"{fraction:.0%} of {what} ({value:.3g}): our smallest effect of interest; the paper states no size"


def _with_source(value, name):
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"{name}={value!r} must be (bound, where the bound comes from)")
        return float(value[0]), str(value[1])
    return (None if value is None else float(value)), ""


def untestable_claim(claim_id: str, paper_id: str | None, statement: str, paper: str, reason: str, *,
                     unit: str = "", diff: float | None = None, note: str = "") -> ClaimResult:
    """A claim whose design guard failed (or that needs what this book does not have): ``untestable here``."""
    _check_id(claim_id)
    return ClaimResult(claim_id, paper_id, statement, paper, unit, stats.untestable(reason, diff=diff), note)


# ------------------------------------------------------------------------------------------ formatting

def _num(v: float | None, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    mag = abs(v)
    if mag >= 1e5:
        return f"{v:+.{digits}e}"
    if mag != 0 and mag < 10 ** -digits:           # small effects keep three significant digits: +0.00417, never 5e-05
        return f"{v:+.{2 - math.floor(math.log10(mag))}f}"
    return f"{v:+.{digits}f}"


def _p(v: float | None) -> str:
    if v is None:
        return "–"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def _interval(r: ClaimResult, ci) -> str:
    j = r.judgement
    if j.diff is None:
        return "–"
    text = "" if ci is None else f" [{_num(ci[0])}, {_num(ci[1])}]"
    return f"{_num(j.diff)}{text} {r.unit}".strip()


def ours_text(r: ClaimResult) -> str:
    """``"+0.54 [−2.66, +3.73] points"``: the effect with the interval its word was decided on (95 % for a claim
    judged alone; the chapter's level after :func:`chapter_verdicts`) and the unit."""
    return _interval(r, r.judgement.ci)


def raw_text(r: ClaimResult) -> str:
    """The effect with its unadjusted 95 % interval (``ci_raw``): what the page alone shows."""
    return _interval(r, r.judgement.ci_raw)


def _level_text(j: stats.Judgement) -> str:
    return "–" if j.ci_level is None else f"{100 * j.ci_level:.4g} %"


def _claimed_text(r: ClaimResult) -> str:
    j = r.judgement
    if j.margin is not None:
        return f"|A − B| < {j.margin:g} {r.unit}".strip()
    if j.claimed is None or j.claimed == 0:
        if j.word == "untestable here" and j.claimed != 0:
            return "–"
        sign = "A < B" if j.claim_sign < 0 else "A > B"
        return f"{sign} (smallest effect of interest {j.sesoi:g} {r.unit})".strip() if j.sesoi else sign
    return f"{_num(j.claimed)} {r.unit}".strip()


def _mde_text(r: ClaimResult) -> str:
    j = r.judgement
    if j.mde is None:
        return "–"
    return f"{_num(j.mde).lstrip('+')} {r.unit}".strip()


def evidence_table(results: Sequence[ClaimResult]):
    """The page's evidence, one row per claim: id, paper claim, statement, the paper, the claimed size (or the
    smallest effect of interest), ours with its unadjusted 95 % interval, the test, the number of units and the raw
    p of δ = 0. No word: the words are decided over the whole chapter (:func:`verdict_table`)."""
    import pandas as pd

    rows = []
    for r in results:
        j = r.judgement
        rows.append({"claim id": r.id, "paper claim": r.paper_id or "(ours)", "A − B": r.statement,
                     "paper": r.paper, "claimed": _claimed_text(r), "ours [95 % CI]": raw_text(r),
                     "test": j.test or "–", "n units": j.n, "p": _p(j.p)})
    return pd.DataFrame(rows)


def _cell(text: Any) -> str:
    """A Markdown table cell: pipes escaped, one line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(frame) -> str:
    lines = ["| " + " | ".join(_cell(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


class EvidenceTable:
    """A page's evidence (:func:`evidence_table`) as the notebook shows it: a Markdown table, no cell cut short.
    ``frame`` is the DataFrame."""

    def __init__(self, frame):
        self.frame = frame

    def _repr_markdown_(self) -> str:
        return _markdown(self.frame)

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)


def verdict_table(results: Sequence[ClaimResult]):
    """The verdicts, one row per claim: the evidence columns, then the interval the word was decided on (at the
    chapter's level, its confidence in ``level``), the MDE at that level, the adjusted p of δ = 0 and of the size,
    the word and the reason."""
    df = evidence_table(results)
    df["level"] = [_level_text(r.judgement) for r in results]
    df["ours [decided on]"] = [ours_text(r) for r in results]
    df["MDE (at level)"] = [_mde_text(r) for r in results]
    df["p (adj.)"] = [_p(r.judgement.p_adj) for r in results]
    df["p size (adj.)"] = [_p(r.judgement.p_size_adj) for r in results]
    df["verdict"] = [r.word for r in results]
    df["why"] = [r.judgement.reason + (f" — {r.note}" if r.note else "") for r in results]
    return df


# ------------------------------------------------------------------------------------------ the pages' files

def record(page: str, results: Iterable[ClaimResult], *, scale: Mapping[str, Any] | None = None):
    """Write a page's claims to ``<page>_files/claims.json`` (atomically; the book runner's page folder) and return the
    :func:`evidence_table` to display (an :class:`EvidenceTable`); glues each claim's effect as ``<id>.ours``. Every id
    must start with ``<page>.`` and be unique. ``scale`` (a chapter's headline page: what its study ran at, e.g.
    ``study.describe()`` and its seeds) is written beside them (``scale.json``), for :func:`scale_line`."""
    from .paths import page_files_dir
    from .utils import atomic_write_text

    results = list(results)
    seen = set()
    for r in results:
        if r.page != page:
            raise ValueError(f"claim {r.id!r} is recorded by page {page!r}; its id must start with '{page}.'")
        if r.id in seen:
            raise ValueError(f"claim id {r.id!r} appears twice on page {page!r}; a claim is judged once")
        seen.add(r.id)
    folder = page_files_dir(page)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CLAIMS_FILE
    atomic_write_text(path, json.dumps([r.as_dict() for r in results], indent=1))
    path.chmod(0o644)
    if scale is not None:
        atomic_write_text(folder / SCALE_FILE, json.dumps({str(k): str(v) for k, v in scale.items()}, indent=1))
        (folder / SCALE_FILE).chmod(0o644)
    from .report import glue

    for r in results:        # the page's evidence, pasteable by claim id: {glue:text}`<page>.ipynb::<id>.ours`
        glue(f"{r.id}.ours", ours_text(r))
    return EvidenceTable(evidence_table(results))


def load_scale(page: str, pages_dir: str | Path) -> dict[str, str] | None:
    """What ``page`` recorded as its scale (:func:`record`'s ``scale``), or None when it recorded none."""
    path = Path(pages_dir) / f"{page}_files" / SCALE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def scale_line(scale: Mapping[str, str] | None, profile: str, page: str) -> str:
    """One line naming the scale a chapter's words hold for: the profile and what its headline ``page`` ran at
    (data, networks, budgets, seeds), from :func:`load_scale`."""
    if not scale:
        return (f"These words hold for the `{profile}` profile's scale only; {page} recorded no description of it "
                f"(see each page's banner).")
    keep = [k for k in scale if k not in ("device",)]
    parts = "; ".join(f"{k}: {scale[k]}" for k in keep)
    return (f"**Scale.** Every word of this chapter holds for the `{profile}` profile's scale only, as run on "
            f"{page}: {parts}. The paper's sizes are on its own datasets and networks.")


def load_pages(pages: Sequence[str], pages_dir: str | Path) -> list[ClaimResult]:
    """Every claim the executed ``pages`` recorded under ``pages_dir`` (``<pages_dir>/<page>_files/claims.json``), in
    page order. A page without the file raises ValueError naming it (execute the page first)."""
    out: list[ClaimResult] = []
    missing = []
    for page in pages:
        path = Path(pages_dir) / f"{page}_files" / CLAIMS_FILE
        if not path.exists():
            missing.append(str(path))
            continue
        out += [ClaimResult.from_dict(d) for d in json.loads(path.read_text())]
    if missing:
        raise ValueError(f"no recorded claims for {len(missing)} page(s): {missing}; execute those pages first "
                         f"(python -m dscore.book build --only …)")
    ids = [r.id for r in out]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"claim ids recorded twice: {dupes}")
    return out


def chapter_verdicts(results: Sequence[ClaimResult], paper_claims: Sequence[Any], untestable: Mapping[str, str],
                     judged_on: Mapping[str, str] | None = None, *, family: str = "this chapter") -> list[ClaimResult]:
    """The chapter's verdicts: every judged claim's hypotheses adjusted as one family (:func:`dscore.stats.family`,
    Holm–Shaffer; each word re-decided on the interval at the level where the procedure stopped), then one ``untestable here`` row for every
    claim of the paper (``paper_claims``, objects with ``.id``, ``.text``, ``.source``) that no page judged, with
    its reason: from ``untestable`` (paper id → why this book cannot test it), or, for a claim a page judges when its
    parameters run it (``judged_on``: paper id → page), that this build's parameters of that page left it out.
    Ordered by the paper's claim order, our own checks last.

    Raises ValueError for a recorded paper id the paper does not have, or a paper claim that is neither judged nor
    explained.
    """
    judged_on = dict(judged_on or {})
    ids = [c.id for c in paper_claims]
    unknown = sorted({r.paper_id for r in results if r.paper_id is not None and r.paper_id not in ids})
    if unknown:
        raise ValueError(f"claims recorded against unknown paper claim id(s) {unknown}; the paper's ids: {ids}")
    adjusted = dict(zip([r.id for r in results], stats.family([r.judgement for r in results], name=family)))
    out = [replace(r, judgement=adjusted[r.id]) for r in results]
    judged = {r.paper_id for r in out}
    for c in paper_claims:
        if c.id in judged:
            continue
        if c.id in untestable:
            why = untestable[c.id]
        elif c.id in judged_on:
            why = (f"{judged_on[c.id]} judges it when its parameters run it; this build's parameters of that page leave "
                   f"it out (e.g. a keep ratio or method not run)")
        else:
            raise ValueError(f"the paper's claim {c.id!r} is neither judged by a page nor explained as untestable here")
        out.append(ClaimResult(f"overview.{c.id}", c.id, c.text, c.source, "", stats.untestable(why)))
    order = {cid: i for i, cid in enumerate(ids)}
    return sorted(out, key=lambda r: order.get(r.paper_id, len(ids)))


def verdict_markdown(results: Sequence[ClaimResult], *, link_prefix: str | None = None, compact: bool = False) -> str:
    """A Markdown table of verdicts (the overview's full table). With ``link_prefix`` every row links to its page
    (``<link_prefix><page>.ipynb``). ``compact``: only the id, the interval the word was decided on, the MDE at that
    level, the adjusted p-values, the word and the reason (below a page's evidence table, which has the rest)."""
    cell = _cell
    table = verdict_table(results)
    if compact:
        head = ["claim id", "ours [decided on]", "level", "MDE (at level)", "p (adj.)", "p size (adj.)", "verdict",
                "why"]
    else:
        head = ["claim id", "paper claim", "A − B", "paper", "claimed", "ours [95 % CI]", "level",
                "ours [decided on]", "MDE (at level)", "n units", "test", "p", "p (adj.)", "p size (adj.)", "verdict",
                "why"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, (_, row) in zip(results, table.iterrows()):
        cid = cell(r.id)
        if link_prefix is not None and not r.id.startswith("overview."):
            cid = f"[{cid}]({link_prefix}{r.page}.ipynb)"
        values = [cid] + [f"**{r.word}**" if h == "verdict" else cell(row[h]) for h in head[1:]]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def verdict_box(results: Sequence[ClaimResult]) -> str:
    """The box a page opens with (MyST admonition): one line per claim — the chapter's word, what A − B is, our
    effect with the interval the word was decided on, the paper's size — and where the evidence is. A page that
    judges nothing says so."""
    lines = [":::{admonition} Verdicts of this page", ":class: note", ""]
    if not results:
        lines.append("No claim of the paper is judged on this page.")
    for r in results:
        claimed = _claimed_text(r)
        paper = f"; paper: {claimed}" if not claimed.startswith(("–", "A > B", "A < B")) else ""
        level = f" ({_level_text(r.judgement)} interval)" if r.judgement.ci_level is not None else ""
        if r.word == "untestable here":          # no interval: the box says why, the verdict table says it all
            lines.append(f"- **{r.word}** — {_cell(r.statement)}: {_cell(r.judgement.reason.split('; ')[0])}")
            continue
        lines.append(f"- **{r.word}** — {_cell(r.statement)}: {ours_text(r)}{level}{paper}")
    lines += ["", "Words decided over the whole chapter (Holm–Shaffer), each on the interval shown; the unadjusted "
              "evidence is in *Claims* at the end of the page, the minimum detectable effects and reasons below it.",
              ":::", ""]
    return "\n".join(lines)


def word_counts(results: Sequence[ClaimResult]) -> str:
    """``"reproduced: 3; underpowered: 20; untestable here: 9"``: how many claims carry each word."""
    return "; ".join(f"{w}: {n}" for w, n in stats.family_words(r.judgement for r in results).items())


def at_a_glance(chapters: Mapping[str, Sequence[ClaimResult]], *, link_prefix: str, overview: str | None = None,
                counts: bool = True) -> str:
    """The landing page's summary: per chapter (a title, may be empty), the count of each word, then one line per
    claim (id, statement, ours, word), linked to its page (claims no page judges: to ``overview``)."""
    parts = []
    for title, results in chapters.items():
        lead = f"**{title}** — " if title else ""
        if counts or title:
            parts.append(lead + (word_counts(results) if counts else "") + "\n")
        parts.append("| claim | A − B | ours [interval the word was decided on] | verdict |\n|---|---|---|---|")
        for r in results:
            page = overview if r.id.startswith("overview.") else r.page
            label = r.id if page is None else f"[{r.id}]({link_prefix}{page}.ipynb)"
            text = r.statement.replace("|", "\\|")
            parts.append(f"| {label} | {text} | {ours_text(r)} | **{r.word}** |")
        parts.append("")
    return "\n".join(parts) + "\n"


def forest_plot(results: Sequence[ClaimResult], *, title: str = ""):
    """Every judged claim's effect with the interval its word was decided on (thick: at the chapter's level; an
    equivalence claim's ``1 − 2λ`` interval, as TOST reads it, with the margin as bars) and its unadjusted 95 %
    interval (thin), the paper's size (◇) and zero, coloured by word; one panel per unit, since the claims are
    measured in different units. Untestable claims are left out (they have no interval); an interval without
    finite ends (no test at that n reaches the level) is drawn to the panel's edge with an arrow."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    shown = [r for r in results if r.judgement.diff is not None and r.judgement.ci is not None]
    units = list(dict.fromkeys(r.unit or "(no unit)" for r in shown))
    if not shown:
        fig, ax = plt.subplots(figsize=(8, 1))
        ax.text(0.5, 0.5, "no claim has an interval", ha="center", va="center")
        ax.axis("off")
        return fig
    heights = [max(1.0, 0.28 * sum((r.unit or "(no unit)") == u for r in shown) + 0.6) for u in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(11, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, unit in zip(axes[:, 0], units):
        rows = [r for r in shown if (r.unit or "(no unit)") == unit]
        finite = [v for r in rows for v in (*(r.judgement.ci_raw or ()), *r.judgement.ci, r.judgement.diff,
                                             r.judgement.claimed or 0.0) if v is not None and math.isfinite(v)]
        lo_edge, hi_edge = min(finite + [0.0]), max(finite + [0.0])
        pad = 0.08 * (hi_edge - lo_edge or 1.0)
        lo_edge, hi_edge = lo_edge - pad, hi_edge + pad
        for y, r in enumerate(reversed(rows)):
            j = r.judgement
            colour = WORD_COLOURS[j.word]
            if j.ci_raw is not None:
                raw = [min(max(v, lo_edge), hi_edge) for v in j.ci_raw]
                ax.plot(raw, [y + 0.22, y + 0.22], color=colour, lw=0.9, alpha=0.8)
            ends = [min(max(v, lo_edge), hi_edge) for v in j.ci]
            ax.plot(ends, [y, y], color=colour, lw=2.4)
            for v, end, marker in ((j.ci[0], ends[0], "<"), (j.ci[1], ends[1], ">")):
                if math.isinf(v):
                    ax.plot([end], [y], marker, color=colour, ms=5)
            ax.plot([j.diff], [y], "o", color=colour, ms=5)
            if j.claimed not in (None, 0):
                ax.plot([j.claimed], [y], "D", color="black", ms=4, mfc="none")
            if j.margin is not None:
                ax.plot([-j.margin, j.margin], [y, y], "|", color="black", ms=8)
        ax.set_xlim(lo_edge, hi_edge)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([r.id for r in reversed(rows)], fontsize=8)
        ax.set_xlabel(f"A − B ({unit})", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    handles = [Line2D([], [], color=c, lw=2.5, label=w) for w, c in WORD_COLOURS.items() if w != "untestable here"]
    handles.append(Line2D([], [], color="grey", lw=0.9, label="unadjusted 95 %"))
    handles.append(Line2D([], [], marker="D", color="black", mfc="none", lw=0, label="paper's size"))
    axes[0, 0].legend(handles=handles, fontsize=7, ncol=5, loc="lower left", bbox_to_anchor=(0, 1.02))
    if title:
        fig.suptitle(title, fontsize=10, y=1.0)
    fig.tight_layout()
    return fig


def family_level(results: Sequence[ClaimResult]) -> str:
    """One line on the level the chapter's words were decided at: ``"Holm–Shaffer over 24 claims (48 hypotheses),
    stopped at level 0.00208: every interval is a 99.79 % interval (equivalence: 99.58 %)"``."""
    judged = [r.judgement for r in results if r.judgement.p is not None and r.judgement.min_p is not None
              and r.judgement.min_p < r.judgement.alpha]
    levels = {r.judgement.level for r in results if r.judgement.p is not None and r.judgement.level is not None}
    if not levels:
        return "No claim of this chapter could be tested at this scale."
    if not judged:
        return ("No claim of this chapter can be decided at this scale: every tested row has too few units for any test "
                "to reach p < 0.05, so no adjustment was needed and the intervals are unadjusted 95 % intervals.")
    level = min(levels)
    return (f"Holm–Shaffer over {len(judged)} testable claims ({2 * len(judged)} hypotheses: zero and the size of "
            f"each), stopped at level {level:.3g}: every word was decided on the {100 * (1 - level):.4g} % interval "
            f"shown beside it ({100 * (1 - 2 * level):.4g} % for an equivalence claim).")


def definitions_markdown() -> str:
    """Every verdict word in one sentence each (:data:`dscore.stats.DEFINITIONS`), as a Markdown list."""
    return "\n".join(f"- **{w}**: {stats.DEFINITIONS[w]}" for w in stats.WORDS) + "\n"


def publish(overview: str, results: Sequence[ClaimResult], *, link_prefix: str = "nb/",
            pages: Sequence[str] = (), scale: str = "") -> Path:
    """Write the chapter's verdicts where the book includes them, into the overview's files
    (``<overview>_files/``): ``<page>_box.md`` (:func:`verdict_box`, included at the top of the page; also for every
    page of ``pages`` that judged nothing), ``<page>_verdicts.md`` for every page (included below that page's
    evidence) and
    ``at_a_glance.md`` (included by the landing page; links ``<link_prefix><page>.ipynb``, relative to the landing
    page), and glues every claim's word under its id and its effect under ``<id>.ours``. Returns the folder."""
    from .paths import page_files_dir
    from .utils import atomic_write_text

    folder = page_files_dir(overview)
    folder.mkdir(parents=True, exist_ok=True)
    by_page: dict[str, list[ClaimResult]] = {}
    for r in results:
        if not r.id.startswith("overview."):
            by_page.setdefault(r.page, []).append(r)
    for page, rows in by_page.items():
        text = ("Decided over the whole chapter (Holm–Shaffer over every claim's zero and size hypotheses), each word "
                "on the interval shown at the chapter's level; the chapter's words, counts and forest plot are on its "
                "overview page.\n\n" + verdict_markdown(rows, compact=True))
        atomic_write_text(folder / f"{page}_verdicts.md", text)
    for page in dict.fromkeys([*pages, *by_page]):
        atomic_write_text(folder / f"{page}_box.md", verdict_box(by_page.get(page, [])))
    atomic_write_text(folder / "at_a_glance.md", at_a_glance({"": results}, link_prefix=link_prefix,
                                                                overview=overview, counts=False))
    for p in folder.glob("*.md"):
        p.chmod(0o644)
    from .report import glue

    glue(f"{overview}.counts", word_counts(results))       # the landing page pastes it
    glue(f"{overview}.scale", scale.replace("**Scale.** ", "") or "the scale of this build's profile (see each page's banner)")
    glue(f"{overview}.level", family_level(results))
    for r in results:        # prose can paste a verdict by its stable id: {glue:text}`…overview_adq.ipynb::<id>`
        glue(r.id, r.word)
        glue(f"{r.id}.ours", ours_text(r))
    return folder
