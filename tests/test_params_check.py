"""Every page checks its parameters first: unknown keys, wrong types, values out of range and impossible budgets
fail in the page's first cell after the parameters, before any data is loaded, with one clear message; the book
runner's ``run -f/-p`` rejects them before a kernel starts. Also the page files (downloads)."""
import os
import re

import nbformat
import numpy as np
import papermill
import pytest
import torch
import yaml
from papermill.translators import translate_parameters

from dscore import book, data
from dscore.book import page as pages
from dscore.book import rules
from dscore.utils import PROGRESS_ENV
from dscore.paths import repo_root

ROOT = repo_root()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _cells(path):
    return nbformat.read(path, as_version=4).cells


def _check_cell(path):
    cells = _cells(path)
    p = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    return cells, p


# ------------------------------------------------------------------------------------------- the check cell

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_page_checks_its_parameters_right_after_the_parameters_cell(path):
    cells, p = _check_cell(path)
    code_before = [c for c in cells[:p] if c.cell_type == "code"]
    assert not code_before, f"{path.name}: the parameters cell must be the first code cell"
    check = cells[p + 1]
    assert check.cell_type == "code"
    assert f'pg = page.open("{path.stem}", globals())' in check.source, f"{path.name}: no check cell after the parameters"
    others = [c.source for c in cells if c.cell_type == "code" and c is not check]
    assert not any(f'"{path.stem}"' in src for src in others), f"{path.name}: names itself twice (use pg)"
    assert "remove-cell" in check.metadata.get("tags", []), f"{path.name}: the check cell is hidden from the HTML"


def _bad_files(path, declared):
    """At least three bad parameter sets for one page: a misspelt key, a wrong type, an out-of-range value, plus
    (where the page has them) an unknown dataset and an impossible budget. Returns (yaml text, key named)."""
    keys = [k for k in declared if k != "profile"]
    bad = [(f"{keys[0]}z: 3\n", f"{keys[0]}z")]
    number = next((k for k in keys if isinstance(declared[k], (int, float)) and not isinstance(declared[k], bool)),
                  None)
    ranged = next((k for k in ("epochs", "val_fraction", "ratio", "ipc", "split_seed", "seed") if k in declared), None)
    strings_only = all(isinstance(declared[k], str) for k in keys)
    if strings_only:
        # a page with only paths for parameters (a chapter overview): a wrong type
        bad.append((f"{keys[0]}: 3\n", keys[0]))
        bad.append((f"{keys[0]}: [a, b]\n", keys[0]))
    elif number is None or ranged is None:
        # a page whose sizes all sit inside mappings (the performance page): a wrong type and a size out of range
        # inside the first mapping with an integer
        section = next(k for k in keys if isinstance(declared[k], dict)
                       and any(isinstance(v, int) and not isinstance(v, bool) for v in declared[k].values()))
        inner = next(k for k, v in declared[section].items() if isinstance(v, int) and not isinstance(v, bool))
        bad.append((f"{section}: three\n", section))
        bad.append((yaml.safe_dump({section: {**declared[section], inner: -1}}), section))
    else:
        bad.append((f"{number}: three\n", number))
        bad.append((f"{ranged}: -1\n", ranged))
    if "dataset" in declared:
        bad.append(("dataset: cifar11\n", "dataset"))
    if "seeds" in declared:
        bad.append(("seeds: [0, 0]\n", "seeds"))
    if "num_bins" in declared:
        bad.append(("num_bins: 1000\n", "num_bins"))
    if "ipc" in declared:
        bad.append(("ipc: 1000\n", "ipc"))
    if "ipcs" in declared:
        bad.append(("ipcs: [1000]\n", "ipcs"))
    if "methods" in declared:
        bad.append(("methods: [nonsense]\n", "methods"))
    return bad


