"""Published numbers of *Adaptive Dataset Quantization* (ADQ, AAAI 2025), ``papers/adq-aaai2025.txt``.

Tables (``TABLES``, keyed "1", "2", "3"; ``table("1")`` gives pandas-ready records):

* **Tab. 1** — CIFAR-10, top-1 %: DM / DQ / ADQ × keep ratio 10/20/30/100 % × five evaluation
  architectures plus their average. ADQ cells carry the printed gain over DQ in ``delta``.
* **Tab. 2** — cost of DM / DQ / ADQ: number of runs, error bars, GPU hours. Every cell is empty in
  the text extraction, so all nine are ``None`` with a note; the text's statements about it are
  in ``CLAIMS`` (ADQ ≈ DQ ≈ 1.1 % of DM's time; smaller error bars).
* **Tab. 3** — CIFAR-10 ablation DQ / +RS / +DS / +IS (RS+DS) × keep ratio.

``CLAIMS`` lists the statements of the text and figures a notebook tests.
"""
from __future__ import annotations

from .tables import Claim, Table, find_claim, grid, lookup, stated as _stated

PAPER = "Adaptive Dataset Quantization (AAAI 2025)"
TEXT_FILE = "adq-aaai2025.txt"

KEEP_RATIOS = (10, 20, 30, 100)
ARCHS = ("ResNet-18", "ResNet-50", "ViT", "Swin", "ConvNeXt")

_T1 = {
    "ResNet-18": ["74.0", "82.2", "82.8", "95.6", "84.1", "87.6", "91.0", "95.6",
                  "86.2 (+2.1)", "90.4 (+2.8)", "94.2 (+3.2)", "95.6"],
    "ResNet-50": ["35.0", "36.2", "43.9", "95.5", "82.7", "88.1", "90.8", "95.5",
                  "84.7 (+2.0)", "90.7 (+2.6)", "93.7 (+2.9)", "95.5"],
    "ViT": ["21.6", "25.5", "23.1", "80.2", "58.4", "66.8", "72.0", "80.2",
            "61.1 (+2.7)", "69.8 (+3.1)", "74.7 (+2.7)", "80.2"],
    "Swin": ["25.1", "30.1", "27.3", "90.3", "69.2", "79.1", "84.4", "90.3",
             "73.2 (+4.0)", "82.5 (+3.4)", "88.5 (+4.1)", "90.3"],
    "ConvNeXt": ["41.8", "48.3", "47.9", "73.0", "52.8", "61.8", "64.2", "73.0",
                 "55.0 (+2.2)", "64.0 (+2.2)", "68.1 (+3.9)", "73.0"],
    "Average": ["39.5", "44.5", "45", "86.9", "69.4", "76.7", "80.5", "86.9",
                "72.0 (+2.6)", "79.5 (+2.8)", "83.8 (+3.3)", "86.9"],
}

TABLE_1 = grid(
    "Tab. 1", "DM, DQ and ADQ on CIFAR-10 across architectures and data keep ratios",
    row_names=("arch",), col_names=("method", "keep_ratio"),
    rows=_T1, cols=[(m, r) for m in ("DM", "DQ", "ADQ") for r in KEEP_RATIOS],
    dataset="CIFAR-10",
    cells={("ViT", ("ADQ", 20)): "the printed gain (+3.1) is not 69.8 − 66.8 = 3.0; both kept as printed"},
    notes=("Keep ratio in % of the training set; 100 % is training on the full set (same number for all methods).",
           "ADQ cells print the gain over DQ in brackets; it is stored in Cell.delta.",
           "'Average' is the mean over the five architectures (the text: 'average improvements of 2.6%, 2.8%, "
           "and 3.3%'); it is printed '45' (no decimal) for DM at 30 %.",
           "The text names MobileNetV2 among the evaluation architectures, but Tab. 1 has no MobileNetV2 row.",
           "Training: 200 epochs, batch 128, cosine lr from 0.1, 5 runs averaged (no std printed)."),
)

_LOST = "empty in the text extraction (the table's numbers did not survive); see CLAIMS for what the text says"

TABLE_2 = grid(
    "Tab. 2", "Number of runs, error bars and GPU hours of DM, DQ and ADQ",
    row_names=("method",), col_names=("quantity",),
    rows={m: ["", "", ""] for m in ("DM", "DQ", "ADQ")}, cols=["Number of runs", "Error bars", "GPU hours"],
    dataset="CIFAR-10", unit="", missing_note=_LOST,
    notes=("All nine cells are lost in the text extraction.",
           "The text: ADQ 'exhibits a reduction in average error bars across all experimental conditions'; "
           "its generation time 'is on par with that of DQ and is a mere 1.1% of the time needed by DM'."),
)

_T3 = {
    "DQ": ["84.1", "87.6", "91.0", "95.6"],
    "+ RS": ["85.1", "88.8", "93.0", "95.6"],
    "+ DS": ["85.3", "88.9", "93.1", "95.6"],
    "+ IS (RS+DS)": ["86.2", "90.4", "94.2", "95.6"],
}

