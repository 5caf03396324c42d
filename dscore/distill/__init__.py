"""Dataset distillation: DC, DSA, DM, IDC and the DREAM/DREAM+ pieces that plug into them.

Submodules:

- :mod:`dscore.distill.losses` — gradient distances (DC layer-wise 1 − cos; IDC summed squared /
  absolute error), the DM embedding-mean distance and DREAM+'s bidirectional loss;
- :mod:`dscore.distill.sampler` — real mini-batch samplers: random, and DREAM's representative
  sampler (samples nearest to k-means sub-cluster centres, re-clustered every few steps);
- :mod:`dscore.distill.init` — synthetic-image initialisation (random real, noise, k-means centres)
  and IDC's multi-formation decode / "mix" init;
- :mod:`dscore.distill.config` — :class:`DistillConfig`, the papers' defaults and named presets;
- :mod:`dscore.distill.engine` — :func:`distill`, the loop that puts the pieces together;
- :mod:`dscore.distill.evaluate` — evaluation of synthetic sets and of coresets at the same IPC;
- :mod:`dscore.distill.cached` — runs as cached, resumable artefacts, and DM at a keep ratio.

Example::

    cfg = preset("dreamplus", "fashion_mnist", ipc=10, iterations=20)
    result = distill(ds.images, ds.labels, cfg, mean=ds.mean, std=ds.std)
    acc = evaluate_result(result, test.images, test.labels, mean=ds.mean, std=ds.std, epochs=300)
"""
from __future__ import annotations

from . import cached, config, engine, evaluate, init, losses, sampler
from .cached import distill_cached, dm_at_ratio
from .config import DistillConfig, default_config, preset
from .engine import DistillResult, distill
from .evaluate import (Evaluation, evaluate_coreset_ipc, evaluate_result, evaluate_snapshots, evaluate_synthetic,
                       select_coreset_ipc)

__all__ = ["cached", "distill_cached", "dm_at_ratio", "init", "losses", "sampler", "config", "engine", "evaluate", "distill", "DistillResult",
           "DistillConfig", "default_config", "preset", "Evaluation", "evaluate_synthetic", "evaluate_result",
           "evaluate_snapshots",
           "evaluate_coreset_ipc", "select_coreset_ipc"]
