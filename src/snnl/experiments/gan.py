"""E5 (claim C2): real and generated data become more entangled as a GAN trains.

A small GAN (fully connected, or DCGAN-style for 28x28 and 32x32 images) is trained with
the non-saturating loss and Adam. Every ``log_every`` steps a fixed probe set of real
images and the generator's images for fixed latent codes are labelled real (0) and fake
(1), and the SNNL between them is measured at the optimal temperature in pixel space and
in every hidden layer of the discriminator. Low SNNL: the two are separated (easy to
tell apart); as the generator improves the SNNL rises towards the T -> infinity limit
``log((2n - 1) / (n - 1))`` (about log 2 = 0.69): fully entangled.

In the discriminator's layers the picture differs: the discriminator is trained to
separate exactly these two classes, so its representation can keep them apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from snnl.errors import DataError, TrainingError
from snnl.devices import resolve_device
from snnl.checks import to_unit
from snnl.experiments.common import snnl_at_optimal
from snnl.layers import capture
from snnl.experiments.config import GanConfig

PIXELS = "pixels"
COLUMNS = ["step", "layer", "layer_index", "snnl", "temperature", "at_boundary", "d_real", "d_fake", "d_loss", "g_loss"]


# ---------------------------------------------------------------------------------------
# networks


class MLPGenerator(nn.Module):
    """z -> [Linear -> ReLU] x len(hidden) -> Linear -> sigmoid, reshaped to (C, H, W)."""

    def __init__(self, z_dim: int, shape: tuple[int, int, int], hidden: list[int]):
        super().__init__()
        layers, width = [], z_dim
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers += [nn.Linear(width, int(np.prod(shape))), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)
        self.shape = tuple(shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    """Flatten -> [Linear -> LeakyReLU(0.2)] x len(hidden) -> Linear(1). Hidden layers ``fc1``, ``fc2``..."""

    def __init__(self, shape: tuple[int, int, int], hidden: list[int]):
        super().__init__()
        self.flatten = nn.Flatten()
        width = int(np.prod(shape))
        self.hidden_layers = []
        for i, units in enumerate(hidden, start=1):
            setattr(self, f"fc{i}", nn.Sequential(nn.Linear(width, units), nn.LeakyReLU(0.2)))
            self.hidden_layers.append(f"fc{i}")
            width = units
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)
        for name in self.hidden_layers:
            x = getattr(self, name)(x)
        return self.out(x).squeeze(1)


class DCGANGenerator(nn.Module):
    """z -> Linear -> (2w, s, s) -> ConvT 4x4/2 -> (w, 2s, 2s) -> ConvT 4x4/2 -> (C, 4s, 4s), sigmoid.
    BatchNorm + ReLU between; s = H / 4 (7 for 28x28, 8 for 32x32)."""

    def __init__(self, z_dim: int, shape: tuple[int, int, int], width: int):
        super().__init__()
        c, h, _ = shape
        self.s, self.w = h // 4, width
        self.project = nn.Sequential(nn.Linear(z_dim, 2 * width * self.s * self.s), nn.BatchNorm1d(2 * width * self.s * self.s), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, stride=2, padding=1), nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.project(z).view(z.shape[0], 2 * self.w, self.s, self.s))


class DCGANDiscriminator(nn.Module):
    """Conv 4x4/2 (w) -> LeakyReLU -> Conv 4x4/2 (2w) -> LeakyReLU -> Linear(1). Hidden layers
    ``conv1``, ``conv2`` (no batch norm, so train and eval modes compute the same function)."""

    def __init__(self, shape: tuple[int, int, int], width: int):
        super().__init__()
        c, h, w = shape
        self.conv1 = nn.Sequential(nn.Conv2d(c, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.conv2 = nn.Sequential(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.flatten = nn.Flatten()
        self.out = nn.Linear(2 * width * (h // 4) * (w // 4), 1)
        self.hidden_layers = ["conv1", "conv2"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.flatten(self.conv2(self.conv1(x)))).squeeze(1)


def build_gan(cfg: GanConfig, shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for images of ``shape`` (C, H, W)."""
    shape = tuple(int(v) for v in shape)
    cfg.check_shape(shape)
    if cfg.arch == "mlp":
        return MLPGenerator(cfg.z_dim, shape, list(reversed(cfg.hidden))), MLPDiscriminator(shape, list(cfg.hidden))
    width = int(cfg.hidden[0])
    return DCGANGenerator(cfg.z_dim, shape, width), DCGANDiscriminator(shape, width)


# ---------------------------------------------------------------------------------------
# training


