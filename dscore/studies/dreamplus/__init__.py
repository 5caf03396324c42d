"""The DREAM+ chapter: :mod:`.setup` (the chapter's typed setup, :class:`DreamSetup`), :mod:`.study` (the
experiments, :class:`DreamStudy`), :mod:`.tables` (summaries, efficiency
curves, step costs) and :mod:`.claims` (every claim of the chapter, judged). A page imports this package and calls
into the three."""
from __future__ import annotations

from . import claims, gates, setup, study, tables
from .setup import DreamSetup, LrTuning
from .study import CORESETS, PAPER_DATASET, SETUP_KEYS, DreamStudy, method_label, preset_components, setup_from
from .tables import (accs_of, cumulative_seconds, curve_speedups, iterations_to_baseline, paper_cell, per_step_costs,
                     speedup_table, stability_summary, summarise, unit_means)
from .tables import beside_paper, cost_summary, mmd_summary, probe_summary
from .gates import initial_sets

__all__ = ["claims", "gates", "initial_sets", "setup", "study", "tables", "DreamSetup", "LrTuning", "CORESETS", "PAPER_DATASET", "preset_components", "SETUP_KEYS", "DreamStudy", "method_label", "setup_from",
           "accs_of", "cumulative_seconds", "curve_speedups", "iterations_to_baseline", "paper_cell", "per_step_costs",
           "speedup_table", "summarise", "unit_means", "stability_summary", "probe_summary", "mmd_summary", "cost_summary",
           "beside_paper"]
