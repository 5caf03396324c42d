"""The DREAM+ chapter's coresets: ``ipc`` real images per class of the training part, chosen by Random, Herding,
K-Center (on the embeddings of the cached feature ConvNet) or Forgetting (from a ConvNet's forgetting events,
cached). Free functions of a :class:`~.study.DreamStudy`."""
from __future__ import annotations

import torch

from ...distill import select_coreset_ipc
from ...fingerprint import code_version, dataset_fingerprint
from ...models import create_model
from ...utils import check_choice
from .labels import CORESETS

__all__ = ["feature_net", "embeddings", "forgetting", "coreset"]


def feature_net(study):
    """The cached classifier (the setup's network trained ``feature_epochs`` on the training part) whose embeddings
    Herding, K-Center, migration and coverage use."""
    from ...quantize import ExtractorConfig, pipeline

    s = study.setup
    config = ExtractorConfig(arch=s.arch, arch_kwargs=dict(s.arch_kwargs), epochs=s.feature_epochs)
    return pipeline.feature_extractor(study.splits.train, config, device=study.device, cache=study.cache,
                                      progress=study.progress)


def embeddings(study) -> torch.Tensor:
    """(N, D) embeddings of the training part by :func:`feature_net`."""
    from ...features import extract_embeddings

    return extract_embeddings(feature_net(study), study.splits.train.images, device=study.device,
                              progress=False).cpu()


def forgetting(study) -> torch.Tensor:
    """(N,) forgetting scores of the training part (a fresh ConvNet trained ``forgetting_epochs``), cached."""
    from ...select import forgetting_scores

    s, train = study.setup, study.splits.train
    key = {"dataset": dataset_fingerprint(train), "arch": s.arch, "arch_kwargs": dict(s.arch_kwargs),
           "epochs": s.forgetting_epochs, "seed": 0}

    def compute():
        net = create_model(s.arch, num_classes=train.num_classes, in_channels=train.channels,
                           image_size=train.image_size, mean=train.mean, std=train.std, seed=0, **s.arch_kwargs)
        scores = forgetting_scores(net, train.images, train.labels, {"epochs": s.forgetting_epochs}, seed=0,
                                   device=study.device, progress=False)
        return {"scores": scores}

    return study.cache.get_or_compute("dream_forgetting", key, compute, version=code_version(__name__))["scores"]


def coreset(study, method: str, ipc: int, seed: int = 0) -> torch.Tensor:
    """Indices (into the training part) of the ``ipc``-per-class coreset of ``method`` (one of
    :data:`~.labels.CORESETS`; ``seed`` the selection seed)."""
    check_choice("method", method, CORESETS)
    train = study.splits.train
    emb = embeddings(study) if method in ("herding", "kcenter") else None
    scores = forgetting(study) if method == "forgetting" else None
    return select_coreset_ipc(train.labels, ipc, method, embeddings=emb, scores=scores, seed=seed).cpu()
