"""The experiments behind the book's pages, built only from library calls and cached artefacts.

A page of the book makes one or two calls into a study; the study turns the page's parameters into
selections, distillation runs and evaluation runs of :mod:`dscore.quantize`, :mod:`dscore.distill` and
:mod:`dscore.evaluation`, all through one :class:`~dscore.cache.ArtifactCache`, so that pages share every
artefact (one feature network, one set of bins and scores, one evaluation per (method, ratio, arch, seed)).

* :mod:`dscore.studies.adq` — the ADQ chapter;
* :mod:`dscore.studies.dreamplus` — the DREAM+ chapter;
* :mod:`dscore.studies.common` — splits, dry runs and timing shared by the chapters.
"""
from __future__ import annotations

from . import adq, common, dreamplus

__all__ = ["adq", "common", "dreamplus"]