def _run_until_check(path, injected: dict, monkeypatch):
    """Execute the page as papermill does — parameters cell, the injected-parameters cell papermill generates, then
    the check cell — in one namespace with the kernel's input history ``In``; loading any data fails the test."""
    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the parameters were checked")

    import sys

    import dscore.studies.adq  # noqa: F401  (every module that holds a reference to load_dataset is patched)
    import dscore.studies.dreamplus  # noqa: F401

    original = data.load_dataset
    for name, module in list(sys.modules.items()):
        if name.startswith("dscore") and getattr(module, "load_dataset", None) is original:
            monkeypatch.setattr(module, "load_dataset", no_data)
    cells, p = _check_cell(path)
    injected_src = translate_parameters("python3", "python", injected, "Parameters")
    ns = {"__name__": "__main__", "In": ["", cells[p].source, injected_src, cells[p + 1].source]}
    exec(compile(cells[p].source, "parameters", "exec"), ns)
    exec(compile(injected_src, "injected-parameters", "exec"), ns)
    exec(compile(cells[p + 1].source, "check", "exec"), ns)
    return ns


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_bad_parameter_files_fail_in_the_check_cell_before_any_data(path, tmp_path, monkeypatch):
    declared = book.declared_parameters(path)
    bad = _bad_files(path, declared)
    assert len(bad) >= 3
    for i, (text, key) in enumerate(bad):
        f = tmp_path / f"bad{i}.yaml"
        f.write_text(text)
        values = yaml.safe_load(f.read_text())
        with pytest.raises(pages.ParameterError) as err:
            _run_until_check(path, {**values, "profile": "smoke"}, monkeypatch)
        message = str(err.value)
        assert f"page {path.stem!r}" in message and key in message, (text, message)
        assert "allowed" in message or "declares" in message, message


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_defaults_and_every_profile_pass_the_check(path, monkeypatch):
    _run_until_check(path, {"profile": "smoke"}, monkeypatch)
    for profile in book.PROFILES:
        params = book.load_params(ROOT, profile, path.stem)
        rules.check_values(path.stem, params)


# ------------------------------------------------------------------------------------------- the rules

@pytest.mark.parametrize("values, pattern", [
    ({"epochz": 3}, r"unknown parameter\(s\) 'epochz' \(did you mean 'epochs'\?\)"),
    ({"epochs": -1}, r"epochs=-1 is out of range; allowed: 1 <= epochs"),
    ({"epochs": 2.5}, r"epochs=2.5 has type float; allowed: an integer"),
    ({"epochs": True}, r"epochs=True has type bool"),
    ({"lr": 0}, r"lr=0 is out of range"),
    ({"lr": "fast"}, r"lr='fast' has type str; allowed: a number"),
    ({"dataset": "cifar11"}, r"dataset='cifar11' is not supported; allowed: 'fashion_mnist'"),
    ({"model": "resnet99"}, r"model='resnet99' is not supported; allowed: .*'convnet3'"),
    ({"profile": "huge"}, r"profile='huge' is not supported; allowed: 'smoke', 'default', 'paper'"),
    ({"device": "gpu"}, r"device='gpu' is not supported"),
    ({"device": "cuda:x"}, r"device='cuda:x' is not a device"),
    ({"seed": -3}, r"seed=-3 is out of range"),
    ({"test_size": None}, r"test_size=null is not allowed"),
])
def test_tour_rules(values, pattern):
    with pytest.raises(pages.ParameterError, match=r"^page 'tour': " + pattern):
        rules.check_values("tour", values)


@pytest.mark.parametrize("values, pattern", [
    ({"ratios": [0.0]}, r"ratios\[0\]=0.0 is out of range; allowed: ratios\[0\] in \(0.0, 1.0\]"),
    ({"ratios": [1.5]}, r"ratios\[0\]=1.5 is out of range"),
    ({"ratios": [0.001]}, r"ratios\[0\]=0.001 keeps 0.03 of the 30 training images per class, fewer than one"),
    ({"num_bins": 31}, r"num_bins=31 exceeds the 30 training images per class"),
    ({"seeds": [0, 0]}, r"seeds=\[0, 0\] lists 0 twice"),
    ({"seeds": []}, r"seeds=\[\] must list at least one value"),
    ({"seeds": [0.5]}, r"seeds\[0\]=0.5 has type float; allowed: an integer"),
    ({"val_fraction": 1.0}, r"val_fraction=1.0 is out of range"),
    ({"methods": ["dq", "adqq"]}, r"methods\[1\]='adqq' is not supported; allowed: 'full'"),
    ({"archs": {"X": {"arch": "resnet99"}}}, r"archs\['X'\]\['arch'\]='resnet99' is not supported"),
    ({"extractor": {"arch": "convnet3", "epochz": 1}}, r"extractor has unknown key\(s\) \['epochz'\]"),
    ({"extractor": {"arch": "convnet3", "epochs": 0}}, r"extractor\['epochs'\]=0 is out of range"),
    ({"evaluation": {"epochs": 0}}, r"evaluation\['epochs'\]=0 is out of range"),
    ({"tuning": {"ratios": [2.0]}}, r"tuning\['ratios'\]\[0\]=2.0 is out of range"),
    ({"tuning": {"arch": "ResNet-99"}}, r"tuning\['arch'\]='ResNet-99' is not one of the page's archs"),
    ({"dm": {"iterationz": 3}}, r"dm: unknown DistillConfig field\(s\) \['iterationz'\]"),
    ({"pool_per_class": 1}, r"pool_per_class=1 is out of range"),
    ({"methods": ["dq", "dq"]}, r"methods=\['dq', 'dq'\] lists 'dq' twice"),
    ({"seeds": [0, 100]}, r"seeds=\[0, 100\] reuses the tuning seeds \[100\] \(tuning\['seeds'\]=\[100, 101\]\)"),
    ({"context_seeds": [101]}, r"context_seeds=\[101\] reuses the tuning seeds \[101\]"),
])
def test_adq_rules(values, pattern):
    with pytest.raises(pages.ParameterError, match=r"^page 'adq_main': " + pattern):
        rules.check_values("adq_main", values)


