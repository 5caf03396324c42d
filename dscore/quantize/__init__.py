"""DQ and ADQ: GraphCut bins, bin scores, adaptive budgets, pixel quantization, the cached pipeline.

* :mod:`dscore.quantize.bins` — DQ's bins (:func:`generate_bins`);
* :mod:`dscore.quantize.texture` — texture level and ADQ's representativeness RS;
* :mod:`dscore.quantize.diversity` — ADQ's contrastive diversity DS (and the authors' cosine proxy);
* :mod:`dscore.quantize.sampling` — IS, adaptive per-bin budgets, DQ/ADQ class-stratified sampling;
* :mod:`dscore.quantize.pixelquant` — Grad-CAM patch dropping and the MAE that refills patches;
* :mod:`dscore.quantize.trajectory` — the texture-level training-trajectory check (ADQ Fig. 4);
* :mod:`dscore.quantize.config` — the typed, checked settings of every pipeline stage;
* :mod:`dscore.quantize.pipeline` — the cached end-to-end selections on a dataset.

Layers: this package uses the core modules and :mod:`dscore.select`, never :mod:`dscore.distill`.
"""
from __future__ import annotations

from . import bins, config, diversity, pipeline, pixelquant, sampling, texture, trajectory
from .config import (BinConfig, ExtractorConfig, HeadConfig, MAEConfig, SamplingConfig, ScoreConfig, TrajectoryConfig,
                     TuningConfig)
from .bins import check_bins, generate_bins
from .pixelquant import DEFAULT_THETA, effective_keep_ratio, image_fraction_for
from .sampling import adq_select, bin_budgets, dq_select, importance_scores, sample_from_bins, zscore
from .texture import representativeness_scores, texture_level, texture_level_patches

__all__ = ["bins", "config", "ExtractorConfig", "BinConfig", "HeadConfig", "ScoreConfig", "SamplingConfig",
           "TuningConfig", "MAEConfig", "TrajectoryConfig", "texture", "diversity", "sampling", "pixelquant", "trajectory", "pipeline", "generate_bins",
           "check_bins", "bin_budgets", "texture_level", "texture_level_patches", "representativeness_scores", "zscore",
           "importance_scores", "sample_from_bins", "dq_select", "adq_select",
           "effective_keep_ratio", "image_fraction_for", "DEFAULT_THETA"]
