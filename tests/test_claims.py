"""The verdicts on claims C1-C7 (docs/RESULTS.md, "Decision rules"): every outcome of every
rule on constructed inputs, the aggregation over cells and datasets, and the written rules."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers.tables import make_metrics, make_summary, t_interval

from snnl.tables import claims as C
from snnl.tables.inputs import Evaluation, Inputs
from snnl.tables.stats import (
    FAILED,
    INCONCLUSIVE,
    MET,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    UNDECIDED,
    Estimate,
    aggregate,
    margin_rule,
    mean_ci,
    sign_rule,
)

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------
# primitives


def test_sign_rule_outcomes():
    assert sign_rule(mean_ci([0.01, 0.02, 0.015]), ">") == REPRODUCED
    assert sign_rule(mean_ci([-0.01, -0.02, -0.015]), ">") == NOT_REPRODUCED
    assert sign_rule(mean_ci([-0.01, 0.02, 0.015]), ">") == INCONCLUSIVE
    assert sign_rule(mean_ci([0.5]), ">") == INCONCLUSIVE  # n < 2: no interval
    assert sign_rule(mean_ci([0.0, 0.0]), ">") == INCONCLUSIVE  # [0, 0] touches 0
    assert sign_rule(mean_ci([-0.01, -0.02, -0.015]), "<") == REPRODUCED
    assert sign_rule(mean_ci([0.01, 0.02, 0.015]), "<") == NOT_REPRODUCED
    # the boundary: an interval whose lower end is exactly 0 is not "above 0"
    assert sign_rule(Estimate(3, 1.0, 0.0, 2.0), ">") == INCONCLUSIVE
    with pytest.raises(ValueError):
        sign_rule(mean_ci([1, 2]), ">=")


def test_margin_rule_outcomes():
    assert margin_rule(mean_ci([0.2, 0.25, 0.3]), 0.05) == MET
    assert margin_rule(mean_ci([0.0, 0.01, 0.02]), 0.05) == FAILED
    assert margin_rule(mean_ci([0.0, 0.1, 0.2]), 0.05) == UNDECIDED
    # a single value is its own interval
    assert margin_rule(mean_ci([0.06]), 0.05) == MET
    assert margin_rule(mean_ci([0.04]), 0.05) == FAILED
    assert margin_rule(mean_ci([0.05]), 0.05) == MET  # ">= delta"
    assert margin_rule(mean_ci([]), 0.05) == UNDECIDED


@pytest.mark.parametrize("cells, expected", [
    ([REPRODUCED, REPRODUCED], REPRODUCED),
    ([REPRODUCED, INCONCLUSIVE], INCONCLUSIVE),
    ([REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE], NOT_REPRODUCED),
    ([INCONCLUSIVE, NOT_RUN], INCONCLUSIVE),
    ([REPRODUCED, NOT_RUN], REPRODUCED),
    ([NOT_RUN, NOT_RUN], NOT_RUN),
    ([], NOT_RUN),
])
def test_aggregation(cells, expected):
    assert aggregate(cells) == expected


def test_rule_parameters_are_the_written_ones():
    """docs/RESULTS.md fixes the parameters; the code uses exactly those."""
    assert (C.CONFIDENCE, C.C1_MARGIN, C.C2_MARGIN, C.C1_MIN_STEPS) == (0.95, 0.05, 0.05, 3)
    text = (ROOT / "docs" / "RESULTS.md").read_text()
    rules = text.split("## Decision rules", 1)[1]
    assert "confidence level 0.95" in rules and "δ₁ = 0.05 nats" in rules and "δ₂ = 0.05 nats" in rules
    assert "fewer than 3 probe steps" in rules and "q = ceil(N / 4)" in rules
    for claim in C.CLAIMS:
        assert re.search(rf"^### {claim}:", rules, re.MULTILINE), claim


# ---------------------------------------------------------------------------------------
# builders


def probe_frame(curves: dict[tuple[str, str, int], dict[str, list[float]]]) -> pd.DataFrame:
    """(dataset, regime, seed) -> layer -> SNNL at steps 0, 1, 2, ..."""
    rows = []
    for (dataset, regime, seed), layers in curves.items():
        for index, (layer, values) in enumerate(layers.items()):
            for step, v in enumerate(values):
                rows.append({"dataset": dataset, "regime": regime, "seed": seed, "step": step * 10, "layer": layer,
                             "layer_index": index, "snnl": v})
    return pd.DataFrame(rows)


def cell(result, dataset, scope, claim=None):
    found = [c for c in result.cells if c.dataset == dataset and c.scope == scope and (claim is None or c.claim == claim)]
    assert len(found) == 1, (dataset, scope, [(c.dataset, c.scope) for c in result.cells])
    return found[0]


FALL_RISE = [2.0, 1.2, 0.6, 0.8, 1.0]
KEEPS_FALLING = [2.0, 1.2, 0.6, 0.4, 0.3]


def c1_inputs(hidden: list[list[float]], last: list[list[float]], dataset="d") -> Inputs:
    curves = {}
    for seed, (h, lst) in enumerate(zip(hidden, last)):
        curves[(dataset, "baseline", seed)] = {"conv1": h, "logits": lst}
        curves[(dataset, "entangled", seed)] = {"conv1": KEEPS_FALLING, "logits": FALL_RISE}  # never read
    return Inputs(dynamics=probe_frame(curves))


def shifted(values, by):
    return [v + by for v in values]


# ---------------------------------------------------------------------------------------
# C1


def test_c1_reproduced_when_hidden_layers_fall_then_rise_and_the_last_keeps_falling():
    r = C.claim_c1(c1_inputs([shifted(FALL_RISE, 0.01 * s) for s in range(3)],
                             [shifted(KEEPS_FALLING, 0.02 * s) for s in range(3)]))
    assert r.verdict == REPRODUCED and r.datasets == {"d": REPRODUCED}
    hidden = cell(r, "d", "conv1")
    fall, rise = hidden.quantities
    assert fall.estimate.mean == pytest.approx(1.4) and rise.estimate.mean == pytest.approx(0.4)
    assert (fall.condition, rise.condition) == (MET, MET)
    last = cell(r, "d", "logits")
    assert last.quantities[1].estimate.mean == pytest.approx(0.0) and last.quantities[1].condition == FAILED


def test_c1_not_reproduced_when_a_hidden_layer_keeps_falling_or_the_last_rises():
    r = C.claim_c1(c1_inputs([KEEPS_FALLING] * 3, [KEEPS_FALLING] * 3))
    assert cell(r, "d", "conv1").verdict == NOT_REPRODUCED and cell(r, "d", "logits").verdict == REPRODUCED
    assert r.verdict == NOT_REPRODUCED
    r = C.claim_c1(c1_inputs([FALL_RISE] * 3, [FALL_RISE] * 3))
    assert cell(r, "d", "logits").verdict == NOT_REPRODUCED and r.verdict == NOT_REPRODUCED
    # a layer that never falls (its minimum at step 0) fails "fall >= delta"
    rising = [0.5, 0.6, 0.7, 0.8, 0.9]
    r = C.claim_c1(c1_inputs([rising] * 3, [KEEPS_FALLING] * 3))
    assert cell(r, "d", "conv1").quantities[0].condition == FAILED and r.verdict == NOT_REPRODUCED


def test_c1_inconclusive_when_the_rise_straddles_the_margin():
    # rises 0.0, 0.1, 0.2 over three seeds: the interval [-0.15, 0.35] holds 0.05
    hidden = [[2.0, 1.0, 0.6, 0.6 + r, 0.6 + r] for r in (0.0, 0.1, 0.2)]
    r = C.claim_c1(c1_inputs(hidden, [KEEPS_FALLING] * 3))
    c = cell(r, "d", "conv1")
    assert c.quantities[1].condition == UNDECIDED and c.verdict == INCONCLUSIVE
    _, lo, hi = t_interval([0.0, 0.1, 0.2])
    assert (c.quantities[1].estimate.lo, c.quantities[1].estimate.hi) == pytest.approx((lo, hi))
    assert r.verdict == INCONCLUSIVE
    # too few probe steps
    r = C.claim_c1(c1_inputs([[2.0, 1.0]] * 2, [[2.0, 1.0]] * 2))
    assert {c.verdict for c in r.cells} == {INCONCLUSIVE} and "fewer than 3" in r.cells[0].note


def test_c1_single_seed_uses_the_point_and_not_run_without_baseline_curves():
    r = C.claim_c1(c1_inputs([FALL_RISE], [KEEPS_FALLING]))
    assert r.verdict == REPRODUCED and cell(r, "d", "conv1").quantities[0].estimate.n == 1
    only_entangled = probe_frame({("d", "entangled", 0): {"conv1": FALL_RISE, "logits": KEEPS_FALLING}})
    r = C.claim_c1(Inputs(dynamics=only_entangled))
    assert r.verdict == NOT_RUN and "baseline" in r.note
    r = C.claim_c1(Inputs())
    assert r.verdict == NOT_RUN and r.cells == []


def test_c1_falls_back_to_the_probe_records_of_the_metrics():
    inp = Inputs()
    for seed in range(2):
        key = ("d", "baseline", seed)
        inp.metrics[key] = make_metrics(*key, acc=0.9, curves={"conv1": FALL_RISE, "conv2": FALL_RISE,
                                                               "conv3": FALL_RISE, "logits": KEEPS_FALLING})
    r = C.claim_c1(inp)
    assert [c.scope for c in r.cells] == ["conv1", "conv2", "conv3", "logits"] and r.verdict == REPRODUCED
    # given probe logs take precedence
    inp.dynamics = probe_frame({("d", "baseline", s): {"conv1": KEEPS_FALLING, "logits": KEEPS_FALLING}
                                for s in range(2)})
    assert C.claim_c1(inp).verdict == NOT_REPRODUCED


# ---------------------------------------------------------------------------------------
# C2


def gan_frame(runs: dict[str, list[list[float]]]) -> pd.DataFrame:
    rows = []
    for dataset, curves in runs.items():
        for i, pixels in enumerate(curves):
            for step, v in enumerate(pixels):
                rows.append({"dataset": dataset, "run": f"{dataset}#{i}", "source": "x", "step": step * 100,
                             "layer": "pixels", "layer_index": 0, "snnl": v})
                rows.append({"dataset": dataset, "run": f"{dataset}#{i}", "source": "x", "step": step * 100,
                             "layer": "fc1", "layer_index": 1, "snnl": 0.01})
    return pd.DataFrame(rows)


def test_c2_outcomes():
    rising = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65]
    r = C.claim_c2(Inputs(gan=gan_frame({"mnist": [rising]})))
    # N = 8, q = 2: (0.6 + 0.65) / 2 - (0.05 + 0.1) / 2
    assert r.cells[0].quantities[0].estimate.mean == pytest.approx(0.55)
    assert r.verdict == REPRODUCED and r.supplementary and "fc1" in r.supplementary[0]
    flat = [0.3, 0.31, 0.29, 0.3, 0.32, 0.3, 0.31, 0.32]
    assert C.claim_c2(Inputs(gan=gan_frame({"mnist": [flat]}))).verdict == NOT_REPRODUCED
    # two runs, rises 0.02 and 0.12: the interval holds 0.05
    a = [0.1] * 4 + [0.12] * 4
    b = [0.1] * 4 + [0.22] * 4
    r = C.claim_c2(Inputs(gan=gan_frame({"mnist": [a, b]})))
    assert r.cells[0].quantities[0].estimate.n == 2 and r.verdict == INCONCLUSIVE
    assert C.claim_c2(Inputs()).verdict == NOT_RUN
    # one dataset reproduced, one not: not reproduced overall
    r = C.claim_c2(Inputs(gan=gan_frame({"mnist": [rising], "cifar10": [flat]})))
    assert r.datasets == {"mnist": REPRODUCED, "cifar10": NOT_REPRODUCED} and r.verdict == NOT_REPRODUCED
    assert C.quarter_rise(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0])) == pytest.approx(4.5 - 1.5)  # q = 2


# ---------------------------------------------------------------------------------------
# C3-C7: paired differences


def runs_inputs(per_run, datasets=("d",), seeds=(0, 1, 2), regimes=("baseline", "entangled")) -> Inputs:
    """``per_run(dataset, regime, seed)`` -> (metrics kwargs, summary kwargs)."""
    inp = Inputs()
    for dataset in datasets:
        for regime in regimes:
            for seed in seeds:
                mk, sk = per_run(dataset, regime, seed)
                key = (dataset, regime, seed)
                if mk is not None:
                    inp.metrics[key] = make_metrics(*key, **mk)
                if sk is not None:
                    inp.evaluations[key] = Evaluation(Path("."), make_summary(*key, **sk))
    return inp


def acc_runs(gain: dict[str, list[float]]):
    def per_run(dataset, regime, seed):
        acc = 0.9 + 0.01 * seed + (gain[dataset][seed] if regime == "entangled" else 0.0)
        return {"acc": acc}, None
    return per_run


def test_c3_outcomes():
    r = C.claim_c3(runs_inputs(acc_runs({"d": [0.01, 0.012, 0.008]})))
    assert r.verdict == REPRODUCED
    est = r.cells[0].quantities[0].estimate
    assert (est.mean, est.lo, est.hi) == pytest.approx(t_interval([0.01, 0.012, 0.008]))
    assert C.claim_c3(runs_inputs(acc_runs({"d": [-0.01, -0.012, -0.008]}))).verdict == NOT_REPRODUCED
    assert C.claim_c3(runs_inputs(acc_runs({"d": [-0.01, 0.012, 0.008]}))).verdict == INCONCLUSIVE
    one = C.claim_c3(runs_inputs(acc_runs({"d": [0.01]}), seeds=(0,)))
    assert one.verdict == INCONCLUSIVE and "no interval" in one.cells[0].note
    only = C.claim_c3(runs_inputs(acc_runs({"d": [0, 0, 0]}), regimes=("baseline",)))
    assert only.verdict == NOT_RUN and only.cells[0].note == "only baseline runs"
    assert C.claim_c3(Inputs()).verdict == NOT_RUN
    two = C.claim_c3(runs_inputs(acc_runs({"a": [0.01, 0.012, 0.008], "b": [-0.01, 0.012, 0.008]}),
                                 datasets=("a", "b")))
    assert two.datasets == {"a": REPRODUCED, "b": INCONCLUSIVE} and two.verdict == INCONCLUSIVE


def test_c3_uses_the_evaluation_when_a_run_has_no_metrics():
    def per_run(dataset, regime, seed):
        acc = 0.9 + (0.02 + 0.001 * seed if regime == "entangled" else 0.0)
        return None, {"acc": acc}
    r = C.claim_c3(runs_inputs(per_run))
    assert r.verdict == REPRODUCED and r.cells[0].quantities[0].estimate.mean == pytest.approx(0.021)


def c4_runs(delta: dict[str, list[float]], with_snnl_optimal=True):
    def per_run(dataset, regime, seed):
        final = {layer: 0.5 + 0.01 * seed + (delta[layer][seed] if regime == "entangled" else 0.0)
                 for layer in ("conv1", "conv2", "conv3")}
        final["logits"] = 0.1
        mk = {"acc": 0.9, "final": final}
        return mk, None
    return per_run


def test_c4_outcomes():
    up = [0.3, 0.35, 0.32]
    r = C.claim_c4(runs_inputs(c4_runs({"conv1": up, "conv2": up, "conv3": up})))
    assert [c.scope for c in r.cells] == ["conv1", "conv2", "conv3"]  # the regularised layers, not the logits
    assert r.verdict == REPRODUCED
    down = [-0.3, -0.35, -0.32]
    mixed = [-0.3, 0.35, 0.32]
    r = C.claim_c4(runs_inputs(c4_runs({"conv1": up, "conv2": down, "conv3": mixed})))
    assert [c.verdict for c in r.cells] == [REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE]
    assert r.verdict == NOT_REPRODUCED
    r = C.claim_c4(runs_inputs(c4_runs({"conv1": up, "conv2": up, "conv3": mixed})))
    assert r.verdict == INCONCLUSIVE
    assert C.claim_c4(Inputs()).verdict == NOT_RUN


def test_c4_reads_the_last_probe_step_without_snnl_optimal():
    curves = {}
    for seed in range(3):
        curves[("d", "baseline", seed)] = {"conv1": [2.0, 1.0, 0.5 + 0.01 * seed], "logits": [2.0, 1.0, 0.2]}
        curves[("d", "entangled", seed)] = {"conv1": [2.0, 1.5, 1.9 + 0.02 * seed], "logits": [2.0, 1.0, 0.2]}
    r = C.claim_c4(Inputs(dynamics=probe_frame(curves)))
    assert [c.scope for c in r.cells] == ["conv1"]  # every probe layer but the last
    assert r.cells[0].quantities[0].estimate.mean == pytest.approx(1.41) and r.verdict == REPRODUCED


def summary_runs(**by_regime):
    """Summary kwargs per regime: value or function of the seed."""
    def per_run(dataset, regime, seed):
        kw = {k: (v(seed) if callable(v) else v) for k, v in by_regime[regime].items()}
        return None, kw
    return per_run


def test_c5_outcomes():
    lower = summary_runs(baseline={"outliers": lambda s: {"letters": 0.8 + 0.01 * s, "noise": 0.5}},
                         entangled={"outliers": lambda s: {"letters": 0.7 + 0.012 * s, "noise": 0.4 + 0.01 * s}})
    r = C.claim_c5(runs_inputs(lower))
    assert [c.scope for c in r.cells] == ["letters", "noise"] and r.verdict == REPRODUCED
    assert r.supplementary and "test ECE" in r.supplementary[0]
    higher = summary_runs(baseline={"outliers": lambda s: {"letters": 0.8 + 0.01 * s, "noise": 0.5}},
                          entangled={"outliers": lambda s: {"letters": 0.7 + 0.012 * s, "noise": 0.6 + 0.01 * s}})
    r = C.claim_c5(runs_inputs(higher))
    assert [c.verdict for c in r.cells] == [REPRODUCED, NOT_REPRODUCED] and r.verdict == NOT_REPRODUCED
    noisy = summary_runs(baseline={"outliers": lambda s: {"noise": 0.5}},
                         entangled={"outliers": lambda s: {"noise": 0.5 + (0.05, -0.05, 0.01)[s]}})
    assert C.claim_c5(runs_inputs(noisy)).verdict == INCONCLUSIVE
    none = summary_runs(baseline={"outliers": {}}, entangled={"outliers": {}})
    assert C.claim_c5(runs_inputs(none)).verdict == NOT_RUN


def det(snnl, msp):
    return lambda s: {"ood:noise": {"snnl_conv1": 0.5, "snnl_combined": snnl(s), "msp": msp(s)},
                      "adv:fgsm:0.3": {"snnl_combined": snnl(s), "msp": msp(s)}}


def test_c6_outcomes():
    # entangled: SNNL beats max-softmax, and beats the baseline's SNNL, on every target
    good = summary_runs(baseline={"auroc": det(lambda s: 0.8 + 0.01 * s, lambda s: 0.85)},
                        entangled={"auroc": det(lambda s: 0.9 + 0.012 * s, lambda s: 0.85 + 0.001 * s)})
    r = C.claim_c6(runs_inputs(good))
    assert {(c.claim, c.scope) for c in r.cells} == {("C6a", "ood:noise"), ("C6b", "ood:noise"),
                                                    ("C6a", "adv:fgsm:0.3"), ("C6b", "adv:fgsm:0.3")}
    assert r.verdict == REPRODUCED
    a = cell(r, "d", "ood:noise", "C6a").quantities[0].estimate
    assert (a.mean, a.lo, a.hi) == pytest.approx(t_interval([0.9 - 0.85, 0.912 - 0.851, 0.924 - 0.852]))
    # detectable but not better than the baseline model: C6b fails
    same = summary_runs(baseline={"auroc": det(lambda s: 0.95 + 0.01 * s, lambda s: 0.85)},
                        entangled={"auroc": det(lambda s: 0.9 + 0.012 * s, lambda s: 0.85)})
    r = C.claim_c6(runs_inputs(same))
    assert cell(r, "d", "ood:noise", "C6a").verdict == REPRODUCED
    assert cell(r, "d", "ood:noise", "C6b").verdict == NOT_REPRODUCED and r.verdict == NOT_REPRODUCED
    # undefined AUROCs (no successful attack) drop out: one pair left -> inconclusive
    sparse = summary_runs(baseline={"auroc": det(lambda s: 0.8 if s == 0 else None, lambda s: 0.85)},
                          entangled={"auroc": det(lambda s: 0.9 if s == 0 else None, lambda s: 0.85)})
    r = C.claim_c6(runs_inputs(sparse))
    assert {c.verdict for c in r.cells} == {INCONCLUSIVE} and r.verdict == INCONCLUSIVE
    only_base = summary_runs(baseline={"auroc": det(lambda s: 0.8, lambda s: 0.85)})
    r = C.claim_c6(runs_inputs(only_base, regimes=("baseline",)))
    assert r.verdict == NOT_RUN


def test_c7_outcomes():
    up = summary_runs(baseline={"grad_snnl": lambda s: 0.5 + 0.01 * s}, entangled={"grad_snnl": lambda s: 1.5 + 0.02 * s})
    r = C.claim_c7(runs_inputs(up))
    assert r.verdict == REPRODUCED and r.cells[0].quantities[0].estimate.mean == pytest.approx(1.01)
    down = summary_runs(baseline={"grad_snnl": lambda s: 1.5 + 0.01 * s}, entangled={"grad_snnl": lambda s: 0.5})
    assert C.claim_c7(runs_inputs(down)).verdict == NOT_REPRODUCED
    noisy = summary_runs(baseline={"grad_snnl": lambda s: 1.0}, entangled={"grad_snnl": lambda s: (0.5, 1.5, 1.1)[s]})
    assert C.claim_c7(runs_inputs(noisy)).verdict == INCONCLUSIVE
    off = summary_runs(baseline={"grad_snnl": None}, entangled={"grad_snnl": None})
    r = C.claim_c7(runs_inputs(off))
    assert r.verdict == NOT_RUN and "gradient" in r.note


def test_claims_outputs_list_every_claim_and_cell():
    inp = runs_inputs(acc_runs({"d": [0.01, 0.012, 0.008]}))
    results = C.evaluate_claims(inp)
    assert [r.claim for r in results] == list(C.CLAIMS)
    frame = C.claims_frame(results)
    claim_rows = frame[frame["level"] == "claim"]
    assert list(claim_rows["claim"]) == list(C.CLAIMS)
    assert dict(zip(claim_rows["claim"], claim_rows["verdict"]))["C3"] == REPRODUCED
    assert (claim_rows["rule"].str.len() > 50).all()
    c3 = frame[(frame["claim"] == "C3") & (frame["level"] == "cell")].iloc[0]
    assert c3["n"] == 3 and c3["estimate"] == pytest.approx(0.01) and c3["ci_lo"] > 0
    md = C.claims_markdown(results)
    head = md.split("\n## C1:", 1)[0]
    overview = [line for line in head.splitlines() if re.match(r"^\| C\d \|", line)]
    assert [line.split("|")[1].strip() for line in overview] == list(C.CLAIMS)
    assert "**reproduced**" in overview[2] and "d: +0.0100 [" in overview[2]
    assert "**not run**" in overview[1]  # no GAN
    assert all(math.isfinite(v) for v in (c3["ci_lo"], c3["ci_hi"]))
