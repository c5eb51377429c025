"""The networks of the reproduction: ``mlp`` (digits), ``cnn`` (the official demo CNN) and ``resnet``.

Every model
  * takes images in [0, 1] (uint8 / 255), shape (N, C, H, W), and normalises them
    itself (its first module, ``normalize``, holds per-channel mean/std buffers), so
    attacks and analyses work in [0, 1] pixel space;
  * names its hidden layers in ``model.hidden_layers``: module names (as in
    ``model.named_modules()``) whose outputs are post-activation block outputs. The
    entanglement regularizer and the per-layer SNNL log read that attribute;
  * is built by :func:`build_model` from a name, the input shape and the number of
    classes, and describes itself in ``model.spec`` (what a checkpoint stores to
    rebuild it).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from snnl.errors import ConfigError


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; mean and std are buffers (saved with the model)."""

    def __init__(self, channels: int, mean: Sequence[float] | float = 0.5, std: Sequence[float] | float = 0.5):
        super().__init__()
        self.register_buffer("mean", _per_channel(mean, channels, "mean"))
        self.register_buffer("std", _per_channel(std, channels, "std"))
        if not bool((self.std > 0).all()):
            raise ConfigError(f"normalisation std must be > 0, got {self.std.tolist()}")

    def set_stats(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Set the per-channel statistics in place (e.g. from the training set)."""
        with torch.no_grad():
            self.mean.copy_(_per_channel(mean, self.mean.numel(), "mean"))
            s = _per_channel(std, self.std.numel(), "std").clamp_min(1e-3)
            self.std.copy_(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(
                f"models take float images in [0, 1], got dtype {x.dtype}; divide uint8 images by 255 first"
            )
        return (x - self.mean.to(x.dtype).view(1, -1, 1, 1)) / self.std.to(x.dtype).view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"mean={[round(v, 4) for v in self.mean.tolist()]}, std={[round(v, 4) for v in self.std.tolist()]}"


def _per_channel(value, channels: int, what: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() == 1:
        t = t.expand(channels).clone()
    if t.numel() != channels:
        raise ConfigError(f"normalisation {what} has {t.numel()} values for {channels} channels")
    return t


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow's 'same' padding (works with stride > 1, asymmetric when needed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            out = math.ceil(size / s)
            total = max((out - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return super().forward(x)


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU] x len(hidden) -> Linear. Hidden layers: ``fc1``, ``fc2``, ..."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        c, h, w = input_shape
        self.normalize = Normalize(c)
        self.flatten = nn.Flatten()
        width = c * h * w
        names = []
        for i, units in enumerate(hidden, start=1):
            name = f"fc{i}"
            setattr(self, name, nn.Sequential(nn.Linear(width, int(units)), nn.ReLU()))
            names.append(name)
            width = int(units)
        self.logits = nn.Linear(width, num_classes)
        self.hidden_layers = names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.normalize(x))
        for name in self.hidden_layers:
            x = getattr(self, name)(x)
        return self.logits(x)


class CNN(nn.Module):
    """The official SNNL demo CNN (cleverhans ``ModelBasicCNN``).

    conv 64 8x8 stride 2 'same' -> ReLU -> conv 128 6x6 stride 2 'valid' -> ReLU ->
    conv 128 5x5 'valid' -> ReLU -> dense ``num_classes``. Hidden layers: ``conv1``,
    ``conv2``, ``conv3`` (post-ReLU). ``width`` scales the channel counts (64 = the paper's).
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, width: int = 64):
        super().__init__()
        c, h, w = input_shape
        w1, w2 = int(width), 2 * int(width)
        self.normalize = Normalize(c)
        self.conv1 = nn.Sequential(Conv2dSame(c, w1, 8, stride=2), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(w1, w2, 6, stride=2), nn.ReLU())
        self.conv3 = nn.Sequential(nn.Conv2d(w2, w2, 5), nn.ReLU())
        sh, sw = math.ceil(h / 2), math.ceil(w / 2)
        sh, sw = (sh - 6) // 2 + 1, (sw - 6) // 2 + 1
        sh, sw = sh - 4, sw - 4
        if sh < 1 or sw < 1:
            raise ConfigError(f"cnn needs inputs of at least 25x25 pixels, got {h}x{w}")
        self.flatten = nn.Flatten()
        self.logits = nn.Linear(w2 * sh * sw, num_classes)
        self.hidden_layers = ["conv1", "conv2", "conv3"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        x = self.conv3(self.conv2(self.conv1(x)))
        return self.logits(self.flatten(x))


class BasicBlock(nn.Module):
    """The ResNet basic block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class GlobalAvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class ResNet(nn.Module):
    """The standard CIFAR ResNet (He et al. 2016, as in kuangliu/pytorch-cifar): 3x3 stem,
    four stages of basic blocks (widths w, 2w, 4w, 8w; stride 1, 2, 2, 2), global average
    pool, linear. ``blocks=(2, 2, 2, 2)`` and ``width=64`` is ResNet-18.

    Hidden layers: ``stem``, every block (``layer1.0``, ``layer1.1``, ..., ``layer4.1``)
    and ``pool`` (the pooled feature vector), all post-activation.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        width: int = 64,
        blocks: Sequence[int] = (2, 2, 2, 2),
    ):
        super().__init__()
        c = input_shape[0]
        width = int(width)
        self.normalize = Normalize(c)
        self.stem = nn.Sequential(nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        hidden = ["stem"]
        cin = width
        for stage, n in enumerate(blocks, start=1):
            cout = width * 2 ** (stage - 1)
            layer = []
            for i in range(int(n)):
                layer.append(BasicBlock(cin, cout, stride=(1 if stage == 1 or i > 0 else 2)))
                cin = cout
                hidden.append(f"layer{stage}.{i}")
            setattr(self, f"layer{stage}", nn.Sequential(*layer))
        self.n_stages = len(blocks)
        self.pool = GlobalAvgPool()
        self.logits = nn.Linear(cin, num_classes)
        hidden.append("pool")
        self.hidden_layers = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.normalize(x))
        for stage in range(1, self.n_stages + 1):
            x = getattr(self, f"layer{stage}")(x)
        return self.logits(self.pool(x))


MODELS: dict[str, Callable[..., nn.Module]] = {"mlp": MLP, "cnn": CNN, "resnet": ResNet}


def build_model(name: str, input_shape: Sequence[int], num_classes: int, **kwargs: Any) -> nn.Module:
    """Build model ``name`` (``mlp``, ``cnn`` or ``resnet``) for inputs of shape (C, H, W).

    ``kwargs`` go to the model's constructor (``hidden`` for mlp, ``width`` for cnn,
    ``width`` and ``blocks`` for resnet). The result carries ``model.spec``, a plain
    dict from which :func:`model_from_spec` rebuilds the same architecture.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}: choose one of {sorted(MODELS)}")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ConfigError(f"input_shape must be (C, H, W), got {input_shape!r}")
    sizes = [v for key in ("width", "hidden") if key in kwargs for v in _as_list(kwargs[key])]
    if any(isinstance(v, (int, float)) and not isinstance(v, bool) and v < 1 for v in sizes):
        raise ConfigError(f"bad model_args for model {name!r}: `width` and `hidden` sizes must be >= 1, got {kwargs}")
    try:
        model = MODELS[name](shape, int(num_classes), **kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError, RuntimeError) as err:
        raise ConfigError(f"bad model_args for model {name!r} ({kwargs}): {err}") from None
    model.spec = {
        "name": name,
        "input_shape": list(shape),
        "num_classes": int(num_classes),
        "kwargs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()},
    }
    return model


@torch.no_grad()
def he_normal_fan_in_(model: nn.Module) -> nn.Module:
    """The official demo's initialisation, in place: every conv and linear weight drawn from
    N(0, 1 / fan_in) (std 1/sqrt(fan_in), fan_in = in_channels x kernel area, or in_features),
    every bias zero. Source: cleverhans v3.1 ``HeReLuNormalInitializer`` (``tf.rsqrt(fan_in + 1e-7)``),
    used by the demo's ``ModelBasicCNN`` for every layer. Draws from torch's global generator."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            module.weight.normal_(0.0, 1.0 / math.sqrt(fan_in + 1e-7))
            if module.bias is not None:
                module.bias.zero_()
    return model


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def model_from_spec(spec: dict) -> nn.Module:
    """Rebuild a model from ``model.spec`` (as stored in checkpoints)."""
    return build_model(spec["name"], spec["input_shape"], spec["num_classes"], **dict(spec.get("kwargs", {})))
