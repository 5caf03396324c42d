"""Published numbers of *DREAM+: Efficient Dataset Distillation by Bidirectional Representative Matching*,
``papers/dreamplus.txt``.

Tables (``TABLES``, keyed "I" … "VI"; ``table("I")`` gives pandas-ready records):

* **Tab. I** — top-1 % of coreset and distillation methods on MNIST, FashionMNIST, SVHN, CIFAR-10,
  CIFAR-100 at IPC 1 / 10 / 50 (19 methods × 15 columns; "-" cells are ``None``: not reported).
* **Tab. II** — TinyImageNet: ratio %, DM, MTT, DREAM+ and the whole-dataset accuracy per IPC.
* **Tab. III** — component ablation (RM = representative matching, Init = clustering-based
  initialisation, BM = bidirectional matching) on IDC with the iterations column, and on DC and DSA.
* **Tab. IV** — cross-architecture: distilled with ConvNet-3 / ResNet-10, evaluated on ConvNet-3,
  ResNet-10, DenseNet-121.
* **Tab. V** — sub-cluster number × samples per sub-cluster, for DREAM and DREAM+.
* **Tab. VI** — time per inner loop (s): clustering, image update, whole inner loop.

Tables III–V are CIFAR-10 at IPC 10 (Sec. 4.4: "By default, the experiments are conducted at 10 IPC
settings on CIFAR-10"). ``CLAIMS`` lists the statements of the text and figures a notebook tests.
"""
from __future__ import annotations

from .tables import Cell, Claim, Table, find_claim, grid, lookup, stated as _stated

PAPER = "DREAM+: Efficient Dataset Distillation by Bidirectional Representative Matching"
TEXT_FILE = "dreamplus.txt"

IPCS = (1, 10, 50)
TAB1_DATASETS = ("MNIST", "FashionMNIST", "SVHN", "CIFAR-10", "CIFAR-100")

_T1 = {
    "Random": "64.9 95.1 97.9 51.4 73.8 82.5 14.6 35.1 70.9 14.4 26.0 43.4 4.2 14.6 30.0",
    "Herding": "89.2 93.7 94.9 67.0 71.1 71.9 20.9 50.5 72.6 21.5 31.6 40.4 8.4 17.3 33.7",
    "K-Center": "89.3 84.4 97.4 66.9 54.7 68.3 21.0 14.0 20.1 21.5 14.7 27.0 - - -",
    "Forgetting": "35.5 68.1 88.2 42.0 53.9 55.0 12.1 16.8 27.2 13.5 23.3 23.3 4.5 15.1 30.5",
    "DD": "- 79.5 - - - - - - - - 36.8 - - - -",
    "LD": "60.9 87.3 93.3 - - - - - - 25.7 38.3 42.5 11.5 - -",
    "DC": "91.7 97.4 98.8 70.5 82.3 83.6 31.2 76.1 82.3 28.3 44.9 53.9 12.8 25.2 -",
    "DSA": "88.7 97.8 99.2 70.6 84.6 88.7 27.5 79.2 84.4 28.8 52.1 60.6 13.9 32.3 42.8",
    "DM": "89.7 97.5 98.6 - - - - - - 26.0 48.9 63.0 11.4 29.7 43.6",
    "CAFE": "93.1 97.2 98.6 77.1 83.0 84.8 42.6 75.9 81.3 30.3 46.3 55.5 12.9 27.8 37.9",
    "MTT": "- - - - - - - - - 46.3 65.3 71.6 24.3 40.1 47.7",
    "IDC": "94.2 98.4 99.1 81.0 86.0 86.2 68.5 87.5 90.1 50.6 67.5 74.5 - 45.1 -",
    "IDM": "- - - - - - - - - 45.6 58.6 67.5 20.1 45.1 50.0",
    "KIP": "90.1 97.5 98.3 73.5 86.8 88.0 57.3 75.0 80.5 49.9 62.7 68.6 15.7 28.3 -",
    "RFAD": "94.4 98.5 98.8 78.6 87.0 88.8 52.2 74.9 80.9 53.6 66.3 71.1 26.3 33.0 -",
    "HaBa": "92.4 97.4 98.1 - - - 69.8 83.2 88.3 48.3 69.9 74.0 33.4 40.2 47.0",
    "FRePo": "93.0 98.6 99.2 75.6 86.2 89.6 - - - 46.8 65.5 71.7 28.7 42.5 44.3",
    "DREAM": "95.7 98.6 99.2 81.3 86.4 86.8 69.8 87.9 90.5 51.1 69.4 74.8 29.5 46.8 52.6",
    "DREAM+": "96.1 98.6 99.2 82.6 87.2 87.6 71.8 88.9 91.5 52.5 69.9 75.3 29.7 47.4 52.6",
}

