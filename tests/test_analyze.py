"""`snnl analyze` and snnl.analysis: per-layer SNNL at the optimal temperature with a bootstrap
interval over batches, the optimal temperature, and same-class-neighbour counts.

Oracles: the library's loss on activations captured here with plain forward hooks (not the
command's capture code), a float64 numpy loop for the neighbour counts, scipy's bootstrap for
the interval, and a PIL pipeline for the torchvision preprocessing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from snnl import soft_nearest_neighbor_loss
from snnl.analysis import (
    analyze,
    bootstrap_interval,
    image_folder_inputs,
    neighbour_column,
    per_class_mean,
    same_class_neighbours,
    torchvision_model,
    torchvision_preprocessing,
)
from snnl.checkpoint import load_model
from snnl.cli import main
from snnl.errors import ConfigError, DataError

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FOLDER_CLASSES = ["cat", "dog", "eel"]


# ---------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Prepared digits and a tiny MLP trained on them for two epochs by snnl's trainer."""
    from snnl.data import load_prepared, prepare
    from snnl.training import TrainConfig, TrainData, train

    root = tmp_path_factory.mktemp("analyze")
    prepare("digits", root / "digits")
    data = TrainData.from_prepared(load_prepared(root / "digits"))
    cfg = TrainConfig(model="mlp", model_args={"hidden": [32, 16]}, epochs=2, batch_size=64, lr=3e-3, device="cpu",
                      probe_points=0, checkpoint_every=0)
    train(cfg, data, regime="baseline", seed=0, out=root / "mlp.pt", log=root / "log.csv", metrics=root / "m.json",
          progress=False)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """An ImageFolder of 3 classes x 8 RGB PNGs (20 x 26 pixels, class-coloured noise) and a
    resnet18 with 3 outputs whose state_dict is saved to a file."""
    import torchvision
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for c, name in enumerate(FOLDER_CLASSES):
        (root / "images" / name).mkdir(parents=True)
        for i in range(8):
            base = np.zeros((20, 26, 3))
            base[..., c] = 180.0
            pixels = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "images" / name / f"{i:02d}.png")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=3)
    torch.save(model.state_dict(), root / "resnet18.pt")
    return root


# ---------------------------------------------------------------------------------------
# oracles


def hooked_outputs(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """Each named module's output for ``x``, flattened, captured with plain forward hooks."""
    modules = dict(model.named_modules())
    out: dict[str, torch.Tensor] = {}
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o.detach().clone()))
               for n in names]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return {n: out[n].reshape(len(x), -1).double() for n in names}


