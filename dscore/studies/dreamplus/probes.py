"""What the DREAM+ chapter measures on probe networks (DREAM Fig. 2b, DREAM+ Fig. 6): how far a real mini-batch is
from its class (random against representative batches), and how far every arm's synthetic set is from the real data
in gradients, features and MMD, each measured on one common probe. Free functions of a :class:`~.study.DreamStudy`."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch

from ...fingerprint import code_version, dataset_fingerprint
from ...models import create_model
from ...utils import check_int
from .labels import CORESETS, method_label
from .study import DreamStudy

__all__ = ["probe_network", "batch_mmd_probe", "common_probe", "mmd_trajectory"]


def probe_network(study: DreamStudy, seed: int, pretrain_epochs: int = 1):
    """The probe of Fig. 2 and Fig. 6: a fresh network of the page's architecture (init from ``seed``) trained
    ``pretrain_epochs`` epochs on the training part (0 = untrained), in eval mode, on the study's device.
    Independent of every distillation run, so that arms are measured on one footing. Cached (its weights are an
    artefact): the probes of one page (common probe, MMD trajectory) are the same networks, trained once."""
    from ...train import train_model

    seed = check_int("seed", seed, low=0)
    pretrain_epochs = check_int("pretrain_epochs", pretrain_epochs, low=0)
    s, train = study.setup, study.splits.train

    def fresh():
        return create_model(s.arch, num_classes=train.num_classes, in_channels=train.channels,
                            image_size=train.image_size, mean=train.mean, std=train.std, seed=seed, **s.arch_kwargs)

    def compute():
        net = fresh()
        if pretrain_epochs:
            train_model(net, train.images, train.labels, {"epochs": pretrain_epochs, "batch_size": 128, "lr": 0.01},
                        device=study.device, seed=seed, progress=False)
        return {"state": {k: v.detach().cpu() for k, v in net.state_dict().items()}}

    key = {"dataset": dataset_fingerprint(train), "arch": s.arch, "arch_kwargs": dict(s.arch_kwargs), "seed": seed,
           "pretrain_epochs": pretrain_epochs, "device": study.device.type}
    state = study.cache.get_or_compute("dream_probe", key, compute, version=code_version(__name__))["state"]
    net = fresh()
    net.load_state_dict(state)
    return net.to(study.device).eval()


def batch_mmd_probe(study: DreamStudy, seeds: Sequence[int], *, batch: int, pretrain_epochs: int = 1,
                    draws: int = 1) -> pd.DataFrame:
    """MMD² between a real mini-batch and its whole class, random vs. representative batches (DREAM Fig. 2b).

    For every seed: :func:`probe_network` embeds the training part; per class and for each of ``draws`` draws,
    a uniform random batch of ``batch`` images and DREAM's representative batch (the image nearest to each of
    ``batch`` k-means centres, k-means seeded per draw) are compared with the class by
    :func:`dscore.metrics.mmd2` (Gaussian kernel, median bandwidth). A third batch, the ``batch`` images
    *farthest* from their centres ("boundary"), shows the other extreme. Several draws measure the
    fluctuation of the matching targets from one batch to the next (Fig. 2b's "less fluctuation").
    Returns one row per (seed, class, draw, kind) with ``mmd2``; cached per seed. Cost per seed: one embedding
    pass and ``draws`` k-means per class.
    """
    from ...cluster import kmeans
    from ...features import extract_embeddings
    from ...metrics import median_bandwidth, mmd2

    batch = check_int("batch", batch, low=2)
    pretrain_epochs = check_int("pretrain_epochs", pretrain_epochs, low=0)
    draws = check_int("draws", draws, low=1)
    train = study.splits.train
    kinds = ("random", "representative", "boundary")
    rows = []
    for seed in seeds:
        seed = check_int("seed", seed, low=0)
        key = {"dataset": dataset_fingerprint(train), "arch": study.setup.arch, "arch_kwargs": dict(study.setup.arch_kwargs),
               "seed": seed, "batch": batch, "pretrain_epochs": pretrain_epochs, "draws": draws}

        def compute(seed=seed):
            net = probe_network(study, seed, pretrain_epochs)
            emb = extract_embeddings(net, train.images, device=study.device, progress=False).cpu().float()
            out = torch.zeros(train.num_classes, draws, len(kinds), dtype=torch.float64)
            for c in range(train.num_classes):
                e = emb[train.labels == c]
                k = min(batch, e.shape[0])
                sigma = median_bandwidth(e)
                for d in range(draws):             # draw d of class c is the same whatever ``draws`` is
                    gen = torch.Generator().manual_seed(seed * 1000 + c + 100_000 * d)
                    cent, assign = kmeans(e, k, seed=seed * 1000 + c + 100_000 * d)
                    dist = torch.cdist(e, cent)
                    centre = dist.argmin(0)                                   # nearest image to each centre
                    own = dist.gather(1, assign.view(-1, 1)).squeeze(1)       # distance to own centre
                    boundary = own.argsort(descending=True)[:k]
                    rand = torch.randperm(e.shape[0], generator=gen)[:k]
                    for j, idx in enumerate((rand, centre, boundary)):
                        out[c, d, j] = mmd2(e[idx], e, sigma)
            return {"mmd2": out}

        vals = study.cache.get_or_compute("dream_batch_mmd", key, compute, version=code_version(__name__))["mmd2"]
        for c in range(vals.shape[0]):
            for d in range(vals.shape[1]):
                for j, kind in enumerate(kinds):
                    rows.append({"seed": seed, "class": train.classes[c], "draw": d, "kind": kind,
                                 "mmd2": float(vals[c, d, j])})
    return pd.DataFrame(rows)


def common_probe(study: DreamStudy, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int],
                 probe_seeds: Sequence[int], *, batch: int, pretrain_epochs: int = 1) -> pd.DataFrame:
    """Gradient and feature difference of every arm's final synthetic set on **one** probe (Fig. 6b/c).

    The runs' own diagnostics measure each arm in its own networks; here, for every probe seed, one
    :func:`probe_network` and one real batch per class (``batch`` images drawn uniformly with the probe seed)
    serve every arm. For each (method, distillation seed, class) the synthetic images of the class (IDC-decoded,
    as matching sees them) give the gradient difference Σ‖g_real − g_syn‖² of the cross-entropy over all
    parameters (:func:`dscore.metrics.gradient_difference`) and the feature difference ‖μ_real − μ_syn‖² of
    the embeddings (:func:`dscore.metrics.feature_difference`). Returns one row per (method, seed, probe_seed,
    class): ``method, label, seed, probe_seed, class, grad_diff, feature_diff``. Not cached: per probe seed it
    trains one network (``pretrain_epochs``) and takes two small backward passes per arm and class."""
    import torch.nn.functional as F

    from ...metrics import feature_difference, gradient_difference

    batch = check_int("batch", batch, low=1)
    train = study.splits.train
    sets = {}
    for (m, s), result in _distilled_runs(study, methods, ipc, distill_seeds, probe_seeds,
                                          "the probe compares distilled sets").items():
        images, labels = result.training_set()
        sets[(m, s)] = (images.to(study.device), labels.to(study.device))
    rows = []
    for p in probe_seeds:
        p = check_int("probe seed", p, low=0)
        net = probe_network(study, p, pretrain_epochs)
        params = [q for q in net.parameters() if q.requires_grad]
        gen = torch.Generator().manual_seed(p)

        def grads_and_features(x, y):
            emb = net.embed(x)
            loss = F.cross_entropy(net.classify(emb), y)
            return torch.autograd.grad(loss, params), emb.detach().float()

        for c in range(train.num_classes):
            pool = torch.nonzero(train.labels == c).flatten()
            pick = pool[torch.randperm(pool.numel(), generator=gen)[:batch]]
            real = train.images[pick].to(study.device)
            g_real, f_real = grads_and_features(real, torch.full((real.shape[0],), c, device=study.device))
            for (m, s), (images, labels) in sets.items():
                syn = images[labels == c]
                g_syn, f_syn = grads_and_features(syn, labels[labels == c])
                rows.append({"method": m, "label": method_label(m), "seed": s, "probe_seed": p,
                             "class": train.classes[c], "grad_diff": gradient_difference(g_real, g_syn),
                             "feature_diff": feature_difference(f_real, f_syn)})
    return pd.DataFrame(rows)


def mmd_trajectory(study: DreamStudy, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int],
                   probe_seeds: Sequence[int], *, pretrain_epochs: int = 1) -> pd.DataFrame:
    """MMD² between every snapshot's synthetic images and the real data, on common probes (Fig. 6d).

    For every probe seed, :func:`probe_network` embeds the whole training part once; per class, the Gaussian
    bandwidth is the median distance between that class's real embeddings (one σ for every arm and snapshot).
    Every snapshot of every (method, distillation seed) run (iteration 0 = the initialisation; IDC-decoded, as
    matching sees them) is embedded by the same probe, and :func:`dscore.metrics.mmd2` compares a class's
    synthetic images with all of its real ones (unbiased; the biased V-statistic when a class holds a single
    synthetic image). Returns one row per (method, seed, probe_seed, iteration, class): ``method, label, seed,
    probe_seed, iteration, class, mmd2``. Not cached (the runs and probes are); cost per probe seed: one
    embedding pass over the training part and one over every snapshot, O(n_syn · n_class · D) per MMD."""
    from ...features import extract_embeddings
    from ...metrics import median_bandwidth, mmd2

    train = study.splits.train
    snaps = {}
    for (m, s), result in _distilled_runs(study, methods, ipc, distill_seeds, probe_seeds,
                                          "the trajectory follows distillation runs").items():
        if not result.snapshots:
            raise ValueError(f"the {m!r} run keeps no snapshots; set snapshot_every in the distill overrides")
        for it, _ in result.snapshots:
            snaps[(m, s, int(it))] = study.training_set(m, ipc, s, iteration=int(it))
    rows = []
    for p in probe_seeds:
        p = check_int("probe seed", p, low=0)
        net = probe_network(study, p, pretrain_epochs)
        real = extract_embeddings(net, train.images, device=study.device, progress=False).cpu().float()
        per_class = [real[train.labels == c] for c in range(train.num_classes)]
        sigmas = [median_bandwidth(e) for e in per_class]
        for (m, s, it), (images, labels) in snaps.items():
            emb = extract_embeddings(net, images, device=study.device, progress=False).cpu().float()
            for c in range(train.num_classes):
                syn = emb[labels.cpu() == c]
                rows.append({"method": m, "label": method_label(m), "seed": s, "probe_seed": p, "iteration": it,
                             "class": train.classes[c],
                             "mmd2": mmd2(syn, per_class[c], sigmas[c], unbiased=syn.shape[0] >= 2)})
    return pd.DataFrame(rows)


def _distilled_runs(study: DreamStudy, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int],
                    probe_seeds: Sequence[int], purpose: str) -> dict:
    """``{(method, seed): run}`` of every distillation method × seed (checked: none empty, no coreset)."""
    if not methods or not distill_seeds or not probe_seeds:
        raise ValueError("methods, distill_seeds and probe_seeds must be non-empty")
    for m in methods:
        if m in CORESETS:
            raise ValueError(f"method={m!r} is a coreset; {purpose}")
    return {(m, s): study.run(m, ipc, s) for m in methods for s in distill_seeds}
