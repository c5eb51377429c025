"""Neighbour-based detection (E9): the SNNL score against a reference set, deep k-NN, z-scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.digits import tiny_digits, tiny_model

from snnl import optimal_temperature, soft_nearest_neighbor_loss
from snnl.attacks import fgsm
from snnl.errors import ConfigError
from snnl.evaluate.detection import ZScoreCombiner, build_reference, knn_scores, score_images, snnl_scores
from snnl.evaluate.metrics import detection_metrics
from snnl.layers import layer_outputs, resolve_layers


def _loop_score(q: np.ndarray, label: int, ref: np.ndarray, ref_labels: np.ndarray, t: float) -> float:
    """-log( sum_{same label} exp(-d/T) / sum_all exp(-d/T) ), float64, one query, explicit sums."""
    d = ((ref.astype(np.float64) - q.astype(np.float64)) ** 2).sum(axis=1)
    w = np.exp(-(d - d.min()) / t)  # shifting d changes neither ratio
    return float(-np.log(w[ref_labels == label].sum() / w.sum()))


@pytest.fixture(scope="module")
def setup():
    model = tiny_model()
    (xtr, ytr), (xt, yt) = tiny_digits()
    layers = resolve_layers(model)
    idx = np.arange(0, 1400, 3)  # 467 reference points
    ref = build_reference(model, xtr, ytr, layers, indices=idx, batch_size=200)
    return model, ref, (xtr, ytr), (xt, yt), layers, idx


def test_snnl_scores_equal_a_float64_loop_and_the_library_on_query_plus_reference():
    torch.manual_seed(0)
    ref = torch.randn(60, 5) * 3 + 100.0  # a large shared offset
    ref_labels = torch.arange(60) % 4
    q = torch.randn(9, 5) * 3 + 100.0
    pred = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3])
    t = 7.5
    dist = ((q[:, None, :].double() - ref[None].double()) ** 2).sum(-1).float()
    got = snnl_scores(dist, pred, ref_labels, t)
    for i in range(9):
        assert float(got[i]) == pytest.approx(_loop_score(q[i].numpy(), int(pred[i]), ref.numpy(), ref_labels.numpy(), t), rel=1e-4)
        # the SNNL term of anchor x in the batch {x} + reference, straight from the library
        lib = soft_nearest_neighbor_loss(torch.cat([q[i : i + 1], ref]).double(), torch.cat([pred[i : i + 1], ref_labels]),
                                         t, reduction="none")[0]
        assert float(got[i]) == pytest.approx(float(lib), rel=1e-4)


def test_snnl_score_is_inf_for_a_label_absent_from_the_reference():
    dist = torch.rand(2, 6)
    got = snnl_scores(dist, torch.tensor([5, 0]), torch.tensor([0, 0, 1, 1, 2, 2]), 1.0)
    assert torch.isinf(got[0]) and torch.isfinite(got[1])


def test_knn_scores_against_sklearn():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(80, 6))
    ref_labels = rng.integers(0, 3, 80)
    q = rng.normal(size=(15, 6))
    pred = rng.integers(0, 3, 15)
    dist = torch.from_numpy(((q[:, None] - ref[None]) ** 2).sum(-1))
    got = knn_scores(dist, torch.from_numpy(pred), torch.from_numpy(ref_labels), 7).numpy()
    nn_idx = NearestNeighbors(n_neighbors=7).fit(ref).kneighbors(q, return_distance=False)
    expected = (ref_labels[nn_idx] != pred[:, None]).mean(axis=1)
    assert np.allclose(got, expected)


def test_reference_distances_and_temperatures(setup):
    model, ref, (xtr, ytr), _, layers, idx = setup
    feats = layer_outputs(model, xtr[idx], layers)
    for name in layers:
        f = feats[name].double()
        d = ref.distances(name, feats[name][:20]).double()
        exact = ((f[:20, None] - f[None]) ** 2).sum(-1)
        assert torch.allclose(d, exact, rtol=1e-4, atol=1e-3)
        opt = optimal_temperature(feats[name], ytr[idx])
        assert ref.temperatures[name].temperature == pytest.approx(opt.temperature, rel=1e-9)
    assert ref.size == len(idx)


def test_score_images_uses_the_predicted_label_not_the_true_one(setup):
    """Adversarial examples are misclassified; their scores must equal the explicit loop with
    the *predicted* label and be far from the loop with the true label."""
    model, ref, (xtr, ytr), (xt, yt), layers, idx = setup
    x = xt[:150].float() / 255.0
    adv = fgsm(model, x, yt[:150], 0.25)
    s = score_images(model, adv, ref, k=10, batch_size=64)
    with torch.no_grad():
        pred = model(adv).argmax(1).numpy()
    assert np.array_equal(s.pred, pred)
    wrong = np.flatnonzero(pred != yt[:150].numpy())
    assert len(wrong) > 30
    ref_feats = layer_outputs(model, xtr[idx], layers)
    q_feats = layer_outputs(model, adv, layers)
    ref_y = ytr[idx].numpy()
    for name in layers:
        t = ref.temperatures[name].temperature
        rf, qf = ref_feats[name].numpy(), q_feats[name].numpy()
        with_pred = np.array([_loop_score(qf[i], pred[i], rf, ref_y, t) for i in wrong])
        with_true = np.array([_loop_score(qf[i], int(yt[i]), rf, ref_y, t) for i in wrong])
        assert np.allclose(s.snnl[name][wrong], with_pred, rtol=1e-3, atol=1e-4)
        assert np.abs(s.snnl[name][wrong] - with_true).mean() > 0.5
        # deep k-NN with the predicted label too
        d = ((qf[wrong][:, None].astype(np.float64) - rf[None]) ** 2).sum(-1)
        nn_idx = np.argsort(d, axis=1, kind="stable")[:, :10]
        assert np.allclose(s.knn[name][wrong], (ref_y[nn_idx] != pred[wrong][:, None]).mean(1))


def test_scores_do_not_depend_on_labels_passed_anywhere(setup):
    """score_images reads images only; relabelling the data cannot change a score."""
    model, ref, _, (xt, yt), layers, _ = setup
    a = score_images(model, xt[:100], ref, k=10)
    b = score_images(model, xt[:100].clone(), ref, k=10)
    for name in layers:
        assert np.array_equal(a.snnl[name], b.snnl[name])
    assert "labels" not in score_images.__code__.co_varnames[: score_images.__code__.co_argcount]


def test_uniform_noise_scores_above_test_data(setup):
    model, ref, _, (xt, yt), layers, _ = setup
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (300, 1, 8, 8), generator=g, dtype=torch.uint8)
    clean = score_images(model, xt, ref, k=10)
    out = score_images(model, noise, ref, k=10)
    for name in layers:
        m = detection_metrics(clean.snnl[name], out.snnl[name])
        assert m["auroc"] > 0.8, (name, m)
    val = score_images(model, xt[:150], ref, k=10)
    comb = ZScoreCombiner().fit(val.snnl)
    assert detection_metrics(comb(clean.snnl), comb(out.snnl))["auroc"] > 0.8


def test_zscore_combiner():
    fit = {"a": np.array([1.0, 3.0]), "b": np.array([10.0, 20.0, np.inf])}
    comb = ZScoreCombiner().fit(fit)
    assert comb.stats["a"] == (2.0, 1.0) and comb.stats["b"] == (15.0, 5.0)
    got = comb({"a": np.array([2.0, 4.0]), "b": np.array([25.0, 15.0])})
    assert np.allclose(got, [(0 + 2) / 2, (2 + 0) / 2])
    with pytest.raises(RuntimeError):
        ZScoreCombiner()({"a": np.zeros(2)})


def test_resolve_layers(setup):
    model = setup[0]
    assert resolve_layers(model) == ["fc1", "fc2"]
    assert resolve_layers(model, ["fc2"]) == ["fc2"]
    with pytest.raises(ConfigError, match="fc9"):
        resolve_layers(model, ["fc9"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_scores_and_attacks_on_cuda_match_cpu(setup):
    import copy

    from snnl.attacks import attack_batches, make_attack

    model, ref, (xtr, ytr), (xt, yt), layers, idx = setup
    gpu_model = copy.deepcopy(model).cuda()
    gpu_ref = build_reference(gpu_model, xtr, ytr, layers, indices=idx, device="cuda")
    a = score_images(model, xt[:120], ref, k=10)
    b = score_images(gpu_model, xt[:120], gpu_ref, k=10, device="cuda")
    assert np.array_equal(a.pred, b.pred)
    for name in layers:
        assert gpu_ref.temperatures[name].temperature == pytest.approx(ref.temperatures[name].temperature, rel=1e-3)
        assert np.allclose(a.snnl[name], b.snnl[name], rtol=1e-3, atol=1e-3)
    attack = make_attack("pgd", steps=3, generator=torch.Generator().manual_seed(0))
    adv = attack_batches(attack, gpu_model, xt[:64], yt[:64], 0.1, device="cuda")
    assert adv.device.type == "cpu" and (adv - xt[:64].float() / 255).abs().max() <= 0.1 + 1e-6
