"""snnl.layers: the one helper for every layer's output over a set of images (layer_outputs) and
the one for which layers a measurement runs on (hidden_layer_names, resolve_layers).

Oracles: each layer computed by calling the model's submodules by hand, in float64, one image
at a time (no hooks, no batching)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from snnl.errors import ConfigError, DataError
from snnl.layers import INPUT, LOGITS, hidden_layer_names, layer_outputs, resolve_layers
from snnl.models import build_model


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    model = build_model("mlp", (1, 6, 6), 4, hidden=(9, 5))
    model.normalize.set_stats(torch.tensor([0.4]), torch.tensor([0.2]))
    return model


def _images(n: int = 23) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 6, 6), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


def _by_hand(model: nn.Module, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Every layer of the MLP, one image at a time, in float64, through the submodules themselves."""
    m = _mlp().double()
    m.load_state_dict(model.state_dict())
    rows: dict[str, list] = {INPUT: [], "fc1": [], "fc2": [], LOGITS: []}
    with torch.no_grad():
        for img in images:
            x = img.double().unsqueeze(0) / 255.0
            h1 = m.fc1(m.flatten(m.normalize(x)))
            h2 = m.fc2(h1)
            for name, v in ((INPUT, x), ("fc1", h1), ("fc2", h2), (LOGITS, m.logits(h2))):
                rows[name].append(v.reshape(-1).numpy())
    return {k: np.stack(v) for k, v in rows.items()}


def test_every_layer_matches_the_submodules_called_by_hand():
    model, images = _mlp(), _images()
    want = _by_hand(model, images)
    got = layer_outputs(model, images, [LOGITS, "fc2", INPUT, "fc1"], batch_size=5)
    assert list(got) == [INPUT, "fc1", "fc2", LOGITS]  # forward order, whatever order was asked
    for name, value in got.items():
        assert value.dtype == torch.float32 and value.shape == want[name].shape
        assert np.allclose(value.numpy(), want[name], rtol=1e-5, atol=1e-5), name
    # [0, 1] floats give the same pixels as uint8; the batch size changes nothing
    again = layer_outputs(model, images.float() / 255.0, ["fc1"], batch_size=1000)
    assert torch.equal(again["fc1"], got["fc1"])


def test_eval_mode_for_the_pass_and_the_mode_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 30), nn.Dropout(0.5), nn.Linear(30, 3)).train()
    images = _images(8)
    got = layer_outputs(model, images, ["2", LOGITS])
    with torch.no_grad():
        x = images.float().reshape(8, -1) / 255.0
        h = model[1](x)  # dropout is the identity in eval mode
        want = model[3](h)
    assert torch.allclose(got["2"], h) and torch.allclose(got[LOGITS], want)
    assert model.training


def test_outputs_stay_put_unless_asked_for_on_the_cpu():
    model = _mlp()
    assert layer_outputs(model, _images(4), ["fc1"], cpu=True)["fc1"].device.type == "cpu"


class _Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(36, 36)
        self.act = nn.ReLU()
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        return self.act(self.fc(self.act(x.flatten(1))))


def test_errors_name_the_layer_and_the_fix():
    model, images = _Twice(), _images(4)
    with pytest.raises(ConfigError, match="`act` runs more than once"):
        layer_outputs(model, images, ["act"])
    with pytest.raises(ConfigError, match="'unused' does not run in the model's forward pass"):
        layer_outputs(model, images, ["unused"])
    with pytest.raises(ConfigError, match=r"\['fc9'\] not found"):
        layer_outputs(model, images, ["fc9"])
    with pytest.raises(DataError, match="no images"):
        layer_outputs(model, images[:0], ["fc"])
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        layer_outputs(model, images.float(), ["fc"])


def test_resolve_layers_one_meaning_of_all():
    model = _mlp()
    assert hidden_layer_names(model) == ["fc1", "fc2"]
    assert resolve_layers(model) == ["fc1", "fc2"]
    assert resolve_layers(model, logits=True) == ["fc1", "fc2", LOGITS]
    assert resolve_layers(model, ["fc2"], logits=True) == ["fc2", LOGITS]
    with pytest.raises(ConfigError, match=r"`evaluate.layers` names \['fc9'\].*its hidden layers are \['fc1', 'fc2'\]"):
        resolve_layers(model, ["fc9"], key="evaluate.layers")
    plain = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.Linear(8, 3))  # no hidden_layers: all children but the last
    assert resolve_layers(plain) == ["0", "1"]
    with pytest.raises(ConfigError, match="names no hidden layers.*`train.layers`"):
        resolve_layers(build_model("mlp", (1, 6, 6), 4, hidden=()), key="train.layers")


def test_one_home():
    import snnl
    from snnl import regularizer
    from snnl.evaluate import resolve_layers as evaluate_resolve_layers

    assert snnl.hidden_layer_names is hidden_layer_names and regularizer.hidden_layer_names is hidden_layer_names
    assert evaluate_resolve_layers is resolve_layers
