"""The `official` regime (docs/RESULTS.md, "The extended protocol"): the cleverhans v3.1 numerics
against a float64 loop written from the formula, the inverse-t temperature step against a finite
difference, the He-normal initialisation, the regime's place in the config precedence, and a short
run whose metrics and probe log carry the fixed temperature, the bonus measurements and the identity."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from torch import nn

from snnl.errors import ConfigError
from snnl.legacy import legacy_snnl, legacy_snnl_terms
from snnl.models import build_model, he_normal_fan_in_
from snnl.regularizer import EntanglementRegularizer
from helpers.oracles import cleverhans_terms_loop
from snnl.training import train, train_config
from helpers.training_data import digits_data

EPS = 1e-5


def cleverhans_loop(x, y, temperature) -> torch.Tensor:
    return cleverhans_terms_loop(x, y, temperature).mean()


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double()


def tiny_batch():
    g = torch.Generator().manual_seed(1)
    # scaled so that the hidden distances are of the order of T = 100: neither all ~1 nor all underflowing
    x = 12.0 * torch.randn(10, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    return x, y


LAYERS = ["1", "3"]  # the two ReLU outputs


def hidden_outputs(net: nn.Sequential, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    h1 = net[1](net[0](x))
    h2 = net[3](net[2](h1))
    return [h1, h2], net[4](h2)


# ---------------------------------------------------------------------------------------
# the loss and its gradient


def test_official_loss_and_gradient_match_the_cleverhans_formula_in_a_float64_loop():
    net, (x, y) = tiny_net(), tiny_batch()
    hs, _ = hidden_outputs(net, x)
    d = torch.cdist(hs[0].detach(), hs[0].detach()) ** 2
    assert 0.05 < float(d[d > 0].median()) / 100 < 20  # the batch tests the formula, not a constant

    reg = EntanglementRegularizer(net, layers=LAYERS, alpha=10, temperature=100.0, numerics="cleverhans")
    out = reg(net(x), y)
    grads = torch.autograd.grad(out.total, list(net.parameters()))

    hs, logits = hidden_outputs(net, x)  # an independent forward through the same parameters
    loop = [cleverhans_loop(h, y, 100.0) for h in hs]
    expected = nn.functional.cross_entropy(logits, y) - 10 * sum(loop)
    expected_grads = torch.autograd.grad(expected, list(net.parameters()))

    assert float(out.total.detach()) == pytest.approx(float(expected.detach()), rel=1e-10, abs=1e-10)
    for name, v in zip(LAYERS, loop):
        assert float(out.snnl[name].detach()) == pytest.approx(float(v.detach()), rel=1e-10)
        assert float(out.temperature[name]) == 100.0
    assert any(float(g.abs().max()) > 1e-6 for g in expected_grads)  # the SNNL part is not flat here
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-7, atol=1e-10)


def test_official_gradient_matches_a_central_finite_difference():
    net, (x, y) = tiny_net(), tiny_batch()
    reg = EntanglementRegularizer(net, layers=LAYERS, alpha=10, temperature=100.0, numerics="cleverhans")
    w = net[2].weight
    (grad,) = torch.autograd.grad(reg(net(x), y).total, [w])

    def objective() -> float:
        hs, logits = hidden_outputs(net, x)
        return float(nn.functional.cross_entropy(logits, y) - 10 * sum(cleverhans_loop(h, y, 100.0) for h in hs))

    h = 1e-6
    for idx in [(0, 0), (2, 3), (4, 5)]:
        with torch.no_grad():
            w[idx] += h
            up = objective()
            w[idx] -= 2 * h
            down = objective()
            w[idx] += h
        assert float(grad[idx]) == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-7)


def test_legacy_terms_are_the_loop_terms_and_their_mean_is_legacy_snnl():
    x, y = tiny_batch()
    x = torch.relu(x[:, :3] * 3.0)
    for t in (1.0, 100.0, 1e4):
        terms = legacy_snnl_terms(x, y, t)
        torch.testing.assert_close(terms, cleverhans_terms_loop(x, y, t), rtol=1e-10, atol=1e-10)
        assert float(terms.mean()) == float(legacy_snnl(x, y, t))
    # far apart: pinned at the cap -log(eps)
    far = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]], dtype=torch.float64)
    torch.testing.assert_close(legacy_snnl_terms(far, torch.tensor([0, 0, 1]), 1.0),
                               torch.full((3,), -math.log(EPS), dtype=torch.float64))


# ---------------------------------------------------------------------------------------
# the inverse-t temperature


def test_inverse_temperature_step_matches_a_finite_difference_and_the_batch_uses_the_new_t():
    net, (x, y) = tiny_net(), tiny_batch()
    t0 = 100.0
    reg = EntanglementRegularizer(net, layers=LAYERS, alpha=10, temperature="inverse_t", numerics="cleverhans",
                                  initial_temperature=t0, temperature_lr=0.1)
    ts = {n: 1.0 for n in LAYERS}
    for step in range(2):  # two batches: the second step starts from the first one's t
        xb = x + step * 0.5
        out = reg(net(xb), y)
        hs, _ = hidden_outputs(net, xb)
        for name, h in zip(LAYERS, hs):
            h = h.detach()

            def loss_at(t: float) -> float:
                return float(cleverhans_loop(h, y, t0 / t))

            e = 1e-5
            dldt = (loss_at(ts[name] + e) - loss_at(ts[name] - e)) / (2 * e)
            assert abs(dldt) > 1e-4  # a step that moves t
            ts[name] = ts[name] - 0.1 * dldt
            assert float(out.temperature[name]) == pytest.approx(t0 / ts[name], rel=1e-7)
            assert float(out.snnl[name].detach()) == pytest.approx(float(cleverhans_loop(h, y, t0 / ts[name])), rel=1e-9)
        assert reg.current_temperatures() == pytest.approx({n: t0 / ts[n] for n in LAYERS}, rel=1e-7)
        out.total.backward()  # the objective's backward still works after the temperature's own


# ---------------------------------------------------------------------------------------
# the demo's initialisation


def test_he_normal_fan_in_draws_std_one_over_sqrt_fan_in_and_zero_biases():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2000, 500), nn.ReLU(), nn.Conv2d(16, 64, 5), nn.Linear(3, 2, bias=False))
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
            nn.init.constant_(m.bias, 0.3)
    assert he_normal_fan_in_(model) is model
    for layer, fan_in in ((model[0], 2000), (model[2], 16 * 5 * 5)):
        w = layer.weight.detach().double().flatten()
        n, std = w.numel(), 1 / math.sqrt(fan_in)
        # 5 sampling standard errors: sd(sample std) ~ std / sqrt(2n), sd(mean) = std / sqrt(n)
        assert float(w.std()) == pytest.approx(std, rel=5 / math.sqrt(2 * n))
        assert abs(float(w.mean())) < 5 * std / math.sqrt(n)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    # every conv and linear of the demo CNN: zero biases, std 1/sqrt(fan_in)
    cnn = he_normal_fan_in_(build_model("cnn", (1, 28, 28), 10))
    for m in cnn.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            assert torch.count_nonzero(m.bias) == 0
            fan_in = m.weight[0].numel()
            assert float(m.weight.detach().std()) == pytest.approx(1 / math.sqrt(fan_in), rel=0.1)  # default: 0.58x


# ---------------------------------------------------------------------------------------
# the config precedence


def test_regime_settings_sit_between_the_train_section_and_train_regimes():
    doc = {"train": {"alpha": 0.1}}
    cfg = train_config(doc, regime="official")
    assert (cfg.alpha, cfg.numerics, cfg.temperature, cfg.initial_temperature, cfg.init, cfg.normalize) == \
        (10.0, "cleverhans", "fixed", 100.0, "he_normal", False)
    ours = train_config(doc, regime="official_our_scale")
    assert (ours.alpha, ours.numerics, ours.temperature, ours.init, ours.normalize) == \
        (10.0, "cleverhans", "fixed", "default", True)
    ent = train_config(doc, regime="entangled")
    assert (ent.alpha, ent.numerics, ent.temperature, ent.init, ent.normalize) == (0.1, "exact", "online", "default", True)

    doc = {"train": {"alpha": 0.1, "regimes": {"official": {"alpha": 3}}}}
    cfg = train_config(doc, regime="official")
    assert (cfg.alpha, cfg.numerics, cfg.temperature) == (3.0, "cleverhans", "fixed")
    assert train_config(doc, regime="official_our_scale").alpha == 10.0  # only official's own block
    assert train_config(doc, regime="official", params={"alpha": 0.5, "lr": 2e-3}).alpha == 0.5  # tuned wins


def test_unknown_key_under_train_regimes_official_is_a_one_line_error():
    with pytest.raises(ConfigError) as err:
        train_config({"train": {"regimes": {"official": {"alpah": 3}}}}, regime="entangled")
    msg = str(err.value)
    assert "train.regimes.official" in msg and "alpah" in msg and "\n" not in msg


def test_baseline_trains_with_alpha_zero_whatever_the_config_says():
    cfg = train_config({"train": {"alpha": 0.1, "model": "mlp", "batch_size": 64, "max_steps": 2, "threads": 1,
                                  "probe_points": 0, "checkpoint_every": 0}}, regime="baseline")
    assert cfg.alpha == 0.1
    res = train(cfg, digits_data(), regime="baseline", seed=0, progress=False)
    assert res.metrics["alpha"] == 0.0 and res.regularizer.alpha == 0.0


# ---------------------------------------------------------------------------------------
# a short official run


def test_a_short_official_run_has_fixed_temperatures_bonus_records_and_an_identified_probe_log(tmp_path):
    data = digits_data()
    cfg = train_config({"train": {"model": "mlp", "model_args": {"hidden": [32, 32]}, "batch_size": 64, "max_steps": 4,
                                  "threads": 1, "probe_size": 40, "probe_points": 2, "checkpoint_every": 0,
                                  "log_every": 1}}, regime="official")
    met, log, probe_log = tmp_path / "m.json", tmp_path / "log.csv", tmp_path / "probe.csv"
    res = train(cfg, data, regime="official", seed=3, metrics=met, log=log, probe_log=probe_log, progress=False)
    m = json.loads(met.read_text())
    hidden = res.model.hidden_layers
    assert m["alpha"] == 10.0 and m["temperatures"] == {n: 100.0 for n in hidden}
    # the demo's scale: no normalisation
    assert res.model.normalize.mean.tolist() == [0.0] and res.model.normalize.std.tolist() == [1.0]
    # the objective: CE - 10 * sum of the cleverhans SNNL of the hidden layers
    with open(log) as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        expected = float(r["ce"]) - 10 * sum(float(r[f"snnl/{n}"]) for n in hidden)
        assert float(r["total"]) == pytest.approx(expected, rel=1e-5, abs=1e-4)
        assert all(float(r[f"T/{n}"]) == 100.0 for n in hidden)

    steps = sorted({p["step"] for p in m["probe"]})
    assert len(steps) == 2
    for p in m["probe"]:
        if p["layer"] in hidden:
            assert p["train_temperature"] == 100.0
            assert 0.0 <= p["pinned_fraction"] <= 1.0
            assert math.isfinite(p["grad_ratio"]) and p["grad_ratio"] > 0
        else:
            assert p["layer"] == "logits"
            assert p["train_temperature"] is None and p["pinned_fraction"] is None and p["grad_ratio"] is None

    with open(probe_log) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:3] == ["dataset", "regime", "seed"]
    assert {"train_temperature", "pinned_fraction", "grad_ratio"} <= set(rows[0])
    assert len(rows) == len(m["probe"])
    for r, p in zip(rows, m["probe"]):
        assert (r["dataset"], r["regime"], r["seed"]) == ("digits", "official", "3")
        assert (int(r["step"]), r["layer"]) == (p["step"], p["layer"])
        for k in ("train_temperature", "pinned_fraction", "grad_ratio"):
            assert r[k] == ("" if p[k] is None else repr(p[k]))


def test_official_normalises_nothing_and_official_our_scale_does():
    kw = {"model": "mlp", "model_args": {"hidden": [16]}, "batch_size": 64, "max_steps": 1, "threads": 1,
          "probe_points": 0, "checkpoint_every": 0}
    stds = {}
    for regime in ("official", "official_our_scale"):
        res = train(train_config({"train": kw}, regime=regime), digits_data(), regime=regime, seed=0, progress=False)
        stds[regime] = res.model.normalize.std.tolist()
    assert stds["official"] == [1.0] and stds["official_our_scale"] != [1.0]
