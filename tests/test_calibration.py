"""Tests of dscore.studies.calibration (the plateau rule on constructed curves) and of the chapters' calibration
grids on tiny data."""
import math

import pandas as pd
import pytest

from dscore.cache import ArtifactCache
from dscore.distill import preset
from dscore.studies import adq
from dscore.studies import dreamplus as dp
from dscore.studies.calibration import length_curve, plateau_lengths
from dscore.train import epochs_for_steps

from test_study_adq import ARCHS, SETUP
from test_study_dreamplus import tiny_setup


def curve(points, group="a", seeds=(0, 1)):
    """Rows whose per-length mean is ``points[length]`` (the seeds sit ±0.01 around it)."""
    rows = []
    for length, acc in points.items():
        for i, s in enumerate(seeds):
            rows.append({"set": group, "length": length, "seed": s, "acc": acc + (0.01 if i % 2 else -0.01)})
    return pd.DataFrame(rows)


def test_the_chosen_length_is_the_shortest_within_the_distance_of_the_plateau():
    df = curve({20: 0.60, 100: 0.70, 300: 0.735, 1000: 0.745})
    out = plateau_lengths(df, within=0.02, by=["set"], configured={"a": 100}).iloc[0]
    assert out.plateau == pytest.approx(0.745) and out.plateau_length == 1000
    assert out.chosen == 300 and out.acc_chosen == pytest.approx(0.735)
    assert out.configured == 100 and out.acc_configured == pytest.approx(0.70)
    assert out.below_plateau == pytest.approx(0.045) and not out.converged
    assert not out.rising_at_end                       # +1 point at the end is within the distance
    # a wider distance accepts a shorter length; zero distance demands the best
    assert plateau_lengths(df, within=0.05, by=["set"]).iloc[0].chosen == 100
    assert plateau_lengths(df, within=0.0, by=["set"]).iloc[0].chosen == 1000


def test_a_falling_tail_does_not_move_the_plateau_and_a_rising_end_is_flagged():
    falling = plateau_lengths(curve({50: 0.7, 100: 0.8, 200: 0.78}), within=0.01, by=["set"]).iloc[0]
    assert falling.plateau == pytest.approx(0.8) and falling.chosen == 100 and not falling.rising_at_end
    rising = plateau_lengths(curve({50: 0.5, 100: 0.6, 200: 0.7}), within=0.02, by=["set"]).iloc[0]
    assert rising.chosen == 200 and rising.rising_at_end


def test_groups_are_judged_separately_and_an_unmeasured_configured_length_is_nan():
    df = pd.concat([curve({10: 0.5, 20: 0.6}, "a"), curve({10: 0.59, 20: 0.6}, "b")])
    out = plateau_lengths(df, within=0.02, by=["set"], configured={"a": 20, "b": 15}).set_index("set")
    assert out.loc["a", "chosen"] == 20 and out.loc["b", "chosen"] == 10
    assert out.loc["a", "converged"] and out.loc["b", "converged"]
    assert math.isnan(out.loc["b", "acc_configured"])
    with pytest.raises(ValueError, match="no length"):
        plateau_lengths(df, within=0.02, by=["set"], configured={"a": 20})
    with pytest.raises(ValueError, match="within"):
        plateau_lengths(df, within=1.5, by=["set"])
    with pytest.raises(ValueError, match="lacks the column"):
        plateau_lengths(df, within=0.02, by=["ipc"])


def test_length_curve_calls_the_score_once_per_cell_in_order():
    calls = []

    def score(group, length, seed):
        calls.append((group, length, seed))
        return length / 100 + seed

    df = length_curve(score, [("x", 1), ("y", 2)], [30, 10], [0, 1], group_names=("name", "k"))
    assert len(df) == len(calls) == 2 * 2 * 2
    assert list(df.columns) == ["name", "k", "length", "seed", "acc"]
    assert df.length.tolist()[:2] == [10, 30]                          # sorted lengths
    assert df.acc.tolist() == [r.length / 100 + r.seed for r in df.itertuples()]
    with pytest.raises(ValueError, match="one field per name"):
        length_curve(score, [("x",)], [10], [0], group_names=("name", "k"))
    with pytest.raises(ValueError, match="length"):
        length_curve(score, [("x", 1)], [0], [0], group_names=("name", "k"))