def test_adq_pq_effective_ratio_cannot_exceed_the_kept_patches():
    with pytest.raises(pages.ParameterError, match=r"ratios\[0\]=0.9 is an effective keep ratio above 1 - theta = 0.8"):
        rules.check_values("adq_pq", {"ratios": [0.9]})
    rules.check_values("adq_pq", {"ratios": [0.8]})


@pytest.mark.parametrize("values, pattern", [
    ({"ipcs": [13]}, r"ipcs\[0\]=13 exceeds the 12 training images per class"),
    ({"ipcs": [4]}, r"idc at ipcs\[0\]=4: init='mix' needs ipc·factor² = 4·2² = 16 real images per class"),
    ({"methods": ["idc+xx"]}, r"methods\[0\]='idc\+xx' is not a method"),
    ({"distill_seeds": [1, 1]}, r"distill_seeds=\[1, 1\] lists 1 twice"),
    ({"network": {"arch": "convnet3", "depth": 3}}, r"network has unknown key\(s\) \['depth'\]"),
    ({"evaluation": {"idc": {"epochs": -1}}}, r"evaluation\['idc'\]\['epochs'\]=-1 is out of range"),
    ({"distill": {"idc": {"iterationz": 1}}}, r"distill\['idc'\]: unknown DistillConfig field"),
    ({"coresets": {"family": "dq"}}, r"coresets\['family'\]='dq' is not supported"),
    ({"methods": ["idc", "idc"]}, r"methods=\['idc', 'idc'\] lists 'idc' twice"),
    ({"distill_seeds": [0, 100]}, r"distill_seeds=\[0, 100\] reuses the seeds \[100\] the image learning rate was "
                                  r"chosen with"),
])
def test_dream_rules(values, pattern):
    with pytest.raises(pages.ParameterError, match=r"^page 'dream_main': " + pattern):
        rules.check_values("dream_main", values)


def test_the_rule_across_seeds_is_checked_before_any_work_on_every_seed_parameter():
    with pytest.raises(pages.ParameterError, match=r"region_seeds=\[100\] reuses the seeds \[100\]"):
        rules.check_values("dream_why", {"region_seeds": [100]})
    with pytest.raises(pages.ParameterError, match=r"seed=100 reuses the seeds \[100\]"):
        rules.check_values("dream_continual", {"seed": 100})
    with pytest.raises(pages.ParameterError, match=r"extractor_seeds=\[100\] reuses the tuning seeds"):
        rules.check_values("adq_bins", {"extractor_seeds": [100]})
    rules.check_values("adq_calibration", {"calibration_seeds": [100, 101]})   # validation seeds may be the tuning's


def test_one_data_scale_rule_a_single_test_image_per_class_is_allowed():
    rules.check_values("dream_main", {"test_per_class": 1})
    with pytest.raises(pages.ParameterError, match=r"test_per_class=0 is out of range"):
        rules.check_values("adq_main", {"test_per_class": 0})


