"""dscore.ledger: claims recorded by pages, adjusted once per chapter, published for the pages and the landing page."""
from dataclasses import dataclass

import matplotlib
import pytest

from dscore import ledger
from dscore.book import page as pages

matplotlib.use("Agg")


@dataclass
class PaperClaim:
    id: str
    text: str
    source: str


PAPER = [PaperClaim("c1", "A beats B", "Tab. 1"), PaperClaim("c2", "A beats C", "Tab. 2"),
         PaperClaim("c3", "needs ImageNet", "Fig. 5")]


SESOI = (1.0, "one point")


def strong(cid, pid="c1"):
    return ledger.claim(cid, pid, "A − B", "Tab. 1: +2", [2.1, 1.9, 2.0, 2.2, 2.05, 1.95],
                        [0.0, 0.1, -0.1, 0.0, 0.05, -0.05], unit="points", claimed=2.0)


def weak(cid, pid="c2"):
    # p ≈ 0.03 alone: below 0.05, but not after the family's adjustment
    return ledger.claim(cid, pid, "A − C", "Tab. 2", [1.0, 0.2, 0.9, 0.1, 0.6, 0.2], [0.0] * 6, unit="points",
                        sesoi=SESOI)


def test_ids_must_name_the_page():
    with pytest.raises(ValueError, match="<page>.<key>"):
        strong("nodot")
    with pytest.raises(ValueError, match="must start with 'p1.'"):
        ledger.record("p1", [strong("p2.x")])


def test_record_and_load_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv(pages.PAGE_FILES_ENV, str(tmp_path / "p1_files"))
    shown = ledger.record("p1", [strong("p1.a"), weak("p1.b")])
    table = shown.frame
    assert "| p1.a |" in shown._repr_markdown_()
    assert list(table["claim id"]) == ["p1.a", "p1.b"] and "verdict" not in table    # evidence, no words
    assert table.loc[0, "n units"] == 6
    back = ledger.load_pages(["p1"], tmp_path)
    assert [r.id for r in back] == ["p1.a", "p1.b"] and back[0].judgement.ci == pytest.approx(strong("p1.a").judgement.ci)
    with pytest.raises(ValueError, match="twice"):
        ledger.record("p1", [strong("p1.a"), strong("p1.a")])
    with pytest.raises(ValueError, match="execute those pages first"):
        ledger.load_pages(["p1", "p9"], tmp_path)


def test_chapter_verdicts_adjust_once_and_explain_the_rest():
    noise = ledger.claim("p3.n", "c1", "A − D", "Tab. 1", [1.0, -1.0, 0.5, -0.4, 0.3, -0.2], [0] * 6, unit="points",
                         sesoi=SESOI)
    raw = [strong("p1.a"), weak("p2.b"), noise]
    assert raw[1].word == "reproduced" and 0.01 < raw[1].judgement.p < 0.05
    out = ledger.chapter_verdicts(raw, PAPER, {"c3": "needs ImageNet-1K"})
    assert [r.id for r in out] == ["p1.a", "p3.n", "p2.b", "overview.c3"]          # the paper's claim order
    b = next(r for r in out if r.id == "p2.b")
    assert b.judgement.p_adj > 0.05 and b.word in ("underpowered", "inconclusive")
    assert b.judgement.ci[0] < 0 < b.judgement.ci[1] and b.judgement.ci_raw[0] > 0     # wider interval, same word
    assert b.judgement.p == raw[1].judgement.p and "Holm–Shaffer" in b.judgement.reason
    assert f"[{b.judgement.ci[0]:.3g}, {b.judgement.ci[1]:.3g}]" in b.judgement.reason
    assert out[-1].word == "untestable here" and out[-1].judgement.reason == "needs ImageNet-1K"
    assert "99" in ledger.family_level(out) or "Holm–Shaffer" in ledger.family_level(out)
    with pytest.raises(ValueError, match="neither judged"):
        ledger.chapter_verdicts(raw, PAPER, {})
    with pytest.raises(ValueError, match="unknown paper claim"):
        ledger.chapter_verdicts([strong("p1.a", pid="zz")], PAPER, {"c2": "x", "c3": "y"})


def test_a_missing_cell_drops_its_unit_from_both_arms_and_says_so():
    a = {0: 1.0, 1: float("nan"), 2: 1.2, 3: 0.9, 4: 1.1, 5: 1.0, 6: 1.05}
    b = {0: 0.0, 1: 0.1, 2: 0.0, 3: 0.1, 4: 0.0, 5: 0.05, 6: float("nan")}
    r = ledger.claim("p.x", None, "A − B", "x", a, b, unit="points", sesoi=SESOI)
    assert r.judgement.n == 5 and "units [1, 6] dropped from both arms" in r.note