TABLE_I = grid(
    "Tab. I", "Coreset and dataset-distillation methods at IPC 1 / 10 / 50",
    row_names=("method",), col_names=("dataset", "ipc"),
    rows={method: text.split() for method, text in _T1.items()}, cols=[(d, i) for d in TAB1_DATASETS for i in IPCS],
    dataset="dataset",
    notes=("Top-1 % on the real test set; no std printed in the text extraction.",
           "The reference numbers of the methods' names are in the paper: DD [13], LD [65], DC [16], DSA [35], "
           "DM [30], CAFE [26], MTT [25], IDC [27], IDM [45], KIP [66, 46], RFAD [47], HaBa [48], FRePo [49].",
           "RFAD uses a 1024-channel ConvNet; DREAM+ a 128-channel ConvNet-3 (Sec. 4.2)."),
)

_TINY_WHOLE = ("merged cell: the paper prints the whole-dataset accuracy once (on the IPC 10 row of the text "
               "extraction); it does not depend on IPC")
TABLE_II = grid(
    "Tab. II", "TinyImageNet: DM, MTT and DREAM+",
    row_names=("ipc",), col_names=("column",),
    rows=dict(zip(IPCS, [["0.017", "3.9±0.2", "8.8±0.3", "10.5±0.4", ""],
                         ["0.17", "12.9±0.4", "23.2±0.2", "24.0±0.4", "37.6±0.4"],
                         ["0.83", "24.1±0.3", "28.0±0.3", "29.5±0.3", ""]])),
    cols=["Ratio %", "DM", "MTT", "DREAM+", "Whole"], dataset="TinyImageNet",
    cells={(ipc, "Whole"): Cell(37.6, 0.4, source="Tab. II", dataset="TinyImageNet", row=(ipc,), col=("Whole",),
                                text="", note=_TINY_WHOLE) for ipc in (1, 50)},
    col_units={"Ratio %": "% of the training set"},
    notes=("ConvNet-4 at 64×64 (Sec. 4.1).", "'Ratio %' is the synthetic set's size in % of the training set."),
)

# Tab. III: rows are (baseline, RM, Init, BM); the iterations column belongs to the IDC block only.
_T3_ROWS = [("IDC", False, False, False), ("IDC", True, False, False), ("IDC", False, True, False),
            ("IDC", False, False, True), ("IDC", True, True, False), ("IDC", True, True, True),
            ("DC", False, False, False), ("DC", True, True, False), ("DC", True, True, True),
            ("DSA", False, False, False), ("DSA", True, True, False), ("DSA", True, True, True)]
_T3_TEXT = [["67.5±0.5", "1000"], ["68.9±0.5", "350"], ["68.1±0.3", "750"], ["68.7±0.3", "480"],
            ["69.4±0.4", "150"], ["69.9±0.5", "60"],
            ["44.9±0.5", ""], ["45.9±0.3", ""], ["46.9±0.4", ""],
            ["52.1±0.5", ""], ["53.1±0.4", ""], ["53.5±0.2", ""]]
