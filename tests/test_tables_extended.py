"""`snnl tables` for the extended protocol (docs/RESULTS.md, "The extended protocol (issue 16)"):
one comparison per regime, the minimum detectable effect, C1 on the long runs, C2 over several
GAN runs, C3's machine-sensitive flag, and the bonus table and figure. Every expected number is
computed here by hand (explicit loops, printed t-table values, the noncentral t)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.tables import make_metrics, make_summary, t_interval
from scipy import stats as st

from snnl.cli import main
from snnl.tables import claims as C
from snnl.tables import fmt, load_inputs, write_tables
from snnl.tables.inputs import Evaluation, Inputs
from snnl.tables.markdown import accuracy_markdown
from snnl.tables.stats import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, mde, paired
from snnl.tables.tables import accuracy_table

REGIMES4 = ("baseline", "entangled", "official", "official_our_scale")
# accuracy per regime and seed 0, 1, 2: entangled gains ~+0.01 on every seed, official loses ~0.02,
# official_our_scale straddles 0
ACC = {"baseline": [0.90, 0.92, 0.91], "entangled": [0.911, 0.931, 0.918],
       "official": [0.88, 0.899, 0.892], "official_our_scale": [0.91, 0.915, 0.905]}


def by_hand_mde(diffs, t975, t80):
    """MDE from printed t-table quantiles and an explicit loop for the standard deviation."""
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    return (t975 + t80) * sd / math.sqrt(n)


def power_at(effect, sd, n, level=0.95):
    """Power of the two-sided one-sample t test at a true mean ``effect`` (noncentral t)."""
    df = n - 1
    tc = st.t.ppf(0.5 + level / 2, df)
    ncp = effect / (sd / math.sqrt(n))
    return 1 - st.nct.cdf(tc, df, ncp) + st.nct.cdf(-tc, df, ncp)


# ---------------------------------------------------------------------------------------
# the minimum detectable effect


def test_mde_against_a_t_table_by_hand():
    diffs = [0.01, 0.03, -0.005, 0.02, 0.012]
    # Student-t table, 4 degrees of freedom: t(0.975) = 2.7764, t(0.80) = 0.9410
    assert mde(diffs) == pytest.approx(by_hand_mde(diffs, 2.7764, 0.9410), rel=2e-4)
    # 2 degrees of freedom: t(0.975) = 4.3027, t(0.80) = 1.0607
    assert mde([0.1, 0.3, 0.2]) == pytest.approx(by_hand_mde([0.1, 0.3, 0.2], 4.3027, 1.0607), rel=2e-4)
    assert math.isnan(mde([0.1])) and math.isnan(mde([])) and mde([0.2, 0.2]) == 0.0
    assert mde([0.1, None, float("nan"), 0.3]) == pytest.approx(mde([0.1, 0.3]))


@pytest.mark.parametrize("n, tolerance", [(3, 0.05), (5, 0.015), (10, 0.003), (30, 0.002)])
def test_the_mde_is_detected_with_80_percent_power(n, tolerance):
    """The noncentral t: at a true effect equal to the MDE the two-sided 95% t test rejects
    about 4 times in 5 (the formula is the normal approximation with t quantiles: a little
    under 0.80 for few pairs, 0.77 at n = 3)."""
    diffs = np.random.default_rng(n).normal(0.01, 0.02, n)
    m = mde(diffs)
    assert power_at(m, np.std(diffs, ddof=1), n) == pytest.approx(0.80, abs=tolerance)
    assert power_at(m, np.std(diffs, ddof=1), n) <= 0.80 + 1e-3  # never over-claims power


def test_paired_differences_carry_their_mde():
    est, seeds = paired({0: 0.93, 1: 0.95, 2: 0.91}, {0: 0.92, 1: 0.93, 2: 0.915})
    assert seeds == [0, 1, 2] and est.mde == pytest.approx(by_hand_mde([0.01, 0.02, -0.005], 4.3027, 1.0607), rel=2e-4)
    assert fmt.cell(est, 3, True, show_n=True, show_mde=True).endswith(f"(n=3, MDE {fmt.num(est.mde, 3)})")


# ---------------------------------------------------------------------------------------
# one comparison per regime


def four_regimes(acc=ACC, regimes=REGIMES4) -> Inputs:
    inp = Inputs()
    for regime in regimes:
        for seed, a in enumerate(acc[regime]):
            key = ("mnist5k", regime, seed)
            inp.metrics[key] = make_metrics(*key, acc=a)
            inp.evaluations[key] = Evaluation(Path("."), make_summary(*key, acc=a))
    return inp


def diffs(a, b):
    return [x - y for x, y in zip(ACC[a], ACC[b])]


def test_accuracy_table_has_every_regime_and_every_comparison():
    df = accuracy_table(four_regimes())
    assert list(df["regime"]) == [*REGIMES4, "entangled - baseline", "official - baseline",
                                  "official_our_scale - baseline", "official_our_scale - official"]
    for regime, ref in [("official", "baseline"), ("official_our_scale", "official")]:
        row = df[df["regime"] == f"{regime} - {ref}"].iloc[0]
        d = diffs(regime, ref)
        m, lo, hi = t_interval(d)
        assert (row["n"], row["mean"], row["ci_lo"], row["ci_hi"]) == pytest.approx((3, m, lo, hi))
        assert row["mde"] == pytest.approx(by_hand_mde(d, 4.3027, 1.0607), rel=2e-4)
    assert df[df["regime"] == "official"]["mde"].isna().all()  # a plain mean has no MDE
    md = accuracy_markdown(df)
    rows = [line for line in md.splitlines() if line.startswith("| mnist5k | official - baseline |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    m, lo, hi = t_interval(diffs("official", "baseline"))
    assert cells[2] == f"{fmt.num(m, 3, True)} [{fmt.num(lo, 3, True)}, {fmt.num(hi, 3, True)}]"
    assert cells[3] == fmt.num(by_hand_mde(diffs("official", "baseline"), 4.3027, 1.0607), 3) and cells[4] == "3"
    head = [line for line in md.splitlines() if line.startswith("| dataset | baseline")][0]
    assert "| official | official_our_scale |" in head


def test_c3_to_c7_are_decided_once_per_comparison_never_pooled():
    results = C.evaluate_claims(four_regimes())
    names = [r.claim for r in results]
    assert names == ["C1", "C2"] + [f"C{k}{s}" for k in range(3, 8)
                                    for s in ("", " · official", " · official_our_scale")]
    by = {r.claim: r for r in results}
    # entangled gains on every seed, official loses on every seed, official_our_scale straddles 0
    assert (by["C3"].verdict, by["C3 · official"].verdict, by["C3 · official_our_scale"].verdict) == (
        REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
    est = by["C3 · official"].cells[0].quantities[0].estimate
    m, lo, hi = t_interval(diffs("official", "baseline"))
    assert (est.mean, est.lo, est.hi) == pytest.approx((m, lo, hi))
    assert by["C3 · official"].cells[0].claim == "C3 · official"
    assert "official - baseline" in by["C3 · official"].cells[0].quantities[0].name
    assert "official - baseline" in by["C3 · official"].rule and "entangled" not in by["C3 · official"].rule
    c6 = by["C6 · official"]
    assert {c.claim for c in c6.cells} == {"C6a · official", "C6b · official"}
    md = C.claims_markdown(results)
    assert "| C3 · official | " in md and "## C3 · official_our_scale:" in md and "MDE (80% power)" in md


def test_without_entangled_runs_its_rows_stay_and_say_not_run():
    inp = four_regimes(regimes=("baseline", "official"))
    by = {r.claim: r for r in C.evaluate_claims(inp)}
    assert by["C3"].verdict == NOT_RUN and "only baseline runs" in by["C3"].note
    assert by["C3 · official"].verdict == NOT_REPRODUCED
    assert "C3 · official_our_scale" not in by


def test_machine_sensitive_flag_and_summary(tmp_path):
    # entangled - baseline: 0.004, 0.012, 0.008 -> lower end -0.0019, within 0.0066 of 0
    # official - baseline: 0.05, 0.052, 0.048 -> both ends near +0.05: not sensitive
    acc = {"baseline": [0.90, 0.91, 0.92], "entangled": [0.904, 0.922, 0.928], "official": [0.95, 0.962, 0.968]}
    for regime, expected in (("entangled", True), ("official", False)):
        m, lo, hi = t_interval(np.subtract(acc[regime], acc["baseline"]))
        assert (min(abs(lo), abs(hi)) <= 0.0066) == expected
    summary = write_tables(four_regimes(acc, ("baseline", "entangled", "official")), tmp_path)
    assert summary["claims"]["C3"]["machine_sensitive"] == {"mnist5k": True}
    assert summary["claims"]["C3 · official"]["machine_sensitive"] == {"mnist5k": False}
    est = summary["claims"]["C3 · official"]["estimates"][0]
    d = np.subtract(acc["official"], acc["baseline"])
    assert est["mde"] == pytest.approx(by_hand_mde(d, 4.3027, 1.0607), rel=2e-4)
    assert summary["accuracy"]["mnist5k"]["official - baseline"]["mde"] == pytest.approx(est["mde"])
    assert summary["accuracy"]["mnist5k"]["difference"]["n"] == 3  # entangled - baseline keeps its key
    assert summary["comparisons"] == ["entangled - baseline", "official - baseline"]
    claims_md = (tmp_path / "claims.md").read_text()
    assert "machine-sensitive" in claims_md
    overview = [line for line in claims_md.splitlines() if line.startswith("| C3 |")][0]
    m = by_hand_mde(np.subtract(acc["entangled"], acc["baseline"]), 4.3027, 1.0607)
    assert f"(n=3, MDE {fmt.num(m, 3)})" in overview


# ---------------------------------------------------------------------------------------
# C1 (long), C2 over several GAN runs


def write_probe_log(path: Path, run: tuple[str, str, int], curves: dict[str, list[float]], steps=None) -> Path:
    """A probe log in the format `snnl train --probe-log` writes since 2026-12-01."""
    steps = steps or list(range(len(next(iter(curves.values())))))
    rows = [{"dataset": run[0], "regime": run[1], "seed": run[2], "step": s, "epoch": s / 10, "layer": layer,
             "snnl": v[i], "temperature": 1.0, "at_boundary": 0, "train_temperature": "", "pinned_fraction": "",
             "grad_ratio": ""} for i, s in enumerate(steps) for layer, v in curves.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_c1_long_is_its_own_row_from_the_long_runs(tmp_path):
    # one long run: conv1 falls by 1.4 then rises by 0.4; the logits keep falling (point rule, n = 1)
    log = write_probe_log(tmp_path / "anywhere.csv", ("mnist5k", "baseline", 0),
                          {"conv1": [2.0, 1.2, 0.6, 0.8, 1.0], "logits": [2.0, 1.2, 0.6, 0.4, 0.3]})
    inp = load_inputs(dynamics_long=[log])
    by = {r.claim: r for r in C.evaluate_claims(inp)}
    assert by["C1 (long)"].verdict == REPRODUCED and by["C1"].verdict == NOT_RUN
    conv1 = [c for c in by["C1 (long)"].cells if c.scope == "conv1"][0]
    assert conv1.claim == "C1 (long)"
    assert [q.estimate.mean for q in conv1.quantities] == pytest.approx([1.4, 0.4])
    assert [q.estimate.n for q in conv1.quantities] == [1, 1]
    # without long runs there is no such row
    assert "C1 (long)" not in [r.claim for r in C.evaluate_claims(Inputs())]
    out = tmp_path / "tables"
    assert main(["tables", "--dynamics-long", str(log), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["claims"]["C1 (long)"]["verdict"] == REPRODUCED
    assert "`C1 (long)`" in (out / "claims.md").read_text()


def quarter_rise_by_hand(values):
    q = math.ceil(len(values) / 4)
    return sum(values[-q:]) / q - sum(values[:q]) / q


def write_gan(path: Path, dataset: str, seed: int, pixels: list[float]) -> Path:
    rows = []
    for i, v in enumerate(pixels):
        rows += [{"dataset": dataset, "seed": seed, "step": 100 * i, "layer": "pixels", "layer_index": 0, "snnl": v,
                  "temperature": 1.0, "at_boundary": 0, "d_real": 0.5, "d_fake": 0.5, "d_loss": 1.0, "g_loss": 1.0},
                 {"dataset": dataset, "seed": seed, "step": 100 * i, "layer": "fc1", "layer_index": 1, "snnl": 0.01,
                  "temperature": 1.0, "at_boundary": 0, "d_real": 0.5, "d_fake": 0.5, "d_loss": 1.0, "g_loss": 1.0}]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("tops, expected", [((0.3, 0.32, 0.35), REPRODUCED), ((0.12, 0.22, 0.17), INCONCLUSIVE),
                                            ((0.1, 0.11, 0.12), NOT_REPRODUCED)])
def test_c2_margin_rule_over_the_gan_runs_of_a_dataset(tmp_path, tops, expected):
    curves = [[0.1, 0.1, 0.1 + (t - 0.1) / 2, t, t, t, t, t] for t in tops]
    paths = [write_gan(tmp_path / f"run{s}.csv", "mnist", s, c) for s, c in enumerate(curves)]
    r = C.claim_c2(load_inputs(gan=paths))
    rises = [quarter_rise_by_hand(c) for c in curves]
    m, lo, hi = t_interval(rises)
    assert (lo >= 0.05, hi < 0.05) == {REPRODUCED: (True, False), NOT_REPRODUCED: (False, True),
                                        INCONCLUSIVE: (False, False)}[expected]
    est = r.cells[0].quantities[0].estimate
    assert (est.n, est.mean, est.lo, est.hi) == pytest.approx((3, m, lo, hi))
    assert r.verdict == expected and r.cells[0].note == "3 run(s)"


# ---------------------------------------------------------------------------------------
# what each bonus does

PINNED = {0: [0.0, 0.1, 0.5], 1: [0.02, 0.2, 0.6], 2: [0.01, 0.15, 0.7]}  # seed -> at steps 0, 10, 100
RATIO = {0: [1.0, 0.5, 0.1], 1: [2.0, 0.6, 0.2], 2: [1.5, 0.55, 0.15]}
STEPS = [0, 10, 100]


def bonus_metrics(regime: str, seed: int) -> dict:
    curves = {"conv1": [2.0, 1.5, 1.2], "logits": [2.0, 1.0, 0.5]}
    m = make_metrics("mnist5k", regime, seed, 0.9, curves=curves, steps=STEPS)
    for rec in m["probe"]:
        rec.update(dataset="mnist5k", regime=regime, seed=seed, train_temperature=None, pinned_fraction=None,
                   grad_ratio=None)
        if regime != "baseline" and rec["layer"] == "conv1":
            i = STEPS.index(rec["step"])
            rec.update(train_temperature=100.0, pinned_fraction=PINNED[seed][i], grad_ratio=RATIO[seed][i])
    return m


def test_bonus_table_first_and_last_probe_step_by_hand(tmp_path):
    inp = Inputs(metrics={("mnist5k", r, s): bonus_metrics(r, s) for r in ("baseline", "official") for s in (0, 1, 2)})
    write_tables(inp, tmp_path)
    df = pd.read_csv(tmp_path / "bonus.csv")
    assert set(df["regime"]) == {"official"} and set(df["layer"]) == {"conv1"}  # no baseline, no logits
    for quantity, values in (("pinned_fraction", PINNED), ("grad_ratio", RATIO)):
        for at, i in (("first", 0), ("last", 2)):
            row = df[(df["quantity"] == quantity) & (df["at"] == at)].iloc[0]
            m, lo, hi = t_interval([values[s][i] for s in (0, 1, 2)])
            assert (row["n"], row["mean"], row["ci_lo"], row["ci_hi"]) == pytest.approx((3, m, lo, hi))
            assert str(row["steps"]) == str(STEPS[i])
    md = (tmp_path / "bonus.md").read_text()
    m, lo, hi = t_interval([0.5, 0.6, 0.7])
    assert f"{fmt.num(m, 3)} [{fmt.num(lo, 3)}, {fmt.num(hi, 3)}] (step 100)" in md
    # runs without the bonus records: an empty table that says so
    write_tables(Inputs(metrics={("d", "baseline", 0): make_metrics("d", "baseline", 0, 0.9)}), tmp_path / "none")
    assert "No bonus measurements" in (tmp_path / "none" / "bonus.md").read_text()


def test_bonus_figure_command(tmp_path):
    paths = []
    for regime in ("baseline", "entangled", "official"):
        for seed in (0, 1, 2):
            p = tmp_path / "m" / f"{regime}{seed}.json"
            p.parent.mkdir(exist_ok=True)
            p.write_text(json.dumps(bonus_metrics(regime, seed)))
            paths.append(str(p))
    csv = tmp_path / "bonus.csv"
    assert main(["bonus-figure", "--metrics", *paths, "--figure", str(tmp_path / "bonus.png"), "--csv", str(csv)]) == 0
    assert (tmp_path / "bonus.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = pd.read_csv(csv)
    assert set(data["regime"]) == {"entangled", "official"} and set(data["layer"]) == {"conv1"}
    mean = data[(data["regime"] == "official") & (data["quantity"] == "pinned_fraction")].groupby("step")["value"].mean()
    assert list(mean) == pytest.approx([np.mean([PINNED[s][i] for s in PINNED]) for i in range(3)])
    from snnl.experiments.dynamics import plot_bonus
    from snnl.figures import REGIME_COLORS

    fig = plot_bonus(data)  # the CSV is bonus_long's frame
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 1]
    assert ax.get_xscale() == "symlog" and ax.get_title() == "mnist5k · conv1" and len(lines) == 2
    assert [ln.get_color() for ln in lines] == [REGIME_COLORS["entangled"], REGIME_COLORS["official"]]
    assert fig.axes[1].get_yscale() == "log"  # the gradient ratio spans decades
    import matplotlib.pyplot as plt

    plt.close(fig)
    baseline_only = [p for p in paths if "baseline" in p]
    assert main(["bonus-figure", "--metrics", *baseline_only, "--figure", str(tmp_path / "x.png")]) == 2