def test_units_that_share_seeds_are_descriptive_and_outside_the_family():
    d = ledger.claim("p1.d", "c2", "cells", "x", [1.0, 1.2, 0.9, 1.1, 1.0, 1.05], [0.0] * 6, unit="points",
                     sesoi=SESOI, design=ledger.Design(descriptive="the cells share seeds"))
    assert d.word == "descriptive" and d.judgement.p is None
    out = ledger.chapter_verdicts([strong("p1.a"), d], PAPER, {"c3": "x"})
    assert next(r for r in out if r.id == "p1.d").word == "descriptive"
    assert next(r for r in out if r.id == "p1.a").judgement.p_adj == pytest.approx(strong("p1.a").judgement.p)


def test_a_failed_gate_makes_the_row_untestable_with_the_gates_numbers():
    flat = ledger.gate("IDC final − initial", [72.7, 73.0, 72.1], [72.6, 72.8, 72.0], unit="points", sesoi=1.0,
                       remedy="more image steps")
    assert not flat.passed and "+0.13" in flat.text and "exact sign-flip" in flat.text
    r = ledger.claim("p1.g", "c1", "A − IDC", "x", [1, 2, 3, 4, 5, 6], [0] * 6, unit="points", sesoi=SESOI,
                     design=ledger.Design(gates=[flat]))
    assert r.word == "untestable here" and "gate failed" in r.judgement.reason and "more image steps" in r.judgement.reason
    assert "with 3 units no test can pass this gate (smallest p 0.25): at least 6 are needed" in r.judgement.reason
    moved = ledger.gate("IDC final − initial", [81.0, 80.2, 81.5, 80.9, 81.3, 80.7], [76.2, 76.0, 76.5, 76.1, 76.4, 76.3],
                        unit="points", sesoi=1.0)
    assert moved.passed
    holey = ledger.gate("g", {0: 1.0, 1: float("nan")}, {0: 0.0, 1: 0.0}, unit="points", sesoi=1.0)
    assert not holey.passed and "units [1] dropped from both arms" in holey.text
    r = ledger.claim("p1.g", "c1", "A − IDC", "x", [1, 2, 3, 4, 5, 6], [0] * 6, unit="points", sesoi=SESOI,
                     design=ledger.Design(gates=[moved]))
    assert r.word != "untestable here" and "gate passed" in r.note


def test_equivalence_needs_a_stated_margin():
    r = ledger.equivalence("p.e", "c1", "A − B", "lossless", [0.1, -0.1, 0.0], [0, 0, 0], unit="points", margin=1.0)
    assert r.word == "untestable here" and "margin" in r.judgement.reason
    r = ledger.equivalence("p.e", "c1", "A − B", "lossless", [0.1, -0.1, 0.0, 0.05, 0.02, -0.03], [0] * 6,
                           unit="points", margin=(1.0, "our reading"))
    assert r.word == "equivalent" and "our reading" in r.note


def test_markdown_publish_and_forest_plot(tmp_path, monkeypatch):
    monkeypatch.setenv(pages.PAGE_FILES_ENV, str(tmp_path / "ov_files"))
    piped = ledger.claim("p1.c", "c1", "A | B", "x", [1, 2, 3], [0, 0, 0], unit="s", sesoi=(0.1, "x"))
    out = ledger.chapter_verdicts([strong("p1.a"), weak("p2.b"), piped], PAPER, {"c3": "needs ImageNet-1K"})
    md = ledger.verdict_markdown(out, link_prefix="")
    assert "A \\| B" in md and "[p1.a](p1.ipynb)" in md and "**untestable here**" in md
    folder = ledger.publish("ov", out, pages=("p1", "p2", "p3"))
    assert sorted(p.name for p in folder.iterdir()) == ["at_a_glance.md", "p1_box.md", "p1_verdicts.md", "p2_box.md",
                                                        "p2_verdicts.md", "p3_box.md"]
    assert "judged on this page" in (folder / "p3_box.md").read_text()          # a page that judged nothing
    assert "**" in (folder / "p1_box.md").read_text() and "A \\| B" in (folder / "p1_box.md").read_text()
    glance = (folder / "at_a_glance.md").read_text()
    assert "[overview.c3](nb/ov.ipynb)" in glance and "[p1.a](nb/p1.ipynb)" in glance
    assert "Holm–Shaffer" in (folder / "p1_verdicts.md").read_text()
    fig = ledger.forest_plot(out)
    assert len(fig.axes) == 2                                     # one panel per unit: points, s