_NO_ITERS = "the table gives the iterations column for the IDC block only"
TABLE_III = grid(
    "Tab. III", "Component ablation: representative matching (RM), clustering init (Init), "
    "bidirectional matching (BM)",
    row_names=("baseline", "RM", "Init", "BM"), col_names=("column",),
    rows=dict(zip(_T3_ROWS, _T3_TEXT)), cols=["Top-1", "Iter"], dataset="CIFAR-10", missing_note=_NO_ITERS,
    col_units={"Iter": "iterations"},
    notes=("CIFAR-10, IPC 10 (Sec. 4.4 default).",
           "'Iter' is read as the iterations needed to reach baseline performance (Sec. 4.4: RM and BM 'greatly "
           "reduce the number of iterations required to reach baseline performance'; the full method by more than "
           "15 times: 1000 → 60); the IDC row's 1000 is the baseline's own iteration count.",
           "The DC/DSA block has rows for the baseline, RM+Init (DREAM) and RM+Init+BM (DREAM+) only."),
)

_T4_ROWS = [("MTT", "Conv-3"), ("MTT", "Res-10"), ("IDC", "Conv-3"), ("IDC", "Res-10"),
            ("DREAM", "Conv-3"), ("DREAM", "Res-10"), ("DREAM+", "Conv-3"), ("DREAM+", "Res-10")]
_T4_TEXT = ["64.3±0.7 34.5±0.6† 41.5±0.5†", "44.2±0.3† 20.4±0.9† 24.2±1.3†",
            "67.5±0.5 63.5±0.1 61.6±0.6", "53.6±0.6† 50.6±0.9† 51.7±0.6†",
            "69.4±0.5 66.3±0.8 65.9±0.5", "53.7±0.6† 51.0±0.9† 52.8±0.6†",
            "69.9±0.5 66.5±0.8 66.0±0.5", "53.8±0.6 51.2±0.9 53.0±0.6"]
TABLE_IV = grid(
    "Tab. IV", "Cross-architecture generalisation",
    row_names=("method", "distill_arch"), col_names=("eval_arch",),
    rows=dict(zip(_T4_ROWS, [t.split() for t in _T4_TEXT])), cols=["Conv-3", "Res-10", "Dense-121"],
    dataset="CIFAR-10",
    notes=("CIFAR-10, IPC 10 (Sec. 4.4 default; IDC Conv-3 → Conv-3 equals Tab. I's 67.5).",
           "Cells marked † keep the mark in Cell.marks; its footnote is not in the text extraction.",
           "The DREAM and DREAM+ rows print identical stds in every cell."),
)

_T5_NOTE = ("'-' in the paper: not run (every reported cell has sub-clusters × samples per sub-cluster ≤ 256; the "
            "text cites memory constraints)")
_T5_TEXT = {
    "DREAM": ["67.2±0.3 68.5±0.1 69.4±0.4 68.9±0.2", "67.7±0.3 68.6±0.3 69.2±0.7 -",
              "67.7±0.4 68.7±0.4 - -", "67.5±0.3 - - -"],
    "DREAM+": ["67.4±0.3 69.4±0.1 69.9±0.4 69.6±0.2", "68.7±0.3 69.8±0.3 69.8±0.7 -",
               "68.8±0.4 69.6±0.4 - -", "69.0±0.3 - - -"],
}
SUBCLUSTERS = (32, 64, 128, 256)
SAMPLES_PER_SUBCLUSTER = (1, 2, 4, 8)
TABLE_V = grid(
    "Tab. V", "Sub-cluster number × samples per sub-cluster (DREAM and DREAM+)",
    row_names=("method", "samples_per_subcluster"), col_names=("subclusters",),
    rows={(m, s): line.split() for m in _T5_TEXT for s, line in zip(SAMPLES_PER_SUBCLUSTER, _T5_TEXT[m])},
    cols=list(SUBCLUSTERS), dataset="CIFAR-10", missing_note=_T5_NOTE,
    notes=("CIFAR-10, IPC 10; the IDC baseline is 67.5 (Sec. 4.4).",
           "The DREAM and DREAM+ sub-tables print identical stds in every cell."),
)