def test_epochs_for_steps():
    assert epochs_for_steps(800, 500, 64) == 100                       # 8 batches per epoch
    assert epochs_for_steps(800, 5000, 64) == 10                       # 79 batches: 10.1 epochs, rounded
    assert epochs_for_steps(10, 5000, 64) == 1                         # never less than one epoch
    assert epochs_for_steps(3, 1, 64) == 3
    with pytest.raises(ValueError, match="steps"):
        epochs_for_steps(0, 10, 2)


def test_adq_steps_mode_trains_every_set_equally_long(tmp_path):
    study = adq.ADQStudy({**SETUP, "evaluation": {**SETUP["evaluation"], "steps": 12}}, ARCHS,
                         cache=ArtifactCache(tmp_path / "c"), progress=False)
    assert study.protocol_for(32).epochs == 12 and study.protocol_for(64).epochs == 6
    assert study.protocol_for(220).epochs == 2                      # 7 batches of 32: 1.7 epochs, rounded
    full = study.run("full", 1.0, "tiny", 0)
    small = study.run("random", 0.2, "tiny", 0)
    assert full["num_train"] == len(study.splits.train)
    assert study.configured_steps([0.2]) == {0.2: 12, 1.0: 12}
    plain = adq.ADQStudy(SETUP, ARCHS, cache=ArtifactCache(enabled=False), progress=False)
    assert plain.protocol_for(10) == plain.protocol                  # no steps: the authors' equal epochs
    n = len(plain.splits.train)
    assert plain.configured_steps([0.2]) == {0.2: math.ceil(round(0.2 * n) / 32), 1.0: math.ceil(n / 32)}
    assert 0 <= small["acc"] <= 1
    with pytest.raises(ValueError, match="steps"):
        adq.ADQStudy({**SETUP, "evaluation": {**SETUP["evaluation"], "steps": 0}}, ARCHS)


def test_adq_checks_count_steps_when_steps_are_fixed(tmp_path):
    """Under a fixed step budget every keep ratio is checked about equally often (a best-of-checks over more
    checks is larger by construction); without one, ``check_every`` stays in epochs, the authors' way."""
    study = adq.ADQStudy({**SETUP, "evaluation": {**SETUP["evaluation"], "steps": 12, "check_every": 4}}, ARCHS,
                         cache=ArtifactCache(tmp_path / "c"), progress=False)
    for n in (32, 64, 220):                                          # 1, 2 and 7 batches of 32 per epoch
        epochs, every = study.protocol_for(n).epochs, study.check_every_for(n)
        assert every == epochs_for_steps(4, n, 32)
        assert epochs // every in (1, 2, 3)                          # about 12 / 4 checks, never 12
    assert study.check_every_for(32) == 4 and study.check_every_for(220) == 1
    run = study.run("random", 0.2, "tiny", 0)
    assert run["best_of_checks"] is not None
    plain = adq.ADQStudy(SETUP, ARCHS, cache=ArtifactCache(enabled=False), progress=False)
    assert plain.check_every_for(10) == plain.check_every_for(1000) == 1
    off = adq.ADQStudy({**SETUP, "evaluation": {**SETUP["evaluation"], "steps": 12, "check_every": 0}}, ARCHS,
                       cache=ArtifactCache(enabled=False), progress=False)
    assert off.check_every_for(32) == 0