def neighbours_loop(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Brute force: for each point, same-class points among its k nearest others (float64)."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    counts = np.zeros(len(x), np.int64)
    for i in range(len(x)):
        d = np.array([np.sum((x[i] - x[j]) ** 2) if j != i else np.inf for j in range(len(x))])
        nearest = np.argsort(d, kind="stable")[:k]
        counts[i] = sum(int(y[j] == y[i]) for j in nearest)
    return counts


def check_against_loss(result, feats: dict[str, torch.Tensor], batch_size: int) -> None:
    """Every batch's SNNL equals the library's loss at the reported T, that T is a minimum, and
    the table's mean, temperature and neighbour counts follow from the per-point values."""
    y = torch.as_tensor(result.labels)
    for row in result.table.itertuples():
        per_batch = result.batches[row.layer]
        losses = []
        for b, start in enumerate(range(0, len(y), batch_size)):
            f, yb = feats[row.layer][start : start + batch_size], y[start : start + batch_size]
            t = float(per_batch.temperature[b])
            loss = float(soft_nearest_neighbor_loss(f, yb, t))
            assert loss == pytest.approx(per_batch.snnl[b], rel=1e-6, abs=1e-9)
            for factor in (1.25, 0.8):  # a minimum in T (inside the search range): neither neighbour is lower
                assert per_batch.at_boundary[b] or float(soft_nearest_neighbor_loss(f, yb, t * factor)) >= loss - 1e-9
            losses.append(loss)
        assert row.snnl == pytest.approx(np.mean(losses), rel=1e-6)
        assert row.batches == len(losses)
        assert row.temperature == pytest.approx(math.exp(np.mean(np.log(per_batch.temperature))), rel=1e-9)
        counts = neighbours_loop(feats[row.layer].numpy(), result.labels, row.k)
        np.testing.assert_array_equal(result.neighbours[row.layer], counts)
        for c, name in enumerate(result.classes):
            assert result.table.loc[row.Index, neighbour_column(name)] == pytest.approx(counts[result.labels == c].mean())


# ---------------------------------------------------------------------------------------
# the measures


def test_neighbour_counts_match_a_brute_force_loop():
    gen = torch.Generator().manual_seed(3)
    y = torch.randint(0, 4, (70,), generator=gen)
    x = torch.randn(70, 6, generator=gen) + y[:, None].double() * 0.7 + 1e4  # a large shared offset
    for k in (1, 5, 69):
        got = same_class_neighbours(x.float(), y, k, block=16)
        np.testing.assert_array_equal(got, neighbours_loop(x.numpy(), y.numpy(), k))
    counts = neighbours_loop(x.numpy(), y.numpy(), 5)
    means = per_class_mean(counts, y.numpy(), 6)
    for c in range(4):
        assert means[c] == pytest.approx(counts[y.numpy() == c].mean())
    assert np.isnan(means[4:]).all()  # classes absent from the sample
    with pytest.raises(DataError, match="k must be an integer in 1..69"):
        same_class_neighbours(x, y, 70)


def test_bootstrap_interval_agrees_with_scipy_and_is_seeded():
    from scipy.stats import bootstrap

    values = np.random.default_rng(1).gamma(2.0, 0.3, size=12)
    lo, hi = bootstrap_interval(values, n_boot=40_000, seed=5)
    ref = bootstrap((values,), np.mean, method="percentile", n_resamples=40_000, random_state=2).confidence_interval
    spread = ref.high - ref.low
    assert lo == pytest.approx(ref.low, abs=0.03 * spread) and hi == pytest.approx(ref.high, abs=0.03 * spread)
    assert lo < values.mean() < hi
    assert bootstrap_interval(values, n_boot=40_000, seed=5) == (lo, hi)
    assert all(math.isnan(v) for v in bootstrap_interval(values[:1]))  # one batch: no interval
    with pytest.raises(DataError, match="NaN or inf"):
        bootstrap_interval(np.array([0.1, np.nan]))


def test_per_layer_snnl_is_the_library_loss_on_the_activations(digits):
    from snnl.data import load_prepared

    model, _ = load_model(digits / "mlp.pt")
    images, labels = load_prepared(digits / "digits").test
    result = analyze(model, images, labels, ["fc1", "fc2", "logits"], samples=300, batch_size=60, k=7, seed=2)
    assert list(result.table["layer"]) == ["fc1", "fc2", "logits"]
    assert len(result.indices) == 300 and len(set(result.indices.tolist())) == 300
    x = images[torch.from_numpy(result.indices)].float() / 255.0
    check_against_loss(result, hooked_outputs(model, x, ["fc1", "fc2", "logits"]), 60)
    # the sample is class-stratified: every class of the split holds about a tenth of it
    assert np.bincount(result.labels, minlength=10).min() >= 25


def test_an_nn_sequential_layers_come_out_in_forward_order():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 3))
    labels = torch.arange(90) % 3
    images = torch.rand(90, 1, 3, 4) * 0.7
    images[torch.arange(90), 0, labels] += 0.3  # class c: a brighter row c
    result = analyze(model, images, labels, ["3", "1", "2"], samples=90, batch_size=30, k=4)
    assert list(result.table["layer"]) == ["1", "2", "3"]
    x = images[torch.from_numpy(result.indices)]
    check_against_loss(result, hooked_outputs(model, x, ["1", "2", "3"]), 30)
    assert not result.table["boundary_batches"].any()


# ---------------------------------------------------------------------------------------
# the command


def test_cli_on_prepared_digits_writes_the_csv_and_the_figure(digits, tmp_path):
    from snnl.data import load_prepared

    csv, png = tmp_path / "out" / "analysis.csv", tmp_path / "out" / "analysis.png"
    rc = main(["analyze", "--checkpoint", str(digits / "mlp.pt"), "--data", str(digits / "digits"),
               "--batch-size", "64", "--k", "5", "--device", "cpu", "--out-csv", str(csv), "--out-figure", str(png),
               "--quiet"])
    assert rc == 0
    table = pd.read_csv(csv)
    assert list(table["layer"]) == ["fc1", "fc2", "logits"]  # --layers all: hidden layers, then the logits
    assert (table["samples"] == 320).all() and (table["batches"] == 5).all()  # 360 test images -> 5 x 64
    assert set(table["data"]) == {"digits:test"} and table["model"].str.endswith("mlp.pt").all()
    assert [c for c in table.columns if c.startswith("neighbours[")] == [f"neighbours[{d}]" for d in range(10)]
    assert ((table["snnl_ci_low"] <= table["snnl"]) & (table["snnl"] <= table["snnl_ci_high"])).all()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same numbers as the library on the same sample, checked against the loss there
    model, _ = load_model(digits / "mlp.pt")
    images, labels = load_prepared(digits / "digits").test
    result = analyze(model, images, labels, ["fc1", "fc2", "logits"], batch_size=64, k=5)
    np.testing.assert_allclose(table["snnl"], result.table["snnl"], rtol=1e-12)
    x = images[torch.from_numpy(result.indices)].float() / 255.0
    check_against_loss(result, hooked_outputs(model, x, ["fc1", "fc2", "logits"]), 64)