_NO_CLUSTER = "'-' in the paper: IDC has no clustering step"
TABLE_VI = grid(
    "Tab. VI", "Time per inner loop: clustering, image update, whole inner loop",
    row_names=("dataset", "method"), col_names=("column",),
    rows={("CIFAR-10", "IDC"): ["-", "0.2", "0.2"], ("CIFAR-10", "DREAM+"): ["0.1", "0.2", "0.3"],
          ("CIFAR-100", "IDC"): ["-", "2.0", "2.0"], ("CIFAR-100", "DREAM+"): ["0.1", "2.0", "2.1"]},
    cols=["Clustering", "Update Images", "Inner Loop"],
    dataset="dataset", unit="s per inner loop", missing_note=_NO_CLUSTER,
    notes=("Seconds per inner loop, averaged: one clustering (about 1 s) every 10 inner loops on CIFAR-10 is "
           "0.1 s per inner loop (Sec. 4.4, 'Clustering Analysis').",),
)

TABLES: dict[str, Table] = {t.id: t for t in (TABLE_I, TABLE_II, TABLE_III, TABLE_IV, TABLE_V, TABLE_VI)}


def table(table_id: str) -> list[dict]:
    """The cells of one table as records (``pandas.DataFrame(table("I"))``); ids "I" … "VI"."""
    return lookup(TABLES, table_id).records()


def get_table(table_id: str) -> Table:
    return lookup(TABLES, table_id)


def cell(table_id: str, row, col):
    """One cell, e.g. ``cell("I", "DREAM+", ("FashionMNIST", 10)).value == 87.2``."""
    return lookup(TABLES, table_id).cell(row, col)


