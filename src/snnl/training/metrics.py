"""The final metrics of a run (the metrics JSON): accuracy and loss per split, the run's identity,
its temperatures and probe records, and how it ran (device, threads, wall time)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from snnl.training.batches import to_unit

# Metrics that differ between runs with identical numbers (timing, bookkeeping).
RUN_SPECIFIC_METRICS = {"wall_time_s", "steps_per_second", "resumed_at_steps", "threads", "device"}


@torch.no_grad()
def evaluate(t, split: str) -> dict[str, float] | None:
    """Accuracy and mean cross-entropy of trainer ``t``'s model (eval mode, the regularizer's hooks
    paused) on the data split ``split``, in batches of ``train.eval_batch_size``; None if absent."""
    pair = getattr(t.data, split)
    if pair is None or pair[0].shape[0] == 0:
        return None
    images, labels = pair
    was_training = t.model.training
    t.model.eval()
    correct, loss = 0, 0.0
    bs = t.cfg.eval_batch_size
    try:
        for start in range(0, images.shape[0], bs):
            x = to_unit(images[start : start + bs].to(t.device))
            y = labels[start : start + bs].to(t.device)
            with t.plain_forward():
                logits = t.model(x)
            correct += int((logits.argmax(1) == y).sum())
            loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
    finally:
        t.model.train(was_training)
    n = images.shape[0]
    return {"accuracy": correct / n, "loss": loss / n}


def _run_record(t, evals: dict[str, dict[str, float] | None], temperatures: Any) -> dict[str, Any]:
    """The metrics JSON of trainer ``t`` at its last step, with the split evaluations ``evals``."""
    wall = t.wall_time()
    final_probe = {r["layer"]: {"snnl": r["snnl"], "temperature": r["temperature"], "at_boundary": r["at_boundary"]}
                   for r in t.probe_records if r["step"] == t.step}
    sizes = t.fingerprint["sizes"]
    return {
        "dataset": t.data.name,
        "regime": t.regime,
        "seed": t.seed,
        "model": t.cfg.model,
        "model_spec": t.model.spec,
        "steps": t.step,
        "epochs": t.step / max(t.steps_per_epoch, 1),
        "batch_size": t.batch_size,
        "alpha": t.alpha,
        "layers": t.layers,
        **{f"{s}_accuracy": (e["accuracy"] if e else None) for s, e in evals.items()},
        **{f"{s}_loss": (e["loss"] if e else None) for s, e in evals.items()},
        "n_train": sizes["train"],
        "n_val": sizes["val"],
        "n_test": sizes["test"],
        "temperatures": temperatures,
        "probe_split": t.probe_split,
        "probe_size": int(t.probe_x.shape[0]),
        "snnl_optimal": final_probe,
        "probe": [dict(r) for r in t.probe_records],
        "device": str(t.device),
        "bf16": t.bf16,
        "threads": torch.get_num_threads(),
        "wall_time_s": wall,
        "steps_per_second": (t.step / wall) if wall > 0 else None,
        "resumed_at_steps": list(t.resumed_at),
        "torch_version": str(torch.__version__),
        "config": t.cfg.to_dict(),
        "diverged": None,
    }


def final_metrics(t) -> dict[str, Any]:
    """The metrics JSON of trainer ``t`` at its last step (``diverged``: None)."""
    evals = {s: evaluate(t, s) for s in ("train", "val", "test")}
    return _run_record(t, evals, t.regularizer.current_temperatures())


def diverged_metrics(t, diverged: dict[str, Any]) -> dict[str, Any]:
    """The metrics JSON of a run that diverged (:class:`snnl.errors.DivergenceError`): its identity,
    settings and probe records up to the last good step, no accuracy or loss (every split's is
    None: the weights are not finite, so no number of them means anything), no temperatures, and
    ``diverged``: {step (1-based, the first bad step), epoch, reason}. ``steps`` is the last step
    completed before the bad one. Readers (``snnl evaluate``, ``snnl tables``, the figures) count
    such a run and use none of its numbers (:func:`snnl.errors.is_diverged`)."""
    record = _run_record(t, dict.fromkeys(("train", "val", "test")), None)
    record["steps"] = min(t.step, diverged["step"] - 1)
    record["epochs"] = record["steps"] / max(t.steps_per_epoch, 1)
    record["diverged"] = dict(diverged)
    return record

