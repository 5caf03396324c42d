"""Matching losses for gradient-matching (DC/DSA/IDC), distribution matching (DM) and DREAM+'s
bidirectional matching.

Gradient distances take two lists of per-parameter gradients aligned with a list of parameters
(``matching_parameters(model)`` for DC/DSA, ``conv_parameters(model)`` for IDC). The real side is
a fixed target: its gradients are detached; the synthetic side keeps its graph
(``create_graph=True``) so the distance can be back-propagated to the synthetic images.

Models follow the project contract: ``model.embed(x) -> (N, D)`` and ``model.classify(emb) ->
logits``; ``forward == classify ∘ embed``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils import check_choice, check_float

__all__ = ["matching_parameters", "conv_parameters", "dc_gradient_distance", "idc_gradient_distance",
           "embedding_mean_distance", "embedding_distance", "gradient_matching_loss", "bidirectional_loss",
           "GRAD_METRICS"]

GRAD_METRICS = ("dc", "mse", "l1")
_DC_EPS = 1e-6  # as in DC's code: 1 − Σab / (‖a‖‖b‖ + eps)


def matching_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Trainable parameters with at least 2 dimensions (conv and linear weights, in model order).

    DC's distance skips 1-D parameters (biases, normalisation affine terms); this list is what
    it actually matches."""
    params = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameter with >= 2 dimensions to match")
    return params


def conv_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Trainable weights of the convolution modules (IDC matches conv-weight gradients only)."""
    params = [m.weight for m in model.modules()
              if isinstance(m, nn.modules.conv._ConvNd) and m.weight is not None and m.weight.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable convolution weight; IDC matching needs one "
                         "(use grad_metric='dc' with matching_parameters for conv-free models)")
    return params


def _check_aligned(grads_real: Sequence[torch.Tensor], grads_syn: Sequence[torch.Tensor]) -> None:
    if len(grads_real) != len(grads_syn):
        raise ValueError(f"grads_real has {len(grads_real)} tensors but grads_syn has {len(grads_syn)}; "
                         "they must be aligned with the same parameter list")
    if len(grads_real) == 0:
        raise ValueError("no gradients given; pass at least one parameter's gradient")
    for i, (gr, gs) in enumerate(zip(grads_real, grads_syn)):
        if gr.shape != gs.shape:
            raise ValueError(f"gradient {i}: real shape {tuple(gr.shape)} differs from synthetic shape "
                             f"{tuple(gs.shape)}")


def dc_gradient_distance(grads_real: Sequence[torch.Tensor], grads_syn: Sequence[torch.Tensor]) -> torch.Tensor:
    """DC layer-wise distance: Σ_layers Σ_rows (1 − cos(g_real[row], g_syn[row])).

    Each gradient of shape (out, ...) is reshaped to (out, rest); 1-D gradients (bias, norm) are
    ignored, as in DC's code. Returns a 0-dim tensor (differentiable w.r.t. ``grads_syn``).
    Cost O(total parameters).
    """
    _check_aligned(grads_real, grads_syn)
    total = None
    for gr, gs in zip(grads_real, grads_syn):
        if gr.dim() < 2:
            continue
        gr = gr.reshape(gr.shape[0], -1)
        gs = gs.reshape(gs.shape[0], -1)
        cos = (gr * gs).sum(-1) / (gr.norm(dim=-1) * gs.norm(dim=-1) + _DC_EPS)
        term = (1 - cos).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("all gradients are 1-D (bias/normalisation); DC matching needs weights with >= 2 dims")
    return total


def idc_gradient_distance(grads_real: Sequence[torch.Tensor], grads_syn: Sequence[torch.Tensor],
                          metric: str = "mse") -> torch.Tensor:
    """IDC distance: Σ_layers Σ (g_real − g_syn)² (``"mse"``) or Σ |g_real − g_syn| (``"l1"``).

    Summed, not averaged, over every element of every tensor given (pass ``conv_parameters``'
    gradients for IDC). Returns a 0-dim tensor. Cost O(total parameters)."""
    check_choice("metric", metric, ("mse", "l1"))
    _check_aligned(grads_real, grads_syn)
    terms = [((gr - gs).pow(2) if metric == "mse" else (gr - gs).abs()).sum()
             for gr, gs in zip(grads_real, grads_syn)]
    return torch.stack(terms).sum()


def embedding_mean_distance(emb_real: torch.Tensor, emb_syn: torch.Tensor) -> torch.Tensor:
    """DM distance ‖mean(emb_real) − mean(emb_syn)‖² for (N_r, D) and (N_s, D) → 0-dim tensor."""
    return embedding_distance(emb_real, emb_syn, "mse")


def embedding_distance(emb_real: torch.Tensor, emb_syn: torch.Tensor, metric: str = "mse") -> torch.Tensor:
    """Distance between mean embeddings with the gradient term's metric family.

    ``"mse"``: Σ (μ_r − μ_s)²; ``"l1"``: Σ |μ_r − μ_s|; ``"dc"``: 1 − cos(μ_r, μ_s) (DC's form with the
    mean embedding as the single row). Shapes (N_r, D), (N_s, D) → 0-dim tensor."""
    check_choice("metric", metric, GRAD_METRICS)
    if emb_real.dim() != 2 or emb_syn.dim() != 2 or emb_real.shape[1] != emb_syn.shape[1]:
        raise ValueError(f"embeddings must be (N, D) with the same D; got {tuple(emb_real.shape)} and {tuple(emb_syn.shape)}")
    mr = emb_real.mean(0)
    ms = emb_syn.mean(0)
    if metric == "mse":
        return (mr - ms).pow(2).sum()
    if metric == "l1":
        return (mr - ms).abs().sum()
    return 1 - (mr * ms).sum() / (mr.norm() * ms.norm() + _DC_EPS)


def _grad_distance(grads_real, grads_syn, metric: str) -> torch.Tensor:
    if metric == "dc":
        return dc_gradient_distance(grads_real, grads_syn)
    return idc_gradient_distance(grads_real, grads_syn, metric)


def _prepare(model: nn.Module, real_x, real_y, syn_x, syn_y, params, metric: str) -> list[torch.Tensor]:
    check_choice("grad_metric", metric, GRAD_METRICS)
    for name, x, y in (("real", real_x, real_y), ("syn", syn_x, syn_y)):
        if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
            raise ValueError(f"{name}_x has {x.shape[0]} rows and {name}_y has {y.shape[0]}; need the same number >= 1")
    if params is None:
        params = matching_parameters(model) if metric == "dc" else conv_parameters(model)
    params = list(params)
    if not params or any(not p.requires_grad for p in params):
        raise ValueError("params must be a non-empty list of model parameters that require grad")
    return params


def _forward_grads(model: nn.Module, x, y, params, create_graph: bool):
    emb = model.embed(x)
    loss = F.cross_entropy(model.classify(emb), y)
    grads = torch.autograd.grad(loss, params, create_graph=create_graph)
    return emb, loss, grads


def gradient_matching_loss(model: nn.Module, real_x: torch.Tensor, real_y: torch.Tensor, syn_x: torch.Tensor,
                           syn_y: torch.Tensor, *, params: Sequence[nn.Parameter] | None = None,
                           metric: str = "dc") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Gradient matching (DC/DSA with ``"dc"``, IDC with ``"mse"``/``"l1"``) on one class.

    Cross-entropy gradients w.r.t. ``params`` (default: :func:`matching_parameters` for "dc",
    :func:`conv_parameters` otherwise) on the real batch (detached) and on the synthetic batch
    (with graph). Returns (loss, parts) with parts ``grad``, ``ce_real``, ``ce_syn`` detached.
    """
    params = _prepare(model, real_x, real_y, syn_x, syn_y, params, metric)
    _, ce_real, g_real = _forward_grads(model, real_x, real_y, params, create_graph=False)
    _, ce_syn, g_syn = _forward_grads(model, syn_x, syn_y, params, create_graph=True)
    grad = _grad_distance([g.detach() for g in g_real], g_syn, metric)
    return grad, {"grad": grad.detach(), "ce_real": ce_real.detach(), "ce_syn": ce_syn.detach()}


