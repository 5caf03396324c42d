"""The names the DREAM+ chapter shows: the coreset methods, each method's table label, the paper's dataset names."""
from __future__ import annotations

from ...distill.config import preset_components

__all__ = ["CORESETS", "PAPER_DATASET", "method_label"]

#: the coreset methods: ``ipc`` real images per class (:func:`dscore.distill.select_coreset_ipc`)
CORESETS = ("random", "herding", "kcenter", "forgetting")
_LABELS = {"random": "Random", "herding": "Herding", "kcenter": "K-Center", "forgetting": "Forgetting", "dc": "DC",
           "dsa": "DSA", "dm": "DM", "idc": "IDC", "dream": "DREAM", "dreamplus": "DREAM+"}
_COMPONENT_LABELS = {"rm": "RM", "init": "Init", "bm": "BM", "pt": "PT", "feat": "feature matching", "centre": "centre only",
                     "boundary": "boundary only"}
#: paper's dataset names (Tab. I columns)
PAPER_DATASET = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "svhn": "SVHN", "cifar10": "CIFAR-10",
                 "cifar100": "CIFAR-100", "tinyimagenet": "TinyImageNet"}


def method_label(method: str) -> str:
    """The name a table shows: ``"dreamplus"`` → "DREAM+", ``"idc+rm"`` → "IDC + RM", ``"herding"`` → "Herding"."""
    if method in _LABELS:
        return _LABELS[method]
    preset_components(method)                     # an unknown method raises here, naming the allowed ones
    parts = method.lower().split("+")
    head = _LABELS.get(parts[0], parts[0].upper())
    return " + ".join([head] + [_COMPONENT_LABELS.get(p, _LABELS.get(p, p)) for p in parts[1:]])