TABLE_3 = grid(
    "Tab. 3", "Ablation of the bin scores on CIFAR-10",
    row_names=("variant",), col_names=("keep_ratio",),
    rows=_T3, cols=list(KEEP_RATIOS), dataset="CIFAR-10",
    notes=("The architecture is not stated; the DQ and '+ IS (RS+DS)' rows equal the ResNet-18 DQ and ADQ "
           "cells of Tab. 1.",),
)

TABLES: dict[str, Table] = {"1": TABLE_1, "2": TABLE_2, "3": TABLE_3}


def table(table_id: str) -> list[dict]:
    """The cells of one table as records (``pandas.DataFrame(table("1"))``); ids "1", "2", "3"."""
    return lookup(TABLES, table_id).records()


def get_table(table_id: str) -> Table:
    return lookup(TABLES, table_id)


def cell(table_id: str, row, col):
    """One cell, e.g. ``cell("1", "ResNet-18", ("ADQ", 10)).value == 86.2``."""
    return lookup(TABLES, table_id).cell(row, col)


CLAIMS: list[Claim] = [
    Claim("avg-gain-abstract", "ADQ surpasses DQ by average 3% on various datasets.",
          "Abstract; Tab. 1", "ADQ − DQ top-1, averaged over architectures and keep ratios", 3.0, "≈", "points",
          note="Tab. 1's Average row prints +2.6 / +2.8 / +3.3 at 10 / 20 / 30 % (mean 2.9)."),
    Claim("gain-10", "ADQ outperforms DQ by 2.6% on average over the five architectures at 10% keep ratio.",
          "Tab. 1", "ADQ − DQ top-1, mean over ResNet-18/50, ViT, Swin, ConvNeXt, keep ratio 10 %", 2.6, "≈",
          "points"),
    Claim("gain-20", "ADQ outperforms DQ by 2.8% on average over the five architectures at 20% keep ratio.",
          "Tab. 1", "ADQ − DQ top-1, mean over the five architectures, keep ratio 20 %", 2.8, "≈", "points"),
    Claim("gain-30", "ADQ outperforms DQ by 3.3% on average over the five architectures at 30% keep ratio.",
          "Tab. 1", "ADQ − DQ top-1, mean over the five architectures, keep ratio 30 %", 3.3, "≈", "points"),
    Claim("beats-dq-every-arch", "ADQ consistently outperforms DQ across all five architectures.",
          "Tab. 1", "sign of ADQ − DQ top-1 for every architecture and keep ratio < 100 %", 0.0, ">", "points"),
    Claim("gain-grows-with-ratio", "The gains over DQ grow with the data keep ratio (more samples for RS and DS).",
          "Tab. 1", "ADQ − DQ at 30 % vs. at 10 %", None, ">", "points"),
    Claim("dq-adq-beat-dm", "Datasets from DQ and ADQ keep higher performance than DM on unseen architectures.",
          "Tab. 1; Fig. 5(a)", "DQ/ADQ − DM top-1 per architecture and keep ratio", 0.0, ">", "points"),
    Claim("imagenet-gc", "On ImageNet-1K (GraphCut in place of DM) ADQ shows similar improvements over DQ.",
          "Fig. 5(b)", "ADQ − DQ top-1 on ImageNet-1K", 0.0, ">", "points"),
    Claim("lossless-60", "ADQ achieves lossless results with only 60% of the data.",
          "Fig. 5(c)(d)", "smallest keep ratio at which ADQ matches full-data accuracy", 60.0, "≈", "% keep ratio"),
    Claim("cost-vs-dm", "ADQ's dataset-generation time is a mere 1.1% of the time needed by DM.",
          "Tab. 2", "ADQ generation time / DM generation time", 1.1, "≈", "%"),
    Claim("cost-vs-dq", "The importance evaluation adds negligible time: ADQ's generation time is on par with DQ's.",
          "Tab. 2", "ADQ generation time / DQ generation time", 1.0, "≈", "ratio"),
    Claim("error-bars", "ADQ reduces the average error bars across all experimental conditions.",
          "Tab. 2", "std over runs of ADQ vs. DQ (and DM)", None, "<", "points"),
    Claim("ablation-rs", "Adding RS improves DQ on CIFAR-10 by 1.41% on average.",
          "Tab. 3", "(+RS) − DQ, mean over keep ratios", 1.41, "≈", "points",
          note="From Tab. 3 the mean over 10/20/30 % is 1.40 (1.05 with 100 %)."),
    Claim("ablation-ds", "Adding DS improves DQ on CIFAR-10 by 1.53% on average.",
          "Tab. 3", "(+DS) − DQ, mean over keep ratios", 1.53, "≈", "points",
          note="From Tab. 3 the mean over 10/20/30 % is 1.53."),
    Claim("ablation-is", "Adding IS (RS+DS) improves DQ on CIFAR-10 by 2.57% on average.",
          "Tab. 3", "(+IS) − DQ, mean over keep ratios", 2.57, "≈", "points",
          note="From Tab. 3 the mean over 10/20/30 % is 2.70 (2.03 with 100 %), not 2.57."),
    Claim("ds-over-rs", "The improvement of DS is slightly higher than that of RS across all data keep ratios.",
          "Tab. 3", "(+DS) − (+RS) at each keep ratio < 100 %", 0.0, ">", "points"),
    Claim("beta-peak", "Accuracy first increases then decreases as β goes from 0 to 1, peaking between 0.6 and 0.7 "
          "(CIFAR-10, ResNet-18 and ResNet-50).", "Fig. 6", "argmax over β of ADQ top-1", (0.6, 0.7), "peak in",
          "β"),
    Claim("beta-peak-shift", "With a higher keep ratio the peak shifts towards 0.7.", "Fig. 6",
          "argmax β at higher vs. lower keep ratio", None, ">", "β"),
    Claim("beta-zero-is-dq", "As β approaches 0, ADQ reverts to DQ and its accuracy mirrors DQ's.", "Fig. 6",
          "ADQ(β = 0) − DQ top-1", 0.0, "≈", "points"),
    Claim("texture-trajectory", "The distance between student and expert trajectories decreases as the texture level "
          "increases; for high-texture patches it approaches zero (ResNet-18, CIFAR-10).", "Fig. 4",
          "normalised parameter distance of high vs. medium vs. low texture-level students", None, "<", ""),
    Claim("importance-rise-fall", "The importance of bins first increases and then decreases over the bin "
          "generation process; RS, DS and IS vary unevenly.", "Fig. 2(b)(c)(d)",
          "IS as a function of the bin index", None, "peak in", ""),
]


