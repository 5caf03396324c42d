"""Class-incremental learning with each method's set as the memory (DREAM+ Fig. 11). A free function of a
:class:`~.study.DreamStudy`."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from ...fingerprint import code_version, dataset_fingerprint
from ...models import create_model
from ...utils import check_int
from .labels import method_label
from .study import DreamStudy

__all__ = ["continual"]


def continual(study: DreamStudy, methods: Sequence[str], ipc: int, seed: int = 0, *, steps: int = 5, order_seed: int = 0,
              eval_arch: Mapping[str, Any] | None = None, from_scratch: bool = False, temperature: float = 2.0,
              kd_weight: float = 1.0, epochs: int | None = None) -> pd.DataFrame:
    """Fig. 11: class-incremental learning (:func:`dscore.continual.class_incremental`) over ``steps`` groups of a
    seeded random class order, the memory of each class being its images in ``method``'s set (a coreset or the
    run's final set, IDC-decoded), one run per evaluation seed; cached. Every method trains with the IDC-family
    protocol (the authors' continual-learning script uses one recipe for all memories), ``epochs`` per step
    (None: the protocol's). One row per (method,
    eval_seed, step): ``method, label, eval_seed, step, classes, num_memory, acc, top5, seconds``."""
    from ...continual import class_incremental, class_steps
    from ...evaluation import train_set_digest

    train, test = study.splits.train, study.splits.test
    order_seed = check_int("order_seed", order_seed, low=0)
    order = torch.randperm(train.num_classes, generator=torch.Generator().manual_seed(order_seed)).tolist()
    class_steps(order, steps)                                    # errors before any work
    arch, kwargs = study.arch_of(eval_arch)
    proto = study.setup.protocols["idc"]
    if epochs is not None and not study.dry_run:
        proto = proto.replace(epochs=check_int("epochs", epochs, low=1))
    todo = [(m, e) for m in methods for e in study.setup.eval_seeds]

    def one(cell):
        m, e = cell
        images, labels = study.training_set(m, ipc, seed)
        key = {"train": train_set_digest(images, labels), "test": dataset_fingerprint(test), "arch": arch,
               "arch_kwargs": kwargs, "protocol": proto.as_kwargs(), "seed": e, "order": order, "steps": steps,
               "from_scratch": from_scratch, "temperature": temperature, "kd_weight": kd_weight,
               "device": study.device.type}

        def compute(images=images, labels=labels, e=e):
            memory = {c: images[labels == c] for c in range(train.num_classes)}
            kd = None if from_scratch else {"temperature": temperature, "weight": kd_weight}
            out = class_incremental(memory, test.images, test.labels, protocol=proto, class_order=order,
                                    steps=steps, kd=kd, seed=e, device=study.device, progress=False,
                                    model_fn=lambda k: create_model(arch, num_classes=k, in_channels=train.channels,
                                                                    image_size=train.image_size, mean=train.mean,
                                                                    std=train.std, **kwargs))
            return {"rows": torch.tensor([[r["step"], r["classes"], r["num_memory"], r["acc"], r["top5"],
                                           r["seconds"]] for r in out], dtype=torch.float64)}

        vals = study.cache.get_or_compute("dream_continual", key, compute, version=code_version(__name__))["rows"]
        return [{"method": m, "label": method_label(m), "eval_seed": e, "step": int(v[0]), "classes": int(v[1]),
                 "num_memory": int(v[2]), "acc": v[3], "top5": v[4], "seconds": v[5]} for v in vals.tolist()]

    df = pd.DataFrame([row for rows in study.map_cells(one, todo, "continual", group=lambda c: c[0]) for row in rows])
    df.attrs["class_order"] = [train.classes[c] for c in order]
    return df