def snapshot_steps(total: int, k: int) -> list[int]:
    """``k`` steps from 0 to ``total``: 0, then ``k - 1`` log-spaced steps from ``total / 50``
    (at least 1) to ``total`` (duplicates merged, so short runs may give fewer)."""
    if k <= 1 or total == 0:
        return [total]
    start = max(1, total // 50)
    steps = {0, total}
    if k > 2:
        for v in np.geomspace(start, total, k - 1):
            steps.add(round(float(v)))
    return sorted(steps)


def log_steps(total: int, every: int) -> list[int]:
    return sorted(set(range(0, total + 1, every)) | {total})


@dataclass
class GanResult:
    """``curves``: one row per (logged step, space); ``samples``: step -> (n, C, H, W) float
    images in [0, 1]; ``real``: real images for reference; the trained networks."""

    curves: pd.DataFrame
    samples: dict[int, np.ndarray]
    real: np.ndarray
    generator: nn.Module
    discriminator: nn.Module
    config: GanConfig
    dataset: str = "data"
    probe_size: int = 0


@torch.no_grad()
def measure(
    generator: nn.Module, discriminator: nn.Module, real: torch.Tensor, z: torch.Tensor
) -> tuple[list[dict], torch.Tensor]:
    """SNNL(real vs fake) at the optimal T in pixel space and each hidden layer of the
    discriminator, plus D's mean probabilities and both losses on the probe; and the fakes."""
    g_mode, d_mode = generator.training, discriminator.training
    generator.eval()
    discriminator.eval()
    try:
        fake = generator(z)
        x = torch.cat([real, fake])
        labels = torch.cat([torch.zeros(real.shape[0]), torch.ones(fake.shape[0])]).long()
        with capture(discriminator, discriminator.hidden_layers) as store:
            logits = discriminator(x)
    finally:
        generator.train(g_mode)
        discriminator.train(d_mode)
    n = real.shape[0]
    lr, lf = logits[:n], logits[n:]
    stats = {
        "d_real": float(torch.sigmoid(lr).mean()),
        "d_fake": float(torch.sigmoid(lf).mean()),
        "d_loss": float(F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr))
                        + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))),
        "g_loss": float(F.binary_cross_entropy_with_logits(lf, torch.ones_like(lf))),
    }
    spaces = {PIXELS: x}
    spaces.update({name: store[name][0] for name in discriminator.hidden_layers})
    rows = []
    for index, (name, feats) in enumerate(spaces.items()):
        flat = feats.reshape(feats.shape[0], -1).float().cpu()
        rows.append({"layer": name, "layer_index": index, **snnl_at_optimal(flat, labels.cpu()), **stats})
    return rows, fake