def test_adq_calibration_scores_random_subsets_and_full_data_on_the_validation_split(tmp_path):
    study = adq.ADQStudy(SETUP, ARCHS, cache=ArtifactCache(tmp_path / "c"), progress=False)
    df = study.calibration([0.2], [7, 14], [100])   # full data: 1 and 2 epochs of 7 batches
    assert sorted(df.ratio.unique()) == [0.2, 1.0] and sorted(df.length.unique()) == [7, 14]
    assert len(df) == 2 * 2
    evals = [e for e in study.cache.ledger if e["kind"] == "evaluation"]
    assert len(evals) == 4 and all(e["computed"] for e in evals)
    out = plateau_lengths(df, within=0.5, by=["ratio"], configured=study.configured_steps([0.2]))
    assert set(out.ratio) == {0.2, 1.0} and (out.chosen == 7).all()   # any curve is within 50 points


def test_dream_calibration_grid(tmp_path):
    study = dp.DreamStudy(tiny_setup(), cache=ArtifactCache(tmp_path / "c"), progress=False)
    df = dp.calibration(study, [1], [1, 2], [100], families=["idc", "dsa"])
    assert len(df) == 2 * 2 and set(df.family) == {"idc", "dsa"}
    assert study.configured_epochs()["idc"] == study.setup.protocols["idc"].epochs
    again = dp.calibration(study, [1], [1, 2], [100], families=["idc", "dsa"])
    assert again.acc.tolist() == df.acc.tolist()                       # cached
    with pytest.raises(ValueError, match="family"):
        dp.calibration(study, [1], [1], [100], families=["mtt"])


def test_beside_paper_sets_our_cells_beside_the_published_ones():
    runs = pd.DataFrame([{"method": m, "label": dp.method_label(m), "ipc": ipc, "seed": s, "eval_seed": 0,
                          "acc": a + 0.01 * s, "best_of_checks": a + 0.02}
                         for m, a in (("random", 0.70), ("idc", 0.80)) for ipc in (1, 10) for s in (0, 1)])
    out = dp.beside_paper(runs, ["random", "idc"], [10], "FashionMNIST").set_index("method")
    assert out.loc["Random", "ours"] == pytest.approx(70.5) and out.loc["Random", "paper"] == pytest.approx(73.8)
    assert out.loc["Random", "ours − paper"] == pytest.approx(70.5 - 73.8)
    assert out.loc["IDC", "authors' protocol"] == pytest.approx(82.0) and out.loc["IDC", "runs"] == 2
    assert out.loc["IDC", "paper"] == pytest.approx(dp.paper_cell("I", "IDC", ("FashionMNIST", 10)))
    none = dp.beside_paper(runs, ["random"], [1], None)
    assert math.isnan(none.paper.iloc[0]) and math.isnan(none["ours − paper"].iloc[0])
    with pytest.raises(ValueError, match="ipc=50"):
        dp.beside_paper(runs, ["random"], [50], "FashionMNIST")


def test_baseline_diagnostics_set_each_distillation_beside_its_initialisation(tmp_path):
    study = dp.DreamStudy(tiny_setup(), cache=ArtifactCache(tmp_path / "c"), progress=False)
    df = dp.baseline_diagnostics(study, [1], ["dc", "forgetting"])
    dc = df[df.method == "DC"].set_index("measure").value
    e = study.setup.eval_seeds[0]
    assert dc["initial set, test accuracy (%)"] == pytest.approx(100 * study.evaluate("dc", 1, 0, e, iteration=0)["acc"])
    assert dc["final set, test accuracy (%)"] == pytest.approx(100 * study.evaluate("dc", 1, 0, e)["acc"])
    cfg = study.run("dc", 1, 0).config
    authors = preset("dc", study.setup.dataset, 1)
    assert dc["image steps run / authors' (%)"] == pytest.approx(
        100 * cfg.iterations * cfg.outer_loops / (authors.iterations * authors.outer_loops))
    # the share of never-learned samples in the Forgetting coreset, from the scores themselves
    scores, idx = dp.forgetting(study), dp.coreset(study, "forgetting", 1, 0)
    never = 100 * float((scores[idx] > study.setup.forgetting_epochs // 2).double().mean())
    assert df[df.method == "Forgetting"].value.iloc[0] == pytest.approx(never)
    assert set(df.ipc) == {1} and len(df) == 4
    with pytest.raises(ValueError, match="method"):
        dp.baseline_diagnostics(study, [1], ["idc"])