def bidirectional_loss(model: nn.Module, real_x: torch.Tensor, real_y: torch.Tensor, syn_x: torch.Tensor,
                       syn_y: torch.Tensor, *, params: Sequence[nn.Parameter] | None = None, grad_metric: str = "dc",
                       embed_weight: float = 1.0, embed_metric: str | None = None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DREAM+ bidirectional matching on one class: embedding term + gradient term.

    One forward pass per batch: ``emb = model.embed(x)``, ``logits = model.classify(emb)``; the
    embeddings give ``embedding_distance(emb_real, emb_syn, embed_metric)`` (forward direction) and
    the cross-entropy gradients give the gradient distance with ``grad_metric`` (backward
    direction). Real quantities are detached targets. ``loss = embed_weight · embed + grad``.

    ``embed_metric`` None = the gradient metric for "mse"/"l1" (DREAM+'s code: the same metric,
    weight 1:1) and squared L2 ("mse") for "dc": with DC's layer-wise 1 − cos, a 1 − cos of the two
    mean embeddings has a gradient on the synthetic images ~2000× smaller than the gradient term's,
    so it would do nothing (see :class:`~dscore.distill.config.DistillConfig`); pass
    ``embed_metric="dc"`` for that form anyway.
    Returns (loss, parts) with parts ``embed``, ``grad``, ``ce_real``, ``ce_syn`` detached.
    """
    embed_weight = check_float("embed_weight", embed_weight, low=0.0)
    check_choice("grad_metric", grad_metric, GRAD_METRICS)
    if embed_metric is None:
        embed_metric = "mse" if grad_metric == "dc" else grad_metric
    check_choice("embed_metric", embed_metric, GRAD_METRICS)
    params = _prepare(model, real_x, real_y, syn_x, syn_y, params, grad_metric)
    emb_real, ce_real, g_real = _forward_grads(model, real_x, real_y, params, create_graph=False)
    emb_syn, ce_syn, g_syn = _forward_grads(model, syn_x, syn_y, params, create_graph=True)
    grad = _grad_distance([g.detach() for g in g_real], g_syn, grad_metric)
    embed = embedding_distance(emb_real.detach(), emb_syn, embed_metric)
    loss = embed_weight * embed + grad
    return loss, {"embed": embed.detach(), "grad": grad.detach(), "ce_real": ce_real.detach(),
                  "ce_syn": ce_syn.detach()}