def train_gan(
    images: torch.Tensor, cfg: GanConfig, *, dataset: str = "data", progress: bool = False
) -> GanResult:
    """Train the GAN of ``cfg`` on ``images`` (uint8 or [0, 1] float, N x C x H x W) and log
    SNNL(real vs fake) every ``cfg.log_every`` steps. Seeded: same seed, same numbers (CPU)."""
    images = torch.as_tensor(images)
    if images.dim() != 4:
        raise DataError(f"GAN images must be N x C x H x W, got shape {tuple(images.shape)}")
    n_data = images.shape[0]
    if n_data < 2:
        raise DataError(f"the GAN needs at least 2 images, got {n_data}")
    device = resolve_device(cfg.device, "experiments.gan.device")
    torch.manual_seed(cfg.seed)
    data = to_unit(images).to(device)
    shape = tuple(data.shape[1:])
    generator, discriminator = build_gan(cfg, shape)
    generator.to(device)
    discriminator.to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))

    gen = torch.Generator().manual_seed(cfg.seed + 1)
    probe_n = min(cfg.probe_size, n_data)
    probe_real = data[torch.randperm(n_data, generator=gen)[:probe_n].to(device)]
    probe_z = torch.randn(probe_n, cfg.z_dim, generator=gen).to(device)
    sample_z = probe_z[: cfg.samples_per_row]
    want_log = set(log_steps(cfg.steps, cfg.log_every))
    want_samples = set(snapshot_steps(cfg.steps, cfg.sample_snapshots))

    rows: list[dict] = []
    samples: dict[int, np.ndarray] = {}
    ones = torch.ones(cfg.batch_size, device=device)
    zeros = torch.zeros(cfg.batch_size, device=device)
    bar = tqdm(range(cfg.steps + 1), desc=f"GAN on {dataset}", disable=not progress, unit="step")
    for step in bar:
        if step in want_log:
            records, fake = measure(generator, discriminator, probe_real, probe_z)
            rows += [{"step": step, **r} for r in records]
            if step in want_samples:
                samples[step] = fake[: cfg.samples_per_row].cpu().numpy()
            bar.set_postfix({r["layer"]: f"{r['snnl']:.3f}" for r in records})
        elif step in want_samples:
            generator.eval()
            with torch.no_grad():
                samples[step] = generator(sample_z).cpu().numpy()
            generator.train()
        if step == cfg.steps:
            break
        idx = torch.randint(n_data, (cfg.batch_size,), generator=gen).to(device)
        real = data[idx]
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=gen).to(device)
        fake = generator(z)
        d_loss = F.binary_cross_entropy_with_logits(discriminator(real), ones) + F.binary_cross_entropy_with_logits(
            discriminator(fake.detach()), zeros
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if not (math.isfinite(float(d_loss.detach())) and math.isfinite(float(g_loss.detach()))):
            raise TrainingError(
                f"GAN losses became non-finite at step {step + 1} (d_loss {float(d_loss)}, g_loss {float(g_loss)}); "
                "lower experiments.gan.lr"
            )
    curves = pd.DataFrame(rows)[COLUMNS]
    real_show = probe_real[: cfg.samples_per_row].cpu().numpy()
    return GanResult(curves, samples, real_show, generator, discriminator, cfg, dataset, probe_n)


def entangled_limit(n_real: int, n_fake: int) -> float:
    """The SNNL's T -> infinity limit for ``n_real`` real and ``n_fake`` fake points."""
    b = n_real + n_fake
    return float((n_real * math.log((b - 1) / (n_real - 1)) + n_fake * math.log((b - 1) / (n_fake - 1))) / b)


# ---------------------------------------------------------------------------------------
# figures


def _layer_label(name: str) -> str:
    return "pixel space" if name == PIXELS else f"D {name}"


def plot_curves(result: GanResult):
    """SNNL(real vs fake) at the optimal T against the step, one line per space (pixels grey
    dotted, the discriminator's last hidden layer black dashed); below, D's mean output."""
    import matplotlib.pyplot as plt

    from snnl.figures import REAL_FAKE_COLORS, layer_styles, set_style

    set_style()
    df = result.curves
    layers = list(df.sort_values("layer_index", kind="stable")["layer"].drop_duplicates())
    styles = layer_styles(layers, input_name=PIXELS)
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(8.6, 6.6), sharex=True, gridspec_kw={"height_ratios": [2.2, 1]}
    )
    for name in layers:
        part = df[df["layer"] == name]
        ax.plot(part["step"], part["snnl"], marker="o", markersize=3.5, label=_layer_label(name), **styles[name])
    limit = entangled_limit(result.probe_size, result.probe_size)
    ax.axhline(limit, color="0.4", linewidth=0.9, linestyle="-.", label=f"fully entangled (T → ∞): {limit:.2f}")
    ax.set_ylabel("SNNL real vs fake\nat optimal T (nats)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", title="representation")
    steps_df = df.drop_duplicates("step")
    ax2.plot(steps_df["step"], steps_df["d_real"], color=REAL_FAKE_COLORS["real"], marker="o", markersize=3, label="D(real)")
    ax2.plot(steps_df["step"], steps_df["d_fake"], color=REAL_FAKE_COLORS["fake"], marker="o", markersize=3, label="D(fake)")
    ax2.axhline(0.5, color="0.5", linewidth=0.8, linestyle=":")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_ylabel("discriminator's\nmean P(real)")
    ax2.set_xlabel("GAN training step")
    ax2.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    cfg = result.config
    fig.suptitle(
        f"E5: real vs generated data during GAN training ({result.dataset}, {cfg.arch} GAN)\n"
        f"SNNL at the optimal temperature on {result.probe_size} real + {result.probe_size} generated images; "
        "higher = more entangled",
        fontsize="medium",
    )
    fig.tight_layout()
    return fig


def _mosaic(images: np.ndarray, gap: float) -> np.ndarray:
    """(n, C, H, W) in [0, 1] -> (H, n * (W + 1) - 1, C) with 1-pixel gaps of value ``gap``."""
    n, c, h, w = images.shape
    out = np.full((h, n * (w + 1) - 1, c), gap, dtype=np.float32)
    for i in range(n):
        out[:, i * (w + 1) : i * (w + 1) + w, :] = np.transpose(images[i], (1, 2, 0))
    return np.clip(out, 0, 1)


def plot_samples(result: GanResult):
    """A grid of generated samples (fixed latent codes) at the snapshot steps, real images on top."""
    import matplotlib.pyplot as plt

    from snnl.figures import set_style

    set_style()
    rows = [("real images", result.real)] + [(f"step {s}", result.samples[s]) for s in sorted(result.samples)]
    n_cols = max(r[1].shape[0] for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.62 * n_cols + 1.6, 0.7 * len(rows) + 0.9), squeeze=False)
    for ax, (label, imgs) in zip(axes[:, 0], rows):
        gray = imgs.shape[1] == 1
        mosaic = _mosaic(imgs, gap=0.0 if gray else 1.0)  # white gaps (gray_r maps 0 to white)
        if gray:
            ax.imshow(mosaic[:, :, 0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(mosaic, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(label == "real images")
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize="small")
    fig.suptitle(f"E5: generated samples during training ({result.dataset}, same latent codes in every row)", fontsize="medium")
    fig.tight_layout()
    return fig