@pytest.mark.parametrize("pool", [2, 3, 7, 15, 40, 301])
@pytest.mark.parametrize("fraction", [0.01, 0.2, 0.25, 0.5, 0.75, 0.99])
def test_train_per_class_is_the_count_train_val_split_leaves(pool, fraction):
    import torch

    from dscore.data import ImageDataset, train_val_split
    from dscore.studies.common import train_per_class

    labels = torch.arange(3).repeat_interleave(pool)
    ds = ImageDataset("toy", "train", torch.zeros(3 * pool, 1, 2, 2), labels, tuple("abc"), (0.5,), (0.2,))
    train, _ = train_val_split(ds, fraction, 0)
    assert int((train.labels == 0).sum()) == train_per_class(pool, fraction)
    assert train_per_class(None, fraction) is None


def test_whole_splits_are_allowed_and_skip_the_budget_checks():
    rules.check_values("dream_main", {"pool_per_class": None, "test_per_class": None, "ipcs": [50]})
    rules.check_values("adq_main", {"pool_per_class": None, "ratios": [0.001]})


def test_unknown_page_is_named():
    with pytest.raises(pages.ParameterError, match=r"page='nope' is not a notebook of this book; allowed: .*tour"):
        rules.check_values("nope", {})


def test_injected_names_come_from_the_papermill_cell_only():
    ns = {"In": ["", "# Parameters: papermill replaces these values\nepochs = 2",
                 translate_parameters("python3", "python", {"epochz": 3, "seed": 1}, "Parameters"), "x = 1"]}
    assert pages.injected_names(ns) == ["epochz", "seed"]
    assert pages.injected_names({"In": ["", "epochs = 2"]}) == []
    assert pages.injected_names({}) == []


def test_check_needs_the_parameters_cell_first():
    with pytest.raises(pages.ParameterError, match=r"not defined; run the parameters cell first"):
        pages.check("tour", {"profile": "smoke"})


def test_runner_progress_bars_stay_text_and_nothing_global_is_patched(monkeypatch):
    import tqdm.auto
    import tqdm.std

    from dscore.utils import tqdm as bar

    auto = tqdm.auto.tqdm
    monkeypatch.setenv(PROGRESS_ENV, "text")
    pages.check("tour", {**book.declared_parameters(ROOT / "notebooks" / "tour.ipynb")})
    with bar(range(2), disable=True) as b:
        assert type(b) is tqdm.std.tqdm                     # the runner's log keeps text bars
    assert tqdm.auto.tqdm is auto                           # and tqdm itself is left alone
    monkeypatch.setenv(PROGRESS_ENV, "")
    with bar(range(2), disable=True) as b:
        assert isinstance(b, tqdm.auto.tqdm)                # JupyterLab: widget bars (text outside a kernel)


def test_outside_the_runner_the_outermost_bar_stays_and_nested_ones_follow_leave(monkeypatch):
    import io

    from dscore.utils import tqdm as bar

    monkeypatch.setenv(PROGRESS_ENV, "")
    out = io.StringIO()
    with bar(range(2), leave=False, file=out) as outer:
        with bar(range(2), leave=False, file=out) as inner:
            assert inner.leave is False                     # an inner loop closes its bar
        assert outer.leave is True                          # the cell's own loop keeps its bar as a record
    monkeypatch.setenv(PROGRESS_ENV, "text")
    with bar(range(2), leave=False, file=out) as runner_bar:
        assert runner_bar.leave is False                    # the runner's text log: the caller decides


# ------------------------------------------------------------------------------------------- the runner

@pytest.fixture
def no_kernel(monkeypatch):
    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: calls.append(k) or pytest.fail("executed"))
    return calls


def test_run_rejects_an_unknown_key_before_executing(no_kernel, capsys):
    assert book.main(["run", "tour", "-p", "epochz", "3"]) == 2
    err = capsys.readouterr().err
    assert "-p epochz: 'epochz' is not a parameter of notebooks/tour.ipynb (did you mean 'epochs'?)" in err
    assert no_kernel == []


def test_run_rejects_a_bad_value_from_a_file_before_executing(no_kernel, tmp_path, capsys):
    f = tmp_path / "my.yaml"
    f.write_text("epochs: -1\n")
    assert book.main(["run", "tour", "-f", str(f)]) == 2
    err = capsys.readouterr().err
    assert "params/smoke/tour.yaml with epochs=-1: page 'tour': epochs=-1 is out of range" in err
    assert no_kernel == []