def test_image_folder_preprocessing_is_the_torchvision_contract(folder):
    from PIL import Image

    prep = torchvision_preprocessing("resnet18", crop=32)
    assert (prep.resize, prep.crop, prep.mean, prep.std) == (37, 32, MEAN, STD)  # 256/224 of 32, ImageNet stats
    inputs = image_folder_inputs(folder / "images", prep, samples=100, seed=0)
    assert inputs.classes == FOLDER_CLASSES and inputs.images.shape == (24, 3, 32, 32)
    assert inputs.labels.tolist() == [c for c in range(3) for _ in range(8)]
    # an independent pipeline: PIL resizes the shorter side (20 -> 37, 26 -> 48) and crops the centre
    for i, (c, name) in enumerate([(c, n) for c, n in enumerate(FOLDER_CLASSES) for _ in range(8)]):
        img = Image.open(folder / "images" / name / f"{i % 8:02d}.png").convert("RGB").resize((48, 37), Image.BILINEAR)
        ref = torch.from_numpy(np.array(img)).permute(2, 0, 1)[:, 2:34, 8:40].float()
        assert (inputs.images[i].float() - ref).abs().mean() < 4.0
    x = torch.rand(2, 3, 4, 4)
    expected = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(prep.transform()(x), expected)


def test_cli_torchvision_model_on_an_image_folder(folder, tmp_path):
    csv, png = tmp_path / "tv.csv", tmp_path / "tv.png"
    rc = main(["analyze", "--torchvision", "resnet18", "--weights", str(folder / "resnet18.pt"),
               "--image-folder", str(folder / "images"), "--layers", "fc,layer1", "layer4", "--image-size", "32",
               "--batch-size", "12", "--k", "3", "--device", "cpu", "--out-csv", str(csv), "--out-figure", str(png),
               "--quiet"])
    assert rc == 0
    table = pd.read_csv(csv)
    assert list(table["layer"]) == ["layer1", "layer4", "fc"]  # forward order, whatever order was asked
    assert list(table["features"]) == [64 * 8 * 8, 512, 3]
    assert [c for c in table.columns if c.startswith("neighbours[")] == [f"neighbours[{c}]" for c in FOLDER_CLASSES]
    assert (table["batches"] == 2).all() and png.stat().st_size > 0
    # the numbers: the loss on activations hooked here from the model fed the contract's input
    model = torchvision_model("resnet18", folder / "resnet18.pt")
    prep = torchvision_preprocessing("resnet18", crop=32)
    inputs = image_folder_inputs(folder / "images", prep, samples=2048, seed=0)
    result = analyze(model, inputs.images, inputs.labels, ["layer4", "fc", "layer1"], classes=inputs.classes,
                     transform=prep.transform(), batch_size=12, k=3)
    np.testing.assert_allclose(table["snnl"], result.table["snnl"], rtol=1e-9)
    x = inputs.images[torch.from_numpy(result.indices)].float() / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    check_against_loss(result, hooked_outputs(model, x, ["layer1", "layer4", "fc"]), 12)


# ---------------------------------------------------------------------------------------
# errors: one line each, naming the problem and the fix


