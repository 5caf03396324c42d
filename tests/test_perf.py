"""Tests of the performance page's measuring functions (dscore.studies.perf): correctness only, never times."""
from __future__ import annotations

import pytest
import torch

from dscore import book
from dscore.select import graphcut
from dscore.studies import perf
from dscore.paths import repo_root


def test_naive_graphcut_picks_what_the_incremental_greedy_picks():
    x, _ = perf.clustered_features(300, 8, 5, seed=0)
    naive, matrix_seconds = perf.naive_graphcut(x, 40)
    assert naive == graphcut(x, 40).tolist()
    with pytest.raises(ValueError, match="budget"):
        perf.naive_graphcut(x, 301)


def test_graphcut_rows_report_identical_picks_and_the_dense_formula():
    rows = {r["metric"]: r["value"] for r in perf.graphcut_speed(200, 8, 20, device="cpu")}
    assert rows["graphcut_picks_identical"] is True
    assert rows["naive_matrix_formula"] == pytest.approx(200 * 200 * 8 / 2**20)
    mem = {r["metric"]: r["value"] for r in perf.graphcut_memory(1000, 8, 10, device="cpu")}
    assert mem["dense_matrix_formula"] == pytest.approx(1000 * 1000 * 8 / 2**20)


def test_peak_memory_sees_a_large_allocation():
    import time

    import mmap

    with perf.PeakMemory("cpu") as m:
        # 64 MiB of fresh anonymous pages, every one written so that it is resident: memory that an allocator kept
        # from an earlier test could be reused without growing the resident set, fresh pages cannot
        block = mmap.mmap(-1, 64 * 2**20)
        block.write(b"\x01" * (64 * 2**20))
        time.sleep(0.1)     # held for 100 sampling intervals: a sampler that a busy suite delays still sees it
        block.close()
    assert m.mib > 32, f"saw {m.mib:.1f} MiB of growth for a 64 MiB block"


def test_clustering_benchmark_picks_agree_on_a_tiny_class():
    measured = perf.clustering_benchmark({"n": 120, "width": 8, "clusters": 12, "interval": 5, "n_data": 32, "ipc": 1,
                                          "match_steps": 1, "net_rounds": 1}, label="chapter setting", device="cpu")
    assert all(r["case"].startswith("chapter setting: N=120 K=12 ") for r in measured)
    rows = {r["metric"]: r["value"] for r in measured}
    assert rows["kmeans_picks_identical"] is True and rows["kmeans_picks_agreement"] == 1.0
    assert rows["inertia_ratio_after_vs_before"] == pytest.approx(1.0)
    assert 0.8 < rows["kmeans_inertia_ratio_vs_sklearn"] < 1.25      # as good a clustering as scikit-learn's
    for when in ("before", "after"):
        share, overhead = rows[f"clustering_share_{when}"], rows[f"clustering_overhead_{when}"]
        assert 0 < share < 1 and share == pytest.approx(overhead / (1 + overhead))


def test_summary_checks_the_targets():
    rows = [{"case": "c", "metric": "graphcut_speedup", "value": 31.0},
            {"case": "c", "metric": "clustering_overhead_after", "value": 0.7},
            {"case": "c", "metric": "other", "value": 1.0}]
    met = {t["metric"]: t["met"] for t in perf.summary(rows)}
    assert met == {"graphcut_speedup": True, "clustering_overhead_after": False}


def test_run_suite_rejects_an_unknown_device():
    with pytest.raises(ValueError, match="device='tpu'"):
        perf.run_suite(graphcut={}, graphcut_large={}, bins={}, clustering={}, throughput={}, device="tpu")


def test_perf_page_is_in_the_book_with_params_for_every_profile():
    root = repo_root()
    assert "perf_bench" in book.notebook_names(root)
    for profile in book.PROFILES:
        book.load_params(root, profile, "perf_bench")


def test_matmul_rate_is_a_positive_flop_rate():
    assert perf.matmul_rate(64, repeats=2, device="cpu") > 0


def test_matching_step_rows_are_consistent_on_a_tiny_setting():
    rows = perf.matching_step_benchmark({"classes": 2, "n": 12, "width": 4, "ipc": 1, "batch_real": 4, "n_data": 8,
                                         "net_batch": 4, "steps": 2, "image_size": 16}, methods=("idc",), device="cpu")
    v = {r["metric"]: r["value"] for r in rows}
    assert v["image_step_gflop"] > 0 and v["image_step_seconds"] > 0 and v["reference_step_seconds"] > 0
    assert v["image_step_gflops"] == pytest.approx(v["image_step_gflop"] / v["image_step_seconds"])
    assert v["image_step_share_of_matmul"] == pytest.approx(v["image_step_gflops"] / v["matmul_gflops"])
    assert v["image_step_speedup_vs_reference"] == pytest.approx(v["reference_step_seconds"] / v["image_step_seconds"])
    with pytest.raises(ValueError, match="unknown key"):
        perf.matching_step_benchmark({"bogus": 1})


def test_flop_count_sees_the_network_not_the_pooling_matrices():
    """The counter runs on a copy whose pooling calls the kernel: the same count as a network built that way."""
    from dscore.models import create_model

    net = create_model("convnet3", num_classes=3, in_channels=1, image_size=28, width=4, seed=0)
    x = torch.rand(5, 1, 28, 28)
    counted = perf._counting_copy(net)
    assert not any(isinstance(m, type(net.layers[3])) for m in counted.modules())
    flops = perf._flops(lambda: counted(x).sum().backward())
    convs = perf._flops(lambda: torch.nn.functional.conv2d(torch.rand(5, 1, 28, 28), net.layers[0].weight, padding=3))
    assert flops > convs > 0
    assert flops < perf._flops(lambda: net(x).sum().backward())


def test_evaluation_epoch_rows_are_consistent_on_a_tiny_setting():
    rows = perf.evaluation_epoch_benchmark({"classes": 2, "images_per_class": 4, "width": 4, "epochs": 2,
                                           "image_size": 16}, device="cpu")
    v = {r["metric"]: r["value"] for r in rows}
    assert v["evaluation_over_bare"] == pytest.approx(v["evaluation_epoch_seconds"] / v["bare_epoch_seconds"])
    assert v["evaluation_share_of_matmul"] == pytest.approx(
        v["epoch_gflop"] / v["evaluation_epoch_seconds"] / v["matmul_gflops"])
    with pytest.raises(ValueError, match="epochs"):
        perf.evaluation_epoch_benchmark({"epochs": 1})


def test_side_by_side_benchmark_times_both_halves_and_names_bad_settings():
    from dscore.studies import perf

    rows = perf.side_by_side_benchmark({"classes": 2, "images_per_class": 4, "width": 4, "epochs": 1}, runs=2)
    values = {r["metric"]: r["value"] for r in rows}
    assert set(values) == {"sequential_seconds", "side_by_side_seconds", "side_by_side_speedup"}
    assert values["sequential_seconds"] > 0 and values["side_by_side_seconds"] > 0
    assert values["side_by_side_speedup"] == pytest.approx(values["sequential_seconds"] / values["side_by_side_seconds"])
    assert "side_by_side_speedup" in perf.TARGETS
    with pytest.raises(ValueError, match="unknown key"):
        perf.side_by_side_benchmark({"epoch": 1})