def test_run_rejects_profile_in_a_file_and_bad_yaml(tmp_path):
    f = tmp_path / "my.yaml"
    f.write_text("profile: paper\n")
    with pytest.raises(book.BookError, match="'profile' is chosen with --profile"):
        book.read_overrides(ROOT, "tour", [str(f)])
    f.write_text("- a list\n")
    with pytest.raises(book.BookError, match="must be a mapping"):
        book.read_overrides(ROOT, "tour", [str(f)])
    with pytest.raises(book.BookError, match="no such file"):
        book.read_overrides(ROOT, "tour", [str(tmp_path / "missing.yaml")])


def test_overrides_merge_files_then_pairs_as_yaml(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("epochs: 3\nseed: 1\n")
    b.write_text("seed: 2\n")
    got = book.read_overrides(ROOT, "tour", [str(a), str(b)], [("lr", "0.05"), ("epochs", "4")])
    assert got == {"epochs": 4, "seed": 2, "lr": 0.05}


def test_deep_merge_keeps_what_the_override_does_not_name():
    base = {"evaluation": {"epochs": 20, "batch_size": 64, "idc": {"epochs": 20, "lr": 0.01}}, "seeds": [0, 1]}
    over = {"evaluation": {"idc": {"epochs": 300}}, "seeds": [5]}
    merged = book.deep_merge(base, over)
    assert merged == {"evaluation": {"epochs": 20, "batch_size": 64, "idc": {"epochs": 300, "lr": 0.01}}, "seeds": [5]}
    assert base["evaluation"]["idc"]["epochs"] == 20                        # neither argument is changed
    assert book.deep_merge({"a": {"b": 1}}, {"a": None}) == {"a": None}    # a non-mapping replaces
    assert book.deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}


def test_dotted_keys_reach_inside_a_mapping_and_bad_paths_are_named():
    assert book.dotted("evaluation.idc.epochs", 5) == {"evaluation": {"idc": {"epochs": 5}}}
    assert book.dotted("seeds", [1]) == {"seeds": [1]}
    for bad in ("a..b", ".a", "a."):
        with pytest.raises(book.BookError, match="not a parameter path"):
            book.dotted(bad, 1)


def test_a_dotted_pair_changes_one_nested_value_and_keeps_the_rest(tmp_path):
    f = tmp_path / "my.yaml"
    f.write_text("evaluation: {seeds: [0, 1], idc: {epochs: 50}}\n")
    got = book.read_overrides(ROOT, "dream_main", [str(f)], [("evaluation.idc.epochs", "300"),
                                                                 ("evaluation", "{check_every: 5}")])
    assert got == {"evaluation": {"seeds": [0, 1], "idc": {"epochs": 300}, "check_every": 5}}
    with pytest.raises(book.BookError, match=r"-p evaluatoin.epochs: 'evaluatoin' is not a parameter .*did you mean"):
        book.read_overrides(ROOT, "dream_main", pairs=[("evaluatoin.epochs", "5")])
    with pytest.raises(book.BookError, match=r"-p evaluation\.\.epochs: .*not a parameter path"):
        book.read_overrides(ROOT, "dream_main", pairs=[("evaluation..epochs", "5")])


def _one_page_repo(tmp_path, parameters: str, values: str):
    """A repository with one notebook ``page`` whose parameters cell declares ``parameters`` and a params file of
    ``values`` in every profile."""
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f'profile = "smoke"\n{parameters}')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, root / "notebooks" / "page.ipynb")
    for profile in book.PROFILES:
        (root / "params" / profile).mkdir(parents=True)
        (root / "params" / profile / "page.yaml").write_text(values)
    return root


def test_an_override_of_one_nested_value_keeps_the_profile_s_others(tmp_path, monkeypatch):
    """``-p evaluation '{epochs: 5}'`` used to replace the whole mapping and silently drop the profile's other keys."""
    root = _one_page_repo(tmp_path, 'evaluation = {"epochs": 1, "batch_size": 8}',
                          "evaluation: {epochs: 1, batch_size: 8}\n")
    seen = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, dst, parameters=None, **kw: seen.append(parameters)
                        or __import__("shutil").copy(src, dst))
    monkeypatch.setattr(book.executor, "kernel_name", lambda **kw: "python3")
    overrides = book.read_overrides(root, "page", pairs=[("evaluation.epochs", "5")])
    book.execute(root, "page", "smoke", overrides=overrides, log=lambda *_: None)
    assert seen[0]["evaluation"] == {"epochs": 5, "batch_size": 8}