def test_a_claim_left_out_by_this_builds_parameters_is_untestable_with_its_page():
    out = ledger.chapter_verdicts([strong("p1.a")], PAPER, {"c3": "needs ImageNet-1K"}, {"c2": "p2"})
    c2 = next(r for r in out if r.paper_id == "c2")
    assert c2.word == "untestable here" and c2.judgement.reason.startswith("p2 judges it when its parameters run it")


def test_numbers_read_as_decimals_with_three_significant_digits_when_small():
    from dscore.ledger import _num

    assert _num(0.65333) == "+0.65" and _num(-2.666) == "-2.67"
    assert _num(0.00417) == "+0.00417" and _num(-0.000123) == "-0.000123" and _num(-5.17e-05) == "-0.0000517"
    assert _num(0.009) == "+0.00900" and _num(1e-9) == "+0.00000000100"
    assert _num(1.5e6) == "+1.50e+06" and _num(None) == "–" and _num(float("nan")) == "–"


def test_verdict_box_lists_each_claim_with_its_word_effect_and_the_papers_size():
    from dscore.ledger import claim, verdict_box

    rows = [claim("page.a", None, "ADQ − DQ", "Tab. 1", {0: 3.1, 1: 2.9, 2: 3.0, 3: 3.05, 4: 2.95, 5: 3.0},
                  {0: 0.0, 1: 0.1, 2: -0.1, 3: 0.0, 4: 0.05, 5: -0.05}, unit="points", claimed=2.6)]
    box = verdict_box(rows)
    assert box.startswith(":::{admonition} Verdicts of this page") and box.rstrip().endswith(":::")
    assert f"- **{rows[0].word}** — ADQ − DQ: +3.00" in box and "paper: +2.60 points" in box
    assert "No claim of the paper is judged on this page." in verdict_box([])
    gated = ledger.untestable_claim("page.b", None, "A − IDC", "x", "gate failed — IDC moved +0.1; more steps")
    assert "- **untestable here** — A − IDC: gate failed — IDC moved +0.1" in verdict_box([gated])


def test_the_scale_line_and_the_family_level_name_what_the_words_hold_for(tmp_path, monkeypatch):
    monkeypatch.setenv(pages.PAGE_FILES_ENV, str(tmp_path / "p1_files"))
    ledger.record("p1", [strong("p1.a")], scale={"data": "Fashion-MNIST, 240 per class", "device": "cpu"})
    scale = ledger.load_scale("p1", tmp_path)
    line = ledger.scale_line(scale, "default", "p1")
    assert "`default` profile's scale only" in line and "Fashion-MNIST, 240 per class" in line and "cpu" not in line
    assert ledger.load_scale("p9", tmp_path) is None and "recorded no description" in ledger.scale_line(None, "x", "p9")
    out = ledger.chapter_verdicts([strong("p1.a"), weak("p2.b")], PAPER, {"c3": "x"})
    level = ledger.family_level(out)
    assert "over 2 testable claims (4 hypotheses" in level and "%" in level
    few = ledger.claim("p1.f", "c1", "A − B", "x", [1.0, 2.0, 3.0], [0.0] * 3, unit="points", sesoi=SESOI)
    assert "No claim of this chapter can be decided" in ledger.family_level(
        ledger.chapter_verdicts([few], PAPER, {"c2": "x", "c3": "y"}))


def test_a_relative_smallest_effect_of_interest_names_its_source():
    value, source = ledger.relative_sesoi({0: 2.0, 1: -4.0, 2: float("nan")}, 0.1, "IDC's mean distance")
    assert value == pytest.approx(0.3) and source.startswith("10% of IDC's mean distance (0.3)")
    with pytest.raises(ValueError, match="needs where it comes from"):
        ledger.claim("p.s", None, "A − B", "x", [1.0] * 6, [0.0] * 6, unit="s", sesoi=0.1)


def test_the_forest_plot_draws_the_interval_each_word_was_decided_on():
    out = ledger.chapter_verdicts([strong("p1.a"), weak("p2.b")], PAPER, {"c3": "x"})
    fig = ledger.forest_plot(out)
    thick = sorted(tuple(line.get_xdata()) for line in fig.axes[0].lines if line.get_linewidth() == 2.4)
    want = sorted(tuple(r.judgement.ci) for r in out if r.judgement.ci is not None)
    assert thick == [pytest.approx(w) for w in want]
    b = next(r for r in out if r.id == "p2.b").judgement
    assert b.ci != pytest.approx(b.ci_raw)                  # adjusted and unadjusted differ: the thick one is adjusted
