"""The DREAM+ chapter: :mod:`.setup` (the chapter's typed setup, :class:`DreamSetup`), :mod:`.study` (the core,
:class:`DreamStudy`: configs, runs, evaluations, the grid and the curves), the analyses as free functions of a study
(:mod:`.coresets`, :mod:`.tuning`, :mod:`.probes`, :mod:`.runs`, :mod:`.variants`, :mod:`.incremental`,
:mod:`.baselines`), :mod:`.tables` (summaries, efficiency curves, step costs) and :mod:`.claims` (every claim of the
chapter, judged). A page imports this package and calls into them."""
from __future__ import annotations

from . import (baselines, claims, coresets, gates, incremental, labels, probes, runs, setup, study, tables, tuning,
               variants)
from .baselines import baseline_diagnostics, calibration
from .coresets import coreset, embeddings, feature_net, forgetting
from .runs import costs, coverage, diagnostics, migration, pixel_change
from .gates import initial_sets
from .incremental import continual
from .labels import CORESETS, PAPER_DATASET, method_label
from .probes import batch_mmd_probe, common_probe, mmd_trajectory, probe_network
from .setup import SETUP_KEYS, DreamSetup, LrTuning, setup_from
from .study import DreamStudy, preset_components
from .tables import (accs_of, cumulative_seconds, curve_speedups, iterations_to_baseline, paper_cell, per_step_costs,
                     speedup_table, stability_summary, summarise, unit_means)
from .tables import beside_paper, cost_summary, mmd_summary, probe_summary
from .tuning import lr_img_choice
from .variants import class_fraction_cells, cross_arch, fraction_cells, evaluate_topk, interval_curves, interval_grid, sampling_grid

__all__ = ["baselines", "claims", "coresets", "runs", "gates", "incremental", "labels", "probes", "setup",
           "study", "tables", "tuning", "variants",
           "DreamSetup", "LrTuning", "CORESETS", "PAPER_DATASET", "preset_components", "SETUP_KEYS", "DreamStudy",
           "method_label", "setup_from", "initial_sets",
           "baseline_diagnostics", "calibration", "coreset", "embeddings", "feature_net", "forgetting", "costs",
           "coverage", "diagnostics", "migration", "pixel_change", "continual", "batch_mmd_probe", "common_probe",
           "mmd_trajectory", "probe_network", "lr_img_choice", "class_fraction_cells", "cross_arch", "fraction_cells", "evaluate_topk",
           "interval_curves", "interval_grid", "sampling_grid",
           "accs_of", "cumulative_seconds", "curve_speedups", "iterations_to_baseline", "paper_cell", "per_step_costs",
           "speedup_table", "summarise", "unit_means", "stability_summary", "probe_summary", "mmd_summary", "cost_summary",
           "beside_paper"]