def test_run_executes_with_the_overrides_and_writes_into_the_book_tree(tmp_path, monkeypatch):
    import shutil

    root = _one_page_repo(tmp_path, "epochs = 1", "epochs: 1\n")
    seen = []

    def fake_execute(src, dst, parameters=None, **kwargs):
        seen.append((parameters, os.environ.get(pages.PAGE_FILES_ENV), os.environ.get(PROGRESS_ENV)))
        files = pages.Downloads("page")
        files.table("t", __import__("pandas").DataFrame({"a": [1, 2]}), "a table")
        shutil.copy(src, dst)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(book.executor, "kernel_name", lambda **kw: "python3")
    overrides = book.read_overrides(root, "page", pairs=[("epochs", "5")])
    assert book.execute(root, "page", "smoke", overrides=overrides, log=lambda *_: None) is True
    params, files_env, progress = seen[0]
    assert params == {"epochs": 5, "profile": "smoke"}
    assert progress == "text" and files_env.endswith("page_files")
    assert (root / "book" / "nb" / "page.ipynb").exists()
    assert (root / "book" / "nb" / "page_files" / "t.csv").read_text().splitlines() == ["a", "1", "2"]
    assert not (root / "book" / "nb" / ".partial" / "page_files").exists()
    assert pages.PAGE_FILES_ENV not in os.environ
    with pytest.raises(book.BookError, match=r"epochs=0 is out of range"):
        book.execute(root, "page", "smoke", overrides={"epochs": 0}, log=lambda *_: None)
    assert len(seen) == 1


def test_book_check_validates_the_values_of_every_profile():
    assert book.main(["check"]) == 0


# ------------------------------------------------------------------------------------------- downloads

def test_downloads_write_files_and_link_them(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv(pages.PAGE_FILES_ENV, str(tmp_path / "page_files"))
    files = pages.Downloads("page")
    files.table("runs", pd.DataFrame({"method": ["dq", "adq"], "acc": [0.5, 0.6]}), "every run")
    files.indices("sel", torch.tensor([3, 1, 2]), "three indices")
    x = torch.rand(4, 1, 8, 8)
    files.image_set("syn", x, torch.tensor([0, 0, 1, 1]), "a set", classes=["a", "b"],
                    training=(x.repeat(2, 1, 1, 1), torch.tensor([0, 0, 1, 1] * 2)))
    folder = tmp_path / "page_files"
    assert sorted(p.name for p in folder.iterdir()) == ["runs.csv", "sel.npy", "syn.npz", "syn.png"]
    assert np.load(folder / "sel.npy").tolist() == [3, 1, 2]
    d = np.load(folder / "syn.npz")
    assert np.allclose(d["images"], x.numpy()) and d["labels"].tolist() == [0, 0, 1, 1]
    assert d["classes"].tolist() == ["a", "b"] and d["train_images"].shape == (8, 1, 8, 8)
    t = np.genfromtxt(folder / "runs.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    assert t["method"].tolist() == ["dq", "adq"]
    md = files.markdown()
    assert "{download}`runs.csv <page_files/runs.csv>`" in md and "{download}`syn.png <page_files/syn.png>`" in md
    assert 'np.load("sel.npy")' in md and 'np.load("syn.npz")' in md and "genfromtxt" in md
    monkeypatch.delenv(pages.PAGE_FILES_ENV)
    monkeypatch.chdir(tmp_path)
    plain = pages.Downloads("page")
    assert plain.folder == tmp_path / "page_files"
    plain.indices("sel", [1], "one")
    assert "[sel.npy](page_files/sel.npy)" in plain.markdown()


def test_downloads_reject_bad_names_and_missing_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv(pages.PAGE_FILES_ENV, str(tmp_path))
    files = pages.Downloads("page")
    with pytest.raises(ValueError, match="plain file stem"):
        files.indices("../x", [1], "bad")
    with pytest.raises(ValueError, match="needs the indices"):
        files.indices("x", None, "nothing")
    with pytest.raises(ValueError, match="images .* must be"):
        files.image_set("x", torch.rand(2, 8, 8), torch.tensor([0, 1]), "flat")


def test_subsets_know_where_their_samples_sit_in_the_loaded_split():
    full = data.load_dataset("digits", "train")
    assert torch.equal(full.source, torch.arange(len(full)))
    pool = data.stratified_subset(full, 30, seed=1)
    train, val = data.train_val_split(pool, 0.25, seed=0)
    pick = torch.tensor([5, 17, 3, 100, 42])
    chosen = train.subset(pick)                                  # a subset of a subset of a subset
    assert torch.equal(full.images[chosen.source], chosen.images) and torch.equal(full.labels[chosen.source],
                                                                                  chosen.labels)
    assert not set(train.source.tolist()) & set(val.source.tolist())
    assert chosen.to("cpu").source is chosen.source
    synthetic = data.ImageDataset("syn", "train", torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), ("a", "b"), (0.5,),
                                  (0.2,))
    assert synthetic.source is None and synthetic.subset([1]).source is None
    with pytest.raises(ValueError, match="source must be None or an int64 tensor of shape \\(2,\\)"):
        data.ImageDataset("syn", "train", torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), ("a", "b"), (0.5,), (0.2,),
                          torch.tensor([0]))