CLAIMS: list[Claim] = [
    Claim("iters-15x-gradient", "DREAM+ reduces the number of distillation iterations by more than 15 times "
          "without affecting performance (gradient matching, IDC).", "Abstract; Sec. 4.3; Fig. 4",
          "speed-up factor in iterations to reach IDC's final accuracy (CIFAR-10, IPC 10)", 15.0, ">", "×"),
    Claim("iters-40x-distribution", "For distribution matching, DREAM+ reduces the number of iterations by more "
          "than 40 times (about one-fortieth).", "Sec. 4.3; Fig. 4(b)",
          "speed-up factor in iterations to reach feature-matching IDC's final accuracy (Fig. 4b: IDC with "
          "match='feat' against DREAM+, CIFAR-10, IPC 10)", 40.0, ">",
          "×"),
    Claim("tab3-iters", "With all components the iterations needed to reach the baseline drop from 1000 to 60.",
          "Tab. III", "iterations to reach IDC's 67.5 % (CIFAR-10, IPC 10)", 60.0, "≈", "iterations",
          note="1000 / 60 ≈ 16.7×, the 'more than 15 times' of the text."),
    Claim("components-each-help", "Each component alone (RM, Init, BM) improves on IDC; together they are best.",
          "Tab. III", "top-1 of each single-component row − IDC's 67.5", 0.0, ">", "points"),
    Claim("dc-dsa-gain", "Representative bidirectional matching with clustering init also improves DC and DSA.",
          "Tab. III", "DREAM+ − baseline top-1 for DC and DSA", 0.0, ">", "points"),
    Claim("init-advantage", "Clustering-based initialisation shows a huge performance advantage before training "
          "starts, although its final impact is limited.", "Tab. III (the text discussing it)",
          "top-1 of the initial synthetic set, clustering-based (DREAM+) − random real images (IDC)", None, ">",
          "points"),
    Claim("feat-matching-worse", "The original IDC with feature matching performs significantly worse than with "
          "gradient matching.", "Fig. 4(b)", "final top-1 of IDC with match='feat' − IDC with gradient matching",
          None, "<", "points"),
    Claim("grad-variance", "Clustering-based mini-batches have less gradient variance than random sampling.",
          "Fig. 1(a)", "variance of per-batch gradients, sub-cluster-centre vs. random batches", None, "<", ""),
    Claim("dc-dsa-10x", "For DC and DSA one-tenth of the iterations is enough to reach the original performance.",
          "Fig. 9", "speed-up factor in iterations for DC and DSA (CIFAR-10, IPC 10)", 10.0, ">=", "×"),
    Claim("dreamplus-vs-dream-efficiency", "DREAM+ is more efficient than DREAM.", "Fig. 4",
          "iterations to reach the baseline, DREAM+ vs. DREAM", None, "<", "iterations"),
    Claim("cluster-cost-cifar10", "On CIFAR-10 clustering adds 0.1 s per inner loop to the 0.2 s of matching and "
          "image update: 0.3 s in all, about +50% time per inner loop.", "Tab. VI",
          "clustering time / (matching + update) time per inner loop", 50.0, "≈", "% extra time",
          note="Measured on GPU in the paper; one clustering of about 1 s every 10 inner loops."),
    Claim("cluster-cost-cifar100", "On CIFAR-100 the extra clustering time is a mere twentieth of the image "
          "updating time.", "Tab. VI", "clustering time / image-update time per inner loop", 5.0, "≈", "%"),
    Claim("bm-overhead-negligible", "Bidirectional matching adds negligible time over DREAM: its features come from "
          "the forward pass of gradient matching.", "Tab. VI", "time per inner loop, DREAM+ vs. DREAM", None, "≈",
          "s"),
    Claim("time-saving-85", "Reaching the same performance with one-twentieth to one-tenth of the iterations, "
          "DREAM+ saves over 85% of the time.", "Tab. VI", "1 − (DREAM+ time to baseline accuracy) / "
          "(IDC time)", 85.0, ">", "%",
          note="1 − 1.5 × (1/10) = 85 %; with 1/20 of the iterations 92.5 %."),
    Claim("cifar100-ipc10-vs-idc", "DREAM+ surpasses IDC by 2.3% on CIFAR-100 with 10 IPC.", "Tab. I",
          "DREAM+ − IDC top-1, CIFAR-100, IPC 10", 2.3, "≈", "points", note="47.4 − 45.1 in Tab. I."),
    Claim("sota-most-cases", "DREAM+ consistently demonstrates state-of-the-art results across most cases.",
          "Tab. I; Tab. II", "rank of DREAM+ per column", None, ">=", ""),
    Claim("beats-rfad", "DREAM+ outperforms RFAD except for IPC=1 on CIFAR-10.", "Tab. I",
          "DREAM+ − RFAD top-1 per column", 0.0, ">", "points",
          note="Tab. I also has RFAD ahead on FashionMNIST at IPC 50 (88.8 vs. 87.6)."),
    Claim("beats-haba", "HaBa is better only at IPC 1 on CIFAR-100; in other cases DREAM+ is superior.", "Tab. I",
          "DREAM+ − HaBa top-1 per column", 0.0, ">", "points",
          note="Tab. I has a tie on CIFAR-10 at IPC 10 (69.9 vs. 69.9)."),
    Claim("fashion-vs-idc", "On FashionMNIST DREAM+ beats IDC at every IPC (82.6 / 87.2 / 87.6 vs. 81.0 / 86.0 / "
          "86.2).", "Tab. I", "DREAM+ − IDC top-1, FashionMNIST, IPC 1 / 10 / 50", 0.0, ">", "points"),
    Claim("tinyimagenet", "On TinyImageNet DREAM+ beats DM and MTT at every IPC.", "Tab. II",
          "DREAM+ − MTT and DREAM+ − DM top-1 per IPC", 0.0, ">", "points"),
    Claim("cross-arch", "DREAM+ outperforms the other methods on the distillation models and on unseen "
          "architectures.", "Tab. IV", "DREAM+ − IDC / DREAM / MTT top-1 per distill × eval architecture", 0.0,
          ">=", "points"),
    Claim("subcluster-best", "One centre sample per sub-cluster with 128 sub-clusters is the best configuration.",
          "Tab. V; Fig. 5", "argmax over (sub-clusters, samples per sub-cluster) of DREAM+ top-1", None, "≈", "",
          note="Tab. V: 69.9 at 128 × 1 for DREAM+ (and 69.4 at 128 × 1 for DREAM)."),
    Claim("samples-marginal", "The number of samples per sub-cluster has only a marginal influence.", "Tab. V",
          "spread of top-1 over samples per sub-cluster at fixed sub-cluster number", None, "≈", "points"),
    Claim("dreamplus-over-dream-sampling", "Under every sampling configuration DREAM+ improves on DREAM.",
          "Tab. V", "DREAM+ − DREAM top-1 per cell", 0.0, ">", "points"),
    Claim("representative-beats-random", "Representative matching improves on the random-sampling baseline (67.5) "
          "for every sub-cluster configuration.", "Tab. V", "top-1 − 67.5 per cell", 0.0, ">", "points"),
    Claim("center-vs-boundary", "Matching only centre samples quickly loses guidance; only boundary samples gives "
          "chaotic targets.", "Figure 2(a)", "accuracy curves of centre-only and boundary-only matching", None,
          "<", "points"),
    Claim("mmd-lower", "Mini-batches from sub-cluster centres have lower MMD to the class distribution, with less "
          "fluctuation, than random mini-batches.", "Figure 2(b)", "MMD of representative vs. random batches",
          None, "<", ""),
    Claim("feature-migration", "DREAM+ and DREAM show a large early feature migration that soon turns small and "
          "stable; random sampling keeps migrating.", "Figure 6(a)", "feature migration between snapshots",
          None, "<", ""),
    Claim("gradient-difference", "DREAM+ has smaller gradient differences than IDC and DREAM over the whole "
          "training.", "Figure 6(b)", "gradient-matching loss over iterations", None, "<", ""),
    Claim("feature-difference", "Bidirectional matching gives better feature alignment (feature difference, "
          "MMD to the real data), especially early.", "Figure 6(c); Figure 6(d)",
          "feature difference and MMD of synthetic vs. real", None, "<", ""),
    Claim("cluster-interval", "The clustering interval has little impact on top-1 and top-5 accuracy; larger "
          "intervals lower efficiency.", "Figure 7(a)", "top-1 over clustering intervals", None, "≈", "points"),
    Claim("cluster-interval-efficiency", "When the clustering interval gradually increases, the efficiency of "
          "distillation gradually decreases, with no significant impact on the final performance.", "Figure 7",
          "accuracy early in distillation, small vs. large clustering interval", None, ">", "points",
          note="Fig. 7(b), the iteration-accuracy curves; the text prints no numbers for Fig. 7."),
    Claim("tsne-coverage", "DREAM+ synthetic samples spread evenly over the class; random sampling is drawn to the "
          "edge.", "Figure 8", "t-SNE of synthetic vs. real", None, "≈", ""),
    Claim("continual-learning", "In 5-step class-incremental CIFAR-100 DREAM+ stays ahead of the other methods and "
          "the gap widens.", "Figure 11", "accuracy per step, DREAM+ − others", 0.0, ">", "points"),
    Claim("continual-gap-widens", "The performance gap widens as the number of learning categories gradually "
          "increases.", "Figure 11", "(DREAM+ − other) at the last step − (DREAM+ − other) at the first step", 0.0,
          ">", "points", note="Fig. 11 is a curve; the text prints no numbers for it."),
]

