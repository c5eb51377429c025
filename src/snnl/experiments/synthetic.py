"""E1 and E2 (the paper's Figs. 1 and 2): 2-D points moved by gradient descent on their coordinates.

E1 (``minimise``): points drawn from one 2-D Gaussian per class are moved by Adam to
minimise the SNNL; the classes become isolated. Snapshots at a few steps.

E2 (``compare``): from one initial condition, minimise and maximise the triplet loss
and the SNNL. Maximising the SNNL gives clusters that mix the classes (each point's
nearest neighbours belong to other classes).

The SNNL is taken at a temperature fixed from the start (``temperature: initial``: the
optimal T of the initial points), which keeps the numbers of all panels comparable.
Neither loss is scale invariant, and under maximisation both are unbounded: the cloud
grows (Adam moves each coordinate by about ``lr`` per step, so it stays bounded over a
run). ``fix_scale: true`` instead recentres and rescales the points to their initial
RMS radius after every step.

Two measures of class mixing accompany every panel: the purity of a k-means
clustering with one cluster per class (share of points in their cluster's majority
class; 1 = classes separated, 1/classes = fully mixed at the scale of the classes), and
the same with four clusters per class ("fine" purity: are the *small* clusters of one
class?). Maximising the SNNL drives both down: small clusters, each holding several
classes. Maximising the triplet loss also lowers the coarse purity (each class is spread
around) but its small clumps are of one class, so the fine purity stays high.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from snnl.experiments.common import kmeans_purity
from snnl.experiments.config import SyntheticConfig
from snnl.loss import soft_nearest_neighbor_loss
from snnl.temperature import optimal_temperature

OBJECTIVES = ("snnl", "triplet")
DIRECTIONS = ("minimise", "maximise")
FINE_CLUSTERS = 4  # k-means clusters per class of the "fine" purity


def make_points(cfg: SyntheticConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(points float32 (N, 2), labels int64 (N,)): ``points_per_class`` draws from one isotropic
    Gaussian per class, the means evenly spaced on a circle of ``radius`` (seeded)."""
    g = torch.Generator().manual_seed(int(cfg.seed))
    angles = torch.arange(cfg.classes, dtype=torch.float64) * (2 * math.pi / cfg.classes)
    means = cfg.radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    labels = torch.arange(cfg.classes).repeat_interleave(cfg.points_per_class)
    noise = torch.randn(labels.shape[0], 2, generator=g, dtype=torch.float64)
    points = means[labels] + cfg.std * noise
    return points.float(), labels


def _euclidean(x: torch.Tensor) -> torch.Tensor:
    sq = (x.unsqueeze(1) - x.unsqueeze(0)).pow(2).sum(-1)
    return torch.sqrt(sq + 1e-12)


def n_triplets(labels: torch.Tensor) -> int:
    """The number of (anchor, positive, negative) triplets of a labelling."""
    counts = torch.bincount(labels).double()
    n = float(labels.shape[0])
    return int((counts * (counts - 1) * (n - counts)).sum())