# ------------------------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_bare_papermill_run_with_a_misspelt_key_fails_in_the_check_cell(tmp_path):
    out = tmp_path / "out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError, match=r"unknown parameter\(s\) 'epochz'"):
        papermill.execute_notebook(str(ROOT / "notebooks" / "tour.ipynb"), str(out), parameters={"epochz": 3},
                                   kernel_name=book.kernel_name(), cwd=str(ROOT / "notebooks"), progress_bar=False)
    cells = nbformat.read(out, as_version=4).cells
    failed = [c.get("id") for c in cells if c.cell_type == "code" and any(o.get("output_type") == "error"
                                                                           for o in c.get("outputs", []))]
    assert failed == ["check-params"]
    later = [c for c in cells if c.cell_type == "code" and c.get("id") == "load-data"]
    assert later and later[0].execution_count is None, "the data cell ran although the check failed"
    assert re.search(r"did you mean 'epochs'", str(cells))


def test_a_chapter_overview_runs_after_its_pages_and_follows_their_claims(tmp_path):
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nparts:\n  - chapters:\n"
                                   "      - file: book/nb/tour\n      - file: book/nb/ov\n        sections:\n"
                                   "          - file: book/nb/p1\n          - file: book/nb/p2\n")
    for name in ("tour", "ov", "p1", "p2"):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell('profile = "smoke"')
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [cell]
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
    (root / "dscore").mkdir()
    deps = book.chapter_dependencies(root)
    assert deps == {"ov": ["p1", "p2"]}
    assert book.execution_order(book.notebook_names(root), deps) == ["tour", "p1", "p2", "ov"]
    before = book.fingerprint(root, "ov", "smoke", {})
    assert book.fingerprint(root, "p1", "smoke", {}) == book.fingerprint(root, "p1", "smoke", {})
    claims = root / "book" / "nb" / "p2_files" / "claims.json"
    claims.parent.mkdir(parents=True)
    claims.write_text("[]")
    assert book.fingerprint(root, "ov", "smoke", {}) != before          # p2 recorded claims: the overview reruns


def test_the_runner_tells_an_overview_where_the_pages_are(repo_root):
    # the notebook's own default is its folder (JupyterLab, nbval); the runner executes the pages into book/nb
    assert book.declared_parameters(repo_root / "notebooks" / "overview_adq.ipynb")["pages_dir"] == "."
    for profile in book.PROFILES:
        assert book.load_params(repo_root, profile, "overview_adq")["pages_dir"] == "../book/nb"
    assert "pages_dir" not in book.load_params(repo_root, "smoke", "adq_main")


def test_a_page_names_itself_once_and_open_checks_first():
    namespace = dict(rules.page_parameters("tour"))
    pg = pages.open("tour", namespace)
    assert isinstance(pg, pages.Page) and pg.name == "tour" and pg.clock.name == "tour"
    assert pg.downloads().page == "tour"
    with pytest.raises(pages.ParameterError, match=r"^page 'tour': epochs=0 is out of range"):
        pages.open("tour", {**namespace, "epochs": 0})