#: Figures whose numbers the text does not print: the pages show our curves and test the text's statements.
FIGURES_WITHOUT_NUMBERS = {
    "Figure 7": "clustering interval: (a) top-1 and top-5 vs. interval, (b) iteration-accuracy curves per interval; "
                "the chosen interval is 10 (Sec. 4.1 and 4.4)",
    "Figure 11": "5-step class-incremental CIFAR-100, accuracy per step for the memory methods",
}

#: The settings of the clustering-interval and continual-learning experiments as the text gives them (Sec. 4.1,
#: 4.4, 4.6); the continual-learning protocol follows [16, 27] (DC and IDC), whose released IDC script grows the
#: classifier at every step and distils from the previous step's network, with 20 memory images per class.
SETTINGS = {
    "interval": {"value": 10, "source": "Sec. 4.1", "text": "The clustering interval is set as 10 iterations"},
    "continual": {"dataset": "CIFAR-100", "steps": 5, "classes_per_step": 20, "distill_arch": "ConvNet-3",
                  "eval_arch": "ResNet-10", "source": "Figure 11; Sec. 4.6",
                  "text": "5-step class incremental experiment on CIFAR-100, in which 20 new classes were introduced "
                          "at each step"},
}


def claim(claim_id: str) -> Claim:
    return find_claim(CLAIMS, claim_id)