def run_error(capsys, *args) -> str:
    rc = main(["analyze", *args, "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("snnl analyze: error: ")
    return err


def test_errors_for_the_snnl_checkpoint_path(digits, tmp_path, capsys):
    from snnl.data import prepare

    ck, data, out = str(digits / "mlp.pt"), str(digits / "digits"), ["--out-csv", str(tmp_path / "a.csv")]
    err = run_error(capsys, "--checkpoint", ck, "--data", data, "--layers", "fc1,nope", *out)
    assert "['nope'] not found" in err and "fc2" in err
    assert "does not exist" in run_error(capsys, "--checkpoint", str(tmp_path / "missing.pt"), "--data", data, *out)
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    assert "corrupt or truncated" in run_error(capsys, "--checkpoint", str(tmp_path / "garbage.pt"), "--data", data, *out)
    assert "snnl prepare-data" in run_error(capsys, "--checkpoint", ck, "--data", str(tmp_path / "nodata"), *out)
    prepare("noise", tmp_path / "noise")  # 1 x 28 x 28 images for a model of 1 x 8 x 8
    assert "the model takes (1, 8, 8)" in run_error(capsys, "--checkpoint", ck, "--data", str(tmp_path / "noise"), *out)
    assert "lower --batch-size" in run_error(capsys, "--checkpoint", ck, "--data", data, "--batch-size", "400", *out)
    assert "k must be an integer in 1..319" in run_error(capsys, "--checkpoint", ck, "--data", data, "--batch-size",
                                                         "64", "--k", "320", *out)
    assert "one model" in run_error(capsys, "--data", data, *out)
    assert "one image source" in run_error(capsys, "--checkpoint", ck, *out)
    assert "normalises inside" in run_error(capsys, "--checkpoint", ck, "--data", data, "--image-size", "32", *out)
    assert not (tmp_path / "a.csv").exists()


def test_errors_for_the_torchvision_path(folder, tmp_path, capsys):
    import torchvision

    weights, images = str(folder / "resnet18.pt"), str(folder / "images")
    out = ["--image-size", "32", "--batch-size", "12", "--out-csv", str(tmp_path / "a.csv")]
    tv = ["--torchvision", "resnet18", "--weights", weights, "--image-folder", images]
    assert "name the layers" in run_error(capsys, *tv, *out)
    err = run_error(capsys, *tv, "--layers", "layer1.0.relu", *out)  # BasicBlock calls its relu twice
    assert "runs more than once in one forward pass" in err
    assert "not found" in run_error(capsys, *tv, "--layers", "layer9", *out)
    assert "not a torchvision classification model" in run_error(
        capsys, "--torchvision", "resnet_nope", "--weights", weights, "--image-folder", images, "--layers", "fc", *out)
    assert "does not fit" in run_error(
        capsys, "--torchvision", "resnet34", "--weights", weights, "--image-folder", images, "--layers", "fc", *out)
    assert "does not exist" in run_error(
        capsys, "--torchvision", "resnet18", "--weights", str(tmp_path / "no.pt"), "--image-folder", images,
        "--layers", "fc", *out)
    torch.save(torchvision.models.resnet18(num_classes=3), tmp_path / "whole.pt")  # a pickled model, not a state_dict
    err = run_error(capsys, "--torchvision", "resnet18", "--weights", str(tmp_path / "whole.pt"), "--image-folder",
                    images, "--layers", "fc", *out)
    assert "pickled Python objects" in err and "state_dict" in err
    assert "needs --weights" in run_error(capsys, "--torchvision", "resnet18", "--image-folder", images, *out)
    assert "image folder" in run_error(capsys, *tv[:4], "--image-folder", str(tmp_path / "none"), "--layers", "fc", *out)
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    assert "one sub-folder per class" in run_error(capsys, *tv[:4], "--image-folder", str(tmp_path / "empty"),
                                                   "--layers", "fc", *out)
    assert not (tmp_path / "a.csv").exists()


def test_library_errors_are_value_errors():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    images, labels = torch.rand(20, 1, 2, 2), torch.arange(20) % 2
    with pytest.raises(ConfigError, match="not found"):
        analyze(model, images, labels, ["9"], samples=20, batch_size=10)
    with pytest.raises(DataError, match="no two images of one class"):
        analyze(model, images, torch.arange(20), ["1"], samples=20, batch_size=10)
    with pytest.raises(DataError, match="outside the 1 class names"):
        analyze(model, images, labels, ["1"], classes=["a"], samples=20, batch_size=10)
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)


# ---------------------------------------------------------------------------------------
# the README example


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path):
    """The bash block of the README's "Analysing any model" section, as pasted (with .venv's
    bin on PATH instead of `source .venv/bin/activate`), writes its four outputs."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Analysing any model", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    script = block.replace("source .venv/bin/activate\n", "") + 'echo "OUT=$out"\n'
    env = {**os.environ, "TMPDIR": str(tmp_path), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = Path(re.search(r"OUT=(.*)", done.stdout).group(1))
    for name in ("mlp.csv", "mlp.png", "r18.csv", "r18.png"):
        assert (out / name).stat().st_size > 0
    assert list(pd.read_csv(out / "r18.csv")["layer"]) == ["layer1", "layer2", "layer3", "layer4", "fc"]
