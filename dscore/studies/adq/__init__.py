"""The ADQ chapter: :mod:`.setup` (the chapter's typed setup, :class:`ADQSetup`), :mod:`.study` (the experiments,
:class:`ADQStudy`), :mod:`.tables` (summaries over seeds) and
:mod:`.claims` (every claim of the chapter, judged). A page imports this package and calls into the three."""
from __future__ import annotations

from . import claims, setup, study, tables
from .setup import ADQSetup, ChapterTuning
from .study import JUDGED_ARMS, METHODS, PAPER_SETTING, SETUP_KEYS, TUNED_METHODS, ADQStudy, method_label, setup_from
from .tables import best_beta, cost_summary, gain_table, mean_std_table, per_seed, per_unit, summarise

__all__ = ["claims", "setup", "study", "tables", "ADQSetup", "ChapterTuning", "JUDGED_ARMS", "METHODS", "PAPER_SETTING", "SETUP_KEYS", "TUNED_METHODS", "ADQStudy", "method_label",
           "setup_from", "best_beta", "cost_summary", "gain_table", "mean_std_table", "per_seed", "per_unit", "summarise"]
