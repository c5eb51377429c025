"""E1/E2: 2-D points moved by gradient descent on the SNNL and the triplet loss."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from snnl import soft_nearest_neighbor_loss
from snnl.cli import main
from snnl.experiments import synthetic as S
from snnl.experiments.common import kmeans_purity, purity
from snnl.experiments.config import SyntheticConfig

SMALL = SyntheticConfig(classes=4, points_per_class=40, steps=200, seed=0)


def test_points_are_seeded_and_labelled():
    x1, y1 = S.make_points(SMALL)
    x2, _ = S.make_points(SMALL)
    assert x1.shape == (160, 2) and torch.equal(x1, x2)
    assert torch.equal(torch.bincount(y1), torch.full((4,), 40))
    x3, _ = S.make_points(SyntheticConfig(classes=4, points_per_class=40, seed=1))
    assert not torch.equal(x1, x3)


def _loop_triplet(x, y, margin):
    """Explicit loop over every (anchor, positive, negative) triplet (float64 oracle)."""
    x = x.double()
    total, count = 0.0, 0
    for a, p, n in itertools.product(range(len(y)), repeat=3):
        if a != p and y[a] == y[p] and y[a] != y[n]:
            total += max(0.0, float((x[a] - x[p]).norm() - (x[a] - x[n]).norm()) + margin)
            count += 1
    return total / count


def test_triplet_loss_exact_matches_a_loop_and_sampling_is_unbiased():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(11, 2, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 0])  # unequal classes
    exact = float(S.triplet_loss(x, y, margin=0.7))
    assert exact == pytest.approx(_loop_triplet(x, y, 0.7), rel=1e-9)
    assert S.n_triplets(y) == sum(1 for a, p, n in itertools.product(range(11), repeat=3)
                                  if a != p and y[a] == y[p] and y[a] != y[n])
    # fewer triplets allowed than exist: a random estimate, uniform over triplets, so
    # many draws average to the exact value even with unequal classes
    assert S.n_triplets(y) > 100
    est = float(S.triplet_loss(x, y, margin=0.7, max_triplets=400_000, generator=g))
    assert est == pytest.approx(exact, rel=0.01)
    assert float(S.triplet_loss(x, y, margin=0.7, max_triplets=100, generator=g)) != exact


def test_sampled_triplets_are_valid():
    y = torch.tensor([2, 0, 0, 1, 1, 1, 2, 0])
    a, p, n = S.sample_triplets(y, 5000, torch.Generator().manual_seed(0))
    assert bool((y[a] == y[p]).all() and (a != p).all() and (y[a] != y[n]).all())
    assert len(set(zip(a.tolist(), p.tolist(), n.tolist()))) == S.n_triplets(y)  # all reachable


def test_e1_minimising_lowers_the_snnl_and_separates_classes():
    df = S.run_minimise(SyntheticConfig(classes=3, points_per_class=30, steps=60, snapshot_steps=[0, 20], seed=0))
    per_step = df.groupby("step").first()
    assert list(per_step.index) == [0, 20, 60]
    assert set(df.columns) >= {"step", "point", "label", "x", "y", "snnl", "temperature"}
    first, last = per_step.loc[0], per_step.loc[60]
    assert last["snnl"] < 0.1 * first["snnl"]
    # independent check, at the fixed T, recomputed from the stored coordinates
    pts = df[df["step"] == 60]
    again = soft_nearest_neighbor_loss(torch.tensor(pts[["x", "y"]].values), torch.tensor(pts["label"].values), first["temperature"])
    assert float(again) == pytest.approx(last["snnl"], rel=1e-4, abs=1e-7)
    assert kmeans_purity(pts[["x", "y"]].values, pts["label"].values, 3) > 0.95


@pytest.fixture(scope="module")
def compare() -> pd.DataFrame:
    torch.set_num_threads(1)
    return S.run_compare(SMALL)


def _row(df, objective, direction):
    return df[(df["objective"] == objective) & (df["direction"] == direction)].iloc[0]


def test_e2_maximising_the_snnl_raises_it_and_mixes_classes(compare):
    init, smax, smin = _row(compare, "initial", "initial"), _row(compare, "snnl", "maximise"), _row(compare, "snnl", "minimise")
    assert smax["snnl"] > 10 * init["snnl"] and smin["snnl"] < 0.1 * init["snnl"]
    chance = 1 / SMALL.classes
    # k-means (one cluster per class) on the maximised points: close to chance purity
    assert smax["kmeans_purity"] < chance + 0.25
    assert smin["kmeans_purity"] > 0.95
    # recomputed from the stored points, not trusting the stored measures
    pts = compare[(compare["objective"] == "snnl") & (compare["direction"] == "maximise")]
    assert kmeans_purity(pts[["x", "y"]].values, pts["label"].values, SMALL.classes, seed=1) < chance + 0.25


def test_e2_small_clusters_mix_classes_for_the_snnl_but_not_for_the_triplet_loss(compare):
    smax, tmax = _row(compare, "snnl", "maximise"), _row(compare, "triplet", "maximise")
    assert smax["fine_kmeans_purity"] < 0.5
    assert tmax["fine_kmeans_purity"] > smax["fine_kmeans_purity"] + 0.2
    assert _row(compare, "triplet", "minimise")["triplet"] < 0.1 * _row(compare, "initial", "initial")["triplet"]
    assert tmax["triplet"] > _row(compare, "initial", "initial")["triplet"]


def test_e2_every_panel_is_in_the_csv(compare):
    pairs = set(map(tuple, compare[["objective", "direction"]].drop_duplicates().values))
    assert pairs == {("initial", "initial"), ("snnl", "minimise"), ("snnl", "maximise"),
                     ("triplet", "minimise"), ("triplet", "maximise")}
    assert (compare.groupby(["objective", "direction"]).size() == 160).all()


def test_purity():
    assert purity(np.array([0, 0, 1, 1]), np.array([3, 3, 4, 4])) == 1.0
    assert purity(np.array([0, 0, 0, 0]), np.array([1, 2, 1, 2])) == 0.5


@pytest.mark.parametrize("mode", ["minimise", "compare"])
def test_cli_writes_csv_and_png(tmp_path, mode):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("experiments:\n  synthetic: {classes: 3, points_per_class: 12, steps: 15, snapshot_steps: [0, 5]}\n")
    csv, png = tmp_path / "out" / "e.csv", tmp_path / "out" / "e.png"
    assert main(["synthetic", "--mode", mode, "--config", str(cfg), "--csv", str(csv), "--figure", str(png), "--quiet"]) == 0
    df = pd.read_csv(csv)
    assert len(df) == (3 * 36 if mode == "minimise" else 5 * 36)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in csv.parent.iterdir()) == ["e.csv", "e.png"]


def test_cli_reports_a_bad_config(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("experiments:\n  synthetic: {stepz: 3}\n")
    assert main(["synthetic", "--mode", "minimise", "--config", str(cfg), "--csv", str(tmp_path / "a.csv"),
                 "--figure", str(tmp_path / "a.png")]) == 2
    assert "experiments.synthetic.stepz" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()


def test_fixed_scale_and_per_step_optimal_temperature_options():
    cfg = SyntheticConfig(classes=3, points_per_class=10, steps=5, fix_scale=True, temperature="optimal", seed=2)
    x, y = S.make_points(cfg)
    traj = S.optimise(x, y, "snnl", "maximise", cfg, [0, 5])
    r0, r5 = (np.sqrt(((p - p.mean(0)) ** 2).sum(1).mean()) for p in (traj.snapshots[0], traj.snapshots[5]))
    assert r5 == pytest.approx(r0, rel=1e-5)
    assert abs(traj.snapshots[5].mean(0)).max() < 1e-5
    assert not np.allclose(traj.snapshots[0], traj.snapshots[5])
    with pytest.raises(ValueError, match="objective"):
        S.optimise(x, y, "contrastive", "minimise", cfg)
