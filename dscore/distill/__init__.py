"""Dataset distillation: DC, DSA, DM, IDC and the DREAM/DREAM+ pieces that plug into them.

Submodules:

- :mod:`dscore.distill.losses` — gradient distances (DC layer-wise 1 − cos; IDC summed squared /
  absolute error), the DM embedding-mean distance and DREAM+'s bidirectional loss;
- :mod:`dscore.distill.sampler` — real mini-batch samplers: random, and DREAM's representative
  sampler (samples nearest to k-means sub-cluster centres, re-clustered every few steps);
- :mod:`dscore.distill.init` — synthetic-image initialisation (random real, noise, k-means centres)
  and IDC's multi-formation decode / "mix" init.
"""
from __future__ import annotations

from . import init, losses, sampler

__all__ = ["init", "losses", "sampler"]