def triplet_loss(
    x: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 1.0,
    max_triplets: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean over triplets of ``relu(|a - p| - |a - n| + margin)`` (Euclidean distances).

    Exact (every triplet) when there are at most ``max_triplets`` of them (or it is None),
    otherwise an unbiased estimate from ``max_triplets`` random triplets.
    """
    d = _euclidean(x)
    if max_triplets is None or n_triplets(labels) <= max_triplets:
        total = x.new_zeros(())
        count = 0
        for c in labels.unique():
            inside = labels == c
            dap = d[inside][:, inside]
            dan = d[inside][:, ~inside]
            if dap.shape[0] < 2 or dan.shape[1] == 0:
                continue
            terms = torch.relu(dap.unsqueeze(2) - dan.unsqueeze(1) + margin)
            eye = torch.eye(dap.shape[0], dtype=torch.bool, device=x.device)
            total = total + terms.masked_fill(eye.unsqueeze(2), 0.0).sum()
            count += dap.shape[0] * (dap.shape[0] - 1) * dan.shape[1]
        return total / max(count, 1)
    anchors, pos, neg = sample_triplets(labels, max_triplets, generator)
    return torch.relu(d[anchors, pos] - d[anchors, neg] + margin).mean()


def sample_triplets(
    labels: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``k`` uniformly random (anchor, positive, negative) index triplets (vectorised).

    Every triplet is equally likely: the anchor is drawn with probability proportional
    to its number of triplets, then the positive uniformly among its other same-class
    points and the negative uniformly among the points of other classes.
    """
    labels = labels.cpu()
    n = labels.shape[0]
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    classes, counts = torch.unique_consecutive(sorted_labels, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.searchsorted(classes, labels)  # class slot of every point
    rank = torch.empty(n, dtype=torch.long)
    rank[order] = torch.arange(n) - starts[slot[order]]
    count = counts[slot]
    weight = ((count - 1) * (n - count)).double()  # triplets per anchor: uniform over triplets
    if not bool((weight > 0).any()):
        raise ValueError("no triplet exists: a class needs two points and another class must exist")
    anchors = torch.multinomial(weight, k, replacement=True, generator=generator)
    c, r, start = count[anchors], rank[anchors], starts[slot[anchors]]
    u = (torch.rand(k, generator=generator, dtype=torch.float64) * (c - 1)).long()
    u = u + (u >= r).long()
    pos = order[start + u]
    v = (torch.rand(k, generator=generator, dtype=torch.float64) * (n - c)).long()
    v = v + (v >= start).long() * c
    neg = order[v]
    return anchors, pos, neg


def _rms_radius(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(0)).pow(2).sum(1).mean().sqrt()


@dataclass
class Trajectory:
    """Points of one optimisation at the snapshot steps, and the fixed temperature used."""

    objective: str
    direction: str
    temperature: float
    snapshots: dict[int, np.ndarray]


def initial_temperature(points: torch.Tensor, labels: torch.Tensor) -> float:
    """The SNNL-minimising temperature of the initial points."""
    return float(optimal_temperature(points, labels).temperature)


def optimise(
    points: torch.Tensor,
    labels: torch.Tensor,
    objective: str,
    direction: str,
    cfg: SyntheticConfig,
    snapshot_steps: list[int] | None = None,
    progress: bool = False,
) -> Trajectory:
    """Move ``points`` by Adam (``cfg.steps`` steps, ``cfg.lr``) to minimise or maximise ``objective``.

    Returns the points at ``snapshot_steps`` (default: only the last step) as numpy arrays.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    sign = 1.0 if direction == "minimise" else -1.0
    t0 = initial_temperature(points, labels)
    fixed_t = t0 if cfg.temperature in ("initial", "optimal") else float(cfg.temperature)
    wanted = set(snapshot_steps if snapshot_steps is not None else []) | {cfg.steps}
    x = points.detach().clone().float().requires_grad_(True)
    r0 = _rms_radius(x.detach())
    opt = torch.optim.Adam([x], lr=cfg.lr)
    gen = torch.Generator().manual_seed(int(cfg.seed) + 1)
    snapshots: dict[int, np.ndarray] = {}
    bar = tqdm(range(cfg.steps + 1), desc=f"{direction} {objective}", disable=not progress, leave=False)
    for step in bar:
        if step in wanted:
            snapshots[step] = x.detach().numpy().copy()
        if step == cfg.steps:
            break
        if objective == "snnl":
            t = optimal_temperature(x, labels).temperature if cfg.temperature == "optimal" else fixed_t
            loss = soft_nearest_neighbor_loss(x, labels, t)
        else:
            loss = triplet_loss(x, labels, cfg.triplet_margin, cfg.triplets_per_step, gen)
        opt.zero_grad(set_to_none=True)
        (sign * loss).backward()
        opt.step()
        if cfg.fix_scale:
            with torch.no_grad():
                x.sub_(x.mean(0))
                x.mul_(r0 / _rms_radius(x).clamp_min(1e-12))
    return Trajectory(objective, direction, fixed_t, snapshots)


def measures(points: np.ndarray, labels: torch.Tensor, temperature: float, cfg: SyntheticConfig) -> dict:
    """SNNL at ``temperature`` and at the optimal T, the exact triplet loss, and the k-means
    purity with one and with ``FINE_CLUSTERS`` clusters per class."""
    x = torch.as_tensor(points, dtype=torch.float64)
    opt = optimal_temperature(x, labels)
    return {
        "snnl": float(soft_nearest_neighbor_loss(x, labels, temperature)),
        "snnl_optimal": float(opt.loss),
        "temperature_optimal": float(opt.temperature),
        "triplet": float(triplet_loss(x, labels, cfg.triplet_margin)),
        "kmeans_purity": kmeans_purity(points, labels.numpy(), int(labels.max()) + 1, seed=cfg.seed),
        "fine_kmeans_purity": kmeans_purity(points, labels.numpy(), FINE_CLUSTERS * (int(labels.max()) + 1), seed=cfg.seed),
    }


def _points_frame(points: np.ndarray, labels: torch.Tensor, **columns) -> pd.DataFrame:
    df = pd.DataFrame(
        {"point": np.arange(points.shape[0]), "label": labels.numpy(), "x": points[:, 0], "y": points[:, 1]}
    )
    front = pd.DataFrame({k: [v] * len(df) for k, v in columns.items()})
    return pd.concat([front, df], axis=1)


def run_minimise(cfg: SyntheticConfig, progress: bool = False) -> pd.DataFrame:
    """E1: tidy points at each snapshot step with that step's measures.

    Columns: step, temperature, snnl, snnl_optimal, temperature_optimal, triplet,
    kmeans_purity, fine_kmeans_purity, point, label, x, y.
    """
    points, labels = make_points(cfg)
    steps = sorted({s for s in cfg.snapshot_steps if s <= cfg.steps} | {0, cfg.steps})
    traj = optimise(points, labels, "snnl", "minimise", cfg, steps, progress)
    frames = []
    for step in steps:
        m = measures(traj.snapshots[step], labels, traj.temperature, cfg)
        frames.append(_points_frame(traj.snapshots[step], labels, step=step, temperature=traj.temperature, **m))
    return pd.concat(frames, ignore_index=True)


def run_compare(cfg: SyntheticConfig, progress: bool = False) -> pd.DataFrame:
    """E2: the initial points and the end points of minimising/maximising each loss.

    Columns: objective (``initial``, ``triplet``, ``snnl``), direction (``initial``,
    ``minimise``, ``maximise``), temperature, snnl, snnl_optimal, temperature_optimal,
    triplet, kmeans_purity, fine_kmeans_purity, point, label, x, y.
    """
    points, labels = make_points(cfg)
    t0 = initial_temperature(points, labels)
    temperature = t0 if cfg.temperature in ("initial", "optimal") else float(cfg.temperature)
    frames = [
        _points_frame(
            points.numpy(), labels, objective="initial", direction="initial", temperature=temperature,
            **measures(points.numpy(), labels, temperature, cfg),
        )
    ]
    runs = [(o, d) for o in ("triplet", "snnl") for d in DIRECTIONS]
    for objective, direction in tqdm(runs, desc="E2 runs", disable=not progress):
        traj = optimise(points, labels, objective, direction, cfg, None, progress)
        end = traj.snapshots[cfg.steps]
        frames.append(
            _points_frame(
                end, labels, objective=objective, direction=direction, temperature=temperature,
                **measures(end, labels, temperature, cfg),
            )
        )
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------
# figures


def _scatter(ax, frame: pd.DataFrame, palette, rings: bool = False) -> None:
    """Points coloured by class. With ``rings``, hollow circles whose size shrinks with the
    class index, so that points of several classes stacked on one spot stay visible as
    concentric rings of different colours."""
    n = len(palette)
    for label, group in frame.groupby("label", sort=True):
        colour = palette[int(label)]
        if rings:
            size = 14 + 70 * (n - 1 - int(label)) / max(n - 1, 1)
            ax.scatter(group["x"], group["y"], s=size, facecolors="none", edgecolors=[colour], linewidths=1.3, label=f"class {label}")
        else:
            ax.scatter(group["x"], group["y"], s=9, color=colour, alpha=0.85, linewidths=0, label=f"class {label}")
    ax.set_aspect("equal", adjustable="box")


def _class_legend(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(labels), markerscale=2.5)


def plot_minimise(df: pd.DataFrame):
    """E1: one panel per snapshot step, points coloured by class, the panel's SNNL in its title."""
    import matplotlib.pyplot as plt

    from snnl.figures import class_palette, set_style

    set_style()
    steps = sorted(df["step"].unique())
    n_classes = int(df["label"].max()) + 1
    palette = class_palette(n_classes)
    fig, axes = plt.subplots(1, len(steps), figsize=(3.0 * len(steps) + 1.2, 3.6), sharex=True, sharey=True, squeeze=False)
    for ax, step in zip(axes[0], steps):
        frame = df[df["step"] == step]
        _scatter(ax, frame, palette)
        row = frame.iloc[0]
        ax.set_title(f"step {step}\nSNNL = {row['snnl']:.3g}", fontsize="medium")
        ax.set_xlabel("coordinate 1 (a.u.)")
    axes[0][0].set_ylabel("coordinate 2 (a.u.)")
    first = df.iloc[0]
    n_points = int((df["step"] == steps[0]).sum())
    fig.suptitle(
        f"E1: minimising the SNNL moves 2-D points into class clusters "
        f"({n_classes} classes, {n_points} points, Adam on the coordinates, T = {first['temperature']:.3g})"
    )
    fig.tight_layout(rect=(0, 0.45 / fig.get_figheight(), 1, 1 - 0.2 / fig.get_figheight()))
    _class_legend(fig, axes[0][0])
    return fig


_ROW_TITLES = {"triplet": "triplet loss", "snnl": "soft nearest neighbor loss"}
_COLUMN_TITLES = {"minimise": "minimised", "initial": "initial", "maximise": "maximised"}


def plot_compare(df: pd.DataFrame):
    """E2: rows = objective (triplet, SNNL), columns = minimised / initial / maximised."""
    import matplotlib.pyplot as plt

    from snnl.figures import class_palette, set_style

    set_style()
    n_classes = int(df["label"].max()) + 1
    palette = class_palette(n_classes)
    fig, axes = plt.subplots(2, 3, figsize=(12.5, 8.4), squeeze=False)
    initial = df[df["objective"] == "initial"]
    for r, objective in enumerate(("triplet", "snnl")):
        for c, direction in enumerate(("minimise", "initial", "maximise")):
            ax = axes[r][c]
            frame = initial if direction == "initial" else df[(df["objective"] == objective) & (df["direction"] == direction)]
            if frame.empty:
                ax.set_visible(False)
                continue
            _scatter(ax, frame, palette, rings=direction == "maximise")
            row = frame.iloc[0]
            title = _COLUMN_TITLES[direction] + ("" if direction == "initial" else f" {_ROW_TITLES[objective]}")
            stats = (
                f"SNNL {row['snnl']:.3g} · triplet {row['triplet']:.3g}\n"
                f"k-means purity {row['kmeans_purity']:.2f} (fine {row['fine_kmeans_purity']:.2f})"
            )
            ax.set_title(f"{title}\n{stats}", fontsize="medium")
            ax.set_xlabel("coordinate 1 (a.u.)")
            if c == 0:
                ax.set_ylabel(f"{_ROW_TITLES[objective]}\n\ncoordinate 2 (a.u.)")
    temperature = float(initial.iloc[0]["temperature"]) if not initial.empty else float("nan")
    fig.suptitle(
        "E2: minimising and maximising the triplet loss and the SNNL from one initial condition",
        y=0.995,
    )
    fig.text(
        0.5, 0.955,
        f"SNNL at fixed T = {temperature:.3g}.  k-means purity: share of points in their cluster's majority class, "
        f"with {n_classes} clusters (fine: {FINE_CLUSTERS * n_classes}); 1 = pure clusters, {1 / n_classes:.2f} = chance.",
        ha="center", va="top", fontsize="small",
    )
    fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 0.95))
    _class_legend(fig, axes[0][1])
    return fig