def claim(claim_id: str) -> Claim:
    return find_claim(CLAIMS, claim_id)


#: What the text states about each figure (and Tab. 2, whose cells were lost), in its own words: rows of
#: ``(what, the paper states, its words, where)``. A page shows them beside ours with :func:`stated`.
STATEMENTS = {
    "Figure 2": [("importance over the bins", "rises, then falls",
                  "the overall importance of bins initially increases and then decreases throughout the generation "
                  "process", "Importance Score; Fig. 2(b)(c)(d)")],
    "Pixel quantization": [("share of patches dropped (θ) and patch size", "blank in our copy",
                            "the values are missing from our text copy (the step is DQ's; θ = 0.2 is the authors' "
                            "released setting)", "Method")],
    "Figure 4": [("split by texture level", "three equal thirds",
                  "These patches are divided into three equal batches, each representing a third of the dataset",
                  "Representativeness Score"),
                 ("high-texture student's distance to the expert", "approaches zero",
                  "For models trained on high-level texture patches, this distance approaches zero",
                  "Representativeness Score; Fig. 4")],
    "Figure 5": [("ADQ's lossless keep ratio", "60 %",
                  "our ADQ also achieves lossless results with only 60% of the data", "Comparisons; Fig. 5(c)(d)")],
    "Figure 6": [("β at the accuracy peak", "0.6–0.7",
                  "accuracy initially increases and then decreases as β ranges from 0 to 1, reaching its peak between "
                  "0.6 and 0.7", "Hyper-parameter analysis; Fig. 6"),
                 ("where the peaks shift", "towards 0.7", "the peaks of accuracy on both two datasets are shifting "
                  "back (closer to 0.7)", "Hyper-parameter analysis; Fig. 6"),
                 ("β = 0", "ADQ = DQ", "As β approaches 0, ADQ reverts to DQ, resulting in performance that mirrors "
                  "that of DQ", "Hyper-parameter analysis")],
    "Table 2": [("ADQ's generation time vs. DM's", "1.1 %", "a mere 1.1% of the time needed by DM",
                 "Comparisons; Tab. 2"),
                ("ADQ's generation time vs. DQ's", "on par", "the time ADQ requires for dataset generation is on par "
                 "with that of DQ", "Comparisons; Tab. 2"),
                ("error bars", "smaller than DQ's", "Our ADQ exhibits a reduction in average error bars across all "
                 "experimental conditions", "Comparisons; Tab. 2")],
}


def stated(figure: str) -> list[dict]:
    """What the text states about ``figure`` (a key of :data:`STATEMENTS`), pandas-ready, with a last row saying
    that the plotted values are not in the text (Tab. 2: that its cells are empty in our copy; pixel quantization,
    which has no figure: nothing)."""
    last = {"Table 2": ("the table's cells", "empty in our copy", "every cell of Tab. 2 is empty in our text copy of "
                        "the paper; the text's statements about it are above", ""),
            "Pixel quantization": None}
    return _stated(STATEMENTS, figure, **({"last": last[figure]} if figure in last else {}))