#: What the text states about each figure a page reproduces, in its own words: rows of ``(what, the paper states,
#: its words, where)``. A page shows them beside ours with :func:`stated`.
STATEMENTS = {
    "Figure 2": [("MMD of random real batches", "high, fluctuating",
                  "MMD remains at a consistently high level and has large fluctuations throughout the training process",
                  "Sec. 3.2; Fig. 2(b)"),
                 ("MMD of representative batches", "lower, steadier",
                  "the former has lower MMD scores and less fluctuations", "Sec. 4.4"),
                 ("iterations to the baseline's accuracy", "< 1/15",
                  "achieving baseline performance in less than one-fifteenth of the original required number of "
                  "training iterations", "Sec. 4.4")],
    "Figure 6": [("snapshot interval", "20 iterations", "We save the distilled images at intervals of 20 iterations",
                  "Sec. 4.4, Training Stability"),
                 ("when bidirectional matching helps most", "early in training",
                  "better feature alignment, especially in the early stages of training", "Sec. 4.5; Fig. 6(c)(d)")],
    "Figure 7": [("chosen clustering interval", "10", "The clustering interval is set as 10 iterations", "Sec. 4.1"),
                 ("cost of one clustering", "1 s per ten inner loops",
                  "Every ten inner loops, we introduce a clustering process, which requires an additional 1 second",
                  "Sec. 4.4, Clustering Analysis")],
    "Figure 8": [("DREAM+'s synthetic set", "spans the class evenly",
                  "The results from DREAM+ present a final distribution that evenly spans the entire category range",
                  "Sec. 4.5"),
                 ("random sampling's synthetic set", "drawn to the edge",
                  "random sampling results show that most samples are drawn to the edge of the distribution",
                  "Sec. 4.5"),
                 ("setting", "not stated for Fig. 8 (the sentence nearest, which closes the next paragraph, on "
                             "Fig. 9, says CIFAR-10, IPC 10)",
                  "All the above experiments are performed on CIFAR-10 with 10 IPC",
                  "Sec. 4.5, the last sentence of 'Appliance on More Methods' (Fig. 9)")],
    "Figure 11": [("protocol", "5 steps × 20 new classes, CIFAR-100",
                   "a 5-step class incremental experiment on CIFAR-100, in which 20 new classes were introduced at each "
                   "step", "Sec. 4.6"),
                  ("networks", "ConvNet-3 distils, ResNet-10 evaluates",
                   "We perform distillation synthesis on ConvNet-3 and verified it on ResNet-10", "Sec. 4.6")],
}


def stated(figure: str) -> list[dict]:
    """What the text states about ``figure`` (a key of :data:`STATEMENTS`), pandas-ready, with a last row saying
    that the plotted values are not in the text."""
    return _stated(STATEMENTS, figure)
