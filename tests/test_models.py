"""Models: shapes, hidden-layer names, normalisation, the official CNN's geometry, ResNet-18's size."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from snnl.errors import ConfigError

from snnl.models import Conv2dSame, build_model, model_from_spec


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _hidden_outputs(model, x):
    modules = dict(model.named_modules())
    out = {}
    handles = [
        modules[n].register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o)) for n in model.hidden_layers
    ]
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return logits, out


@pytest.mark.parametrize(
    "name, shape, kwargs",
    [
        ("mlp", (1, 8, 8), {}),
        ("cnn", (1, 28, 28), {}),
        ("cnn", (3, 32, 32), {"width": 8}),
        ("resnet", (3, 32, 32), {"width": 4, "blocks": [1, 1, 1, 1]}),
    ],
)
def test_models_forward_and_name_post_activation_hidden_layers(name, shape, kwargs):
    torch.manual_seed(0)
    model = build_model(name, shape, 10, **kwargs)
    x = torch.rand(5, *shape)
    logits, hidden = _hidden_outputs(model, x)
    assert logits.shape == (5, 10)
    assert set(hidden) == set(model.hidden_layers) and len(model.hidden_layers) >= 2
    for n, h in hidden.items():
        assert h.shape[0] == 5
        assert bool((h >= 0).all()), f"{name}.{n} is not a post-ReLU output"
    assert list(dict(model.named_children()))[0] == "normalize"
    # rebuilt from its spec (what checkpoints store): same architecture, same state keys
    again = model_from_spec(model.spec)
    assert again.state_dict().keys() == model.state_dict().keys()


def test_cnn_is_the_official_demo_geometry():
    model = build_model("cnn", (1, 28, 28), 10)
    _, hidden = _hidden_outputs(model, torch.rand(2, 1, 28, 28))
    assert hidden["conv1"].shape == (2, 64, 14, 14)  # 8x8 stride 2 'same': ceil(28 / 2)
    assert hidden["conv2"].shape == (2, 128, 5, 5)  # 6x6 stride 2 'valid': (14 - 6) // 2 + 1
    assert hidden["conv3"].shape == (2, 128, 1, 1)  # 5x5 'valid'
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 64, (8, 8), (2, 2)),
        (64, 128, (6, 6), (2, 2)),
        (128, 128, (5, 5), (1, 1)),
    ]
    assert model.logits.in_features == 128 and model.logits.out_features == 10
    # SVHN: 3 channels, 32x32
    svhn = build_model("cnn", (3, 32, 32), 10)
    _, hidden = _hidden_outputs(svhn, torch.rand(2, 3, 32, 32))
    assert [tuple(hidden[n].shape[1:]) for n in svhn.hidden_layers] == [(64, 16, 16), (128, 6, 6), (128, 2, 2)]


@pytest.mark.parametrize("size", [27, 28, 29, 32])
def test_conv2d_same_matches_tensorflow_padding(size):
    torch.manual_seed(0)
    conv = Conv2dSame(1, 2, 8, stride=2)
    x = torch.randn(1, 1, size, size)
    out_size = math.ceil(size / 2)
    total = max((out_size - 1) * 2 + 8 - size, 0)
    before, after = total // 2, total - total // 2  # TF puts the extra pixel after
    expected = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, conv.bias, stride=2)
    got = conv(x)
    assert got.shape[-1] == out_size
    torch.testing.assert_close(got, expected)


def test_resnet18_has_the_standard_parameter_count():
    # kuangliu/pytorch-cifar ResNet18: 11,173,962 parameters for 10 classes
    model = build_model("resnet", (3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 11_173_962
    assert model.hidden_layers == ["stem"] + [f"layer{s}.{i}" for s in range(1, 5) for i in range(2)] + ["pool"]


def test_models_normalise_inputs_in_unit_range():
    model = build_model("mlp", (1, 8, 8), 10)
    model.normalize.set_stats([0.25], [0.5])
    x = torch.full((1, 1, 8, 8), 0.75)
    torch.testing.assert_close(model.normalize(x), torch.ones_like(x))
    with pytest.raises(TypeError, match="uint8"):
        model(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    # statistics are buffers: saved with the weights
    assert {"normalize.mean", "normalize.std"} <= set(model.state_dict())


def test_unknown_model_and_bad_arguments_raise_config_error():
    with pytest.raises(ConfigError, match="unknown model 'vgg'"):
        build_model("vgg", (1, 28, 28), 10)
    with pytest.raises(ConfigError, match="model_args"):
        build_model("cnn", (1, 28, 28), 10, depth=3)
    with pytest.raises(ConfigError, match="25x25"):
        build_model("cnn", (1, 8, 8), 10)


