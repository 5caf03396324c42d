"""Published numbers of the two papers, each with the table or figure it comes from.

* :mod:`dscore.papers.adq` — Adaptive Dataset Quantization (AAAI 2025): Tab. 1, 2, 3 and the claims.
* :mod:`dscore.papers.dreamplus` — DREAM+: Tab. I–VI and the claims.
* :mod:`dscore.papers.tables` — the containers (:class:`Cell`, :class:`Table`, :class:`Claim`).

Each paper module offers ``TABLES``, ``table(id)`` (pandas-ready records), ``get_table(id)``,
``cell(id, row, col)``, ``CLAIMS`` and ``claim(id)``. These are plain data: no module here computes.
"""
