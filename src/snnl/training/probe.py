"""The per-layer SNNL at the optimal temperature on a fixed probe batch (the data of E4).

At log-spaced steps (:func:`probe_steps`) the model, in eval mode, runs on the same
probe batch; for every hidden layer and the logits, :func:`snnl.optimal_temperature`
finds the T minimising the SNNL and records the loss there.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from snnl.atomic import atomic_write_text
from snnl.errors import TrainingError
from snnl.experiments.dynamics import DIVERGED_COLUMN
from snnl.layers import layer_outputs, resolve_layers
from snnl.temperature import optimal_temperature


def probe_steps(total_steps: int, points: int) -> list[int]:
    """Step 0 and ``points - 1`` log-spaced steps from 1 to ``total_steps`` (duplicates merged).

    Step 0 is the untrained model; ``total_steps`` is always included when ``points >= 2``.
    """
    if points <= 0 or total_steps < 0:
        return []
    if points == 1 or total_steps == 0:
        return [total_steps]
    steps = {0, total_steps}
    k = points - 1  # log-spaced points in [1, total_steps]
    if k >= 2:
        for i in range(k):
            steps.add(int(round(total_steps ** (i / (k - 1)))))
    return sorted(steps)


def probe_layers(model: nn.Module) -> list[str]:
    """The layers the probe measures: the model's hidden layers, then the logits."""
    return resolve_layers(model, logits=True)


def measure(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    layers: Sequence[str] | None = None,
    batch_size: int = 1000,
    autocast: contextlib.AbstractContextManager | None = None,
) -> list[dict]:
    """For each layer of ``layers`` (default :func:`probe_layers`; ``"logits"``: the model's output):
    ``{"layer", "snnl", "temperature", "at_boundary"}`` at the optimal T of its outputs
    (:func:`snnl.layers.layer_outputs`, eval mode) on ``images`` (uint8 or [0, 1]) with ``labels``.

    Raises:
        TrainingError: a layer's output holds a NaN or inf (the model diverged).
    """
    layers = list(layers) if layers is not None else probe_layers(model)
    outputs = layer_outputs(model, images, layers, batch_size=batch_size, autocast=autocast, what="probe images")
    broken = next((name for name in layers if not bool(torch.isfinite(outputs[name]).all())), None)
    if broken is not None:  # huge but finite weights can overflow a layer
        raise TrainingError(f"the output of layer `{broken}` on the probe images is not finite")
    records = []
    for name in layers:
        opt = optimal_temperature(outputs[name], labels)
        records.append(
            {"layer": name, "snnl": float(opt.loss), "temperature": float(opt.temperature), "at_boundary": bool(opt.at_boundary)}
        )
    return records


PROBE_COLUMNS = ("dataset", "regime", "seed", "step", "epoch", "layer", "snnl", "temperature", "at_boundary",
                 "train_temperature", "pinned_fraction", "grad_ratio")


def write_probe_log(path: Path, records: Sequence[dict], run: dict, diverged_at: int | None = None) -> None:
    """The probe records so far as CSV (:data:`PROBE_COLUMNS`: the run's identity ``run`` = {dataset,
    regime, seed} on every row, then step, epoch, layer, snnl, temperature, at_boundary and the bonus
    measurements of :mod:`snnl.training.bonus`, empty where not measured), atomically. A run that
    diverged at step ``diverged_at`` adds the column :data:`DIVERGED_COLUMN` holding it on every
    row, so that readers of the log alone leave the run out (:mod:`snnl.experiments.dynamics`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(PROBE_COLUMNS + ((DIVERGED_COLUMN,) if diverged_at is not None else ()))
    for r in records:
        bonus = ["" if r.get(k) is None else repr(r[k]) for k in PROBE_COLUMNS[-3:]]
        w.writerow([run["dataset"], run["regime"], run["seed"], r["step"], f"{r['epoch']:.6g}", r["layer"],
                    repr(r["snnl"]), repr(r["temperature"]), int(r["at_boundary"]), *bonus]
                   + ([diverged_at] if diverged_at is not None else []))
    atomic_write_text(path, buf.getvalue())
