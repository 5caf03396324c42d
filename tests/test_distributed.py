"""Data-parallel pieces (sharded features, per-class bins, collective cache) with 2 gloo processes on CPU,
and the task order of a prefill."""
import socket

import pytest
import torch
import torch.multiprocessing as mp

from dscore.distributed import balanced_assignment, ordered_map, shard_bounds, work_order


@pytest.mark.parametrize("n,world,align", [(0, 2, 1), (7, 3, 1), (100, 2, 32), (65, 4, 16), (10, 4, 8)])
def test_shard_bounds_cover_in_rank_order_and_align_to_batches(n, world, align):
    bounds = [shard_bounds(n, r, world, align=align) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (a, b), (c, _) in zip(bounds, bounds[1:]):
        assert b == c and a <= b
    for a, b in bounds:
        assert (a % align == 0 or a == n) and (b % align == 0 or b == n)


def test_shard_bounds_reject_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        shard_bounds(10, 2, 2)


def test_balanced_assignment_is_deterministic_and_balances():
    owner = balanced_assignment([9.0, 1.0, 1.0, 8.0], 2)
    assert owner == [0, 1, 1, 1] or owner == balanced_assignment([9.0, 1.0, 1.0, 8.0], 2)
    loads = [sum(w for w, o in zip([9.0, 1.0, 1.0, 8.0], owner) if o == r) for r in range(2)]
    assert max(loads) - min(loads) <= 1.0


def test_work_order_own_share_first_then_the_rest_backwards():
    cells = list("abcdef")
    assert work_order(cells, position=(0, 1)) == list(range(6))
    r0, r1 = work_order(cells, position=(0, 2)), work_order(cells, position=(1, 2))
    assert r0 == [0, 2, 4, 5, 3, 1] and r1 == [1, 3, 5, 4, 2, 0]
    grouped = work_order([("x", 0), ("x", 1), ("y", 0), ("y", 1)], group=lambda c: c[0], position=(1, 2))
    assert grouped[:2] == [2, 3] and sorted(grouped) == [0, 1, 2, 3]


def test_ordered_map_returns_the_cells_order_whatever_the_rank(monkeypatch):
    seen = []
    monkeypatch.setenv("DSCORE_WORK_WORLD", "3")
    monkeypatch.setenv("DSCORE_WORK_RANK", "2")
    out = ordered_map(lambda c: seen.append(c) or c * 10, [1, 2, 3, 4, 5], progress=False)
    assert out == [10, 20, 30, 40, 50] and seen[0] == 3 and sorted(seen) == [1, 2, 3, 4, 5]
    monkeypatch.setenv("DSCORE_WORK_RANK", "3")
    with pytest.raises(ValueError, match="DSCORE_WORK_RANK"):
        ordered_map(lambda c: c, [1], progress=False)


# ------------------------------------------------------------------------------------------ 2 gloo processes

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs():
    from dscore.data import load_dataset, stratified_subset
    from dscore.models import create_model

    ds = stratified_subset(load_dataset("digits", "train", progress=False), 13, seed=0)   # 130 images
    model = create_model("convnet3", num_classes=ds.num_classes, in_channels=ds.channels, image_size=ds.image_size,
                         mean=ds.mean, std=ds.std, seed=0, width=8).eval()
    return ds, model


def _reference():
    from dscore.features import extract_embeddings, extract_gradient_features
    from dscore.quantize import generate_bins

    torch.set_num_threads(1)
    ds, model = _inputs()
    g = extract_gradient_features(model, ds.images, ds.labels, batch_size=16, progress=False)
    emb = extract_embeddings(model, ds.images, batch_size=16, progress=False)
    bins = generate_bins(g, ds.labels, 4)
    return g, emb, bins


def _worker(rank, world, port, cache_dir, out):
    import torch.distributed as dist

    from dscore.cache import ArtifactCache
    from dscore.features import extract_embeddings, extract_gradient_features
    from dscore.quantize import generate_bins
    from dscore.quantize.pipeline import dataset_bins, dataset_features

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        ds, model = _inputs()
        g = extract_gradient_features(model, ds.images, ds.labels, batch_size=16, progress=False)
        emb = extract_embeddings(model, ds.images, batch_size=16, progress=False)
        bins = generate_bins(g, ds.labels, 4)
        store = ArtifactCache(cache_dir)
        feats = dataset_features(ds, model, batch_size=16, cache=store, progress=False)
        cached_bins = dataset_bins(ds, model, {"num_bins": 4}, batch_size=16, cache=store, progress=False)
        again = dataset_bins(ds, model, {"num_bins": 4}, batch_size=16, cache=store, progress=False)
        mismatch = None
        try:
            store.get_or_compute("toy", {"rank": rank}, lambda: {"v": 1})
        except ValueError as exc:
            mismatch = str(exc)
        torch.save({"delta": g.delta, "embedding": g.embedding, "emb": emb, "bins": bins,
                    "cached_delta": feats["gradient"].delta, "cached_bins": cached_bins, "again": again,
                    "ledger": store.ledger, "mismatch": mismatch}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_give_the_features_and_bins_of_one(tmp_path):
    g, emb, bins = _reference()
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path / "cache"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        r = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert torch.equal(r["delta"], g.delta) and torch.equal(r["embedding"], g.embedding)
        assert torch.equal(r["emb"], emb)
        assert len(r["bins"]) == 4 and all(torch.equal(a, b) for a, b in zip(r["bins"], bins))
        assert torch.equal(r["cached_delta"], g.delta)
        assert all(torch.equal(a, b) for a, b in zip(r["cached_bins"], bins))
        assert all(torch.equal(a, b) for a, b in zip(r["again"], bins))
        kinds = [(e["kind"], e["computed"]) for e in r["ledger"]]
        # features computed (collectively) once, inside the bins' computation loaded; the second bins request loads
        assert kinds == [("features", True), ("features", False), ("bins", True), ("bins", False)]
        assert r["mismatch"] and "different 'toy' artefacts" in r["mismatch"]
    stored = sorted(p.parent.parent.name for p in (tmp_path / "cache").rglob("*.pt"))
    assert stored == ["bins", "features"]          # one file per artefact, written by rank 0


# ------------------------------------------------------------------------------------------ the DS head under DDP

def _head_and_selection():
    """The contrastive head trained on the toy set, its DS scores of the toy bins, and ADQ's picks from them."""
    from dscore.features import extract_gradient_features
    from dscore.quantize import generate_bins
    from dscore.quantize.diversity import diversity_scores, train_contrastive_head
    from dscore.quantize.sampling import adq_select

    ds, model = _inputs()
    # 130 images in batches of 33 (the last one 31): each rank projects half of a batch's two views; 2 epochs
    head = train_contrastive_head(model, ds.images, {"epochs": 2, "batch_size": 33, "seed": 0, "hidden_dim": 32,
                                                     "out_dim": 16}, progress=False)
    g = extract_gradient_features(model, ds.images, ds.labels, batch_size=16, progress=False)
    bins = generate_bins(g, ds.labels, 4)
    scores = diversity_scores(model, head, ds.images, bins, seed=0)
    picks = adq_select(bins, ds.labels, 0.3, scores, beta=0.5, seed=0)
    return head, scores, picks


def _head_worker(rank, world, port, out):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        head, scores, picks = _head_and_selection()
        torch.save({"state": head.state_dict(), "loss": head.loss_history, "scores": scores, "picks": picks},
                   f"{out}/head{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_train_the_ds_head_of_one_and_pick_the_same_samples(tmp_path):
    torch.set_num_threads(1)
    head, scores, picks = _head_and_selection()
    mp.spawn(_head_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"head{r}.pt", weights_only=False) for r in range(2)]
    for r in ranks:
        for name, value in head.state_dict().items():      # same training up to float summation order
            torch.testing.assert_close(r["state"][name], value, rtol=1e-4, atol=1e-5)
        assert r["loss"] == pytest.approx(head.loss_history, rel=1e-5)
        torch.testing.assert_close(r["scores"], scores, rtol=1e-4, atol=1e-6)
        assert torch.equal(r["picks"].sort().values, picks.sort().values)
    for name in head.state_dict():                         # DDP keeps the ranks' heads identical
        assert torch.equal(ranks[0]["state"][name], ranks[1]["state"][name])


def test_gather_rows_with_grad_is_the_identity_without_a_process_group():
    from dscore.distributed import gather_rows_with_grad

    x = torch.randn(3, 2, requires_grad=True)
    assert gather_rows_with_grad(x) is x
