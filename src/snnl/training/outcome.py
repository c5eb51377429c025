"""How a run ends on disk: finished (:func:`write_finished`) or diverged (:func:`write_diverged`).

Either way the run leaves its four outputs (final checkpoint, metrics JSON, per-step log, probe
log) and no resume files, so a pipeline sees a completed job. A diverged run is an outcome of
the protocol, not a crash: its checkpoint and metrics say ``diverged`` = {step, epoch, reason}
(:meth:`snnl.errors.DivergenceError.record`) and hold no weights or accuracies, and every reader
counts it and uses none of its numbers (:func:`snnl.errors.is_diverged`). Recording is what
``snnl train --on-divergence record`` (the pipeline's setting) asks for; the default stops with
the error and keeps the last good resume checkpoint (:mod:`snnl.training.guards`).
"""

from __future__ import annotations

from typing import Any

from snnl.atomic import atomic_write_json
from snnl.checkpoint import atomic_torch_save
from snnl.errors import DivergenceError
from snnl.training import probe as probe_mod
from snnl.training.metrics import diverged_metrics, final_metrics
from snnl.training.resume import checkpoint_state, resume_log_path, resume_path

# What a diverged run's checkpoint does not hold: its state is not finite, or not worth resuming.
NOT_KEPT = ("model", "optimizer", "scheduler", "regularizer")


def _publish(t, metrics: dict[str, Any], checkpoint: dict[str, Any] | None) -> None:
    if t.out is not None and checkpoint is not None:
        atomic_torch_save(t.out, checkpoint)
    t.steplog.publish()
    if t.metrics_path is not None:
        atomic_write_json(t.metrics_path, metrics)
    if t.out is not None:
        for path in (resume_path(t.out), resume_log_path(t.out)):  # the resume files last
            path.unlink(missing_ok=True)


def write_finished(t) -> dict[str, Any]:
    """The final checkpoint (weights checked finite first), the log and the metrics of trainer ``t``
    at its last step; then the resume files go. Returns the metrics."""
    t.check_weights()
    metrics = final_metrics(t)
    _publish(t, metrics, checkpoint_state(t, finished=True, metrics=metrics) if t.out is not None else None)
    return metrics


def diverged_checkpoint(t, metrics: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint of a diverged run: the run's identity, settings, probe records and
    ``diverged``, with empty :data:`NOT_KEPT` states (loadable with ``weights_only=True``;
    :func:`snnl.checkpoint.load_model` refuses it by name)."""
    state = checkpoint_state(t, finished=False, metrics=metrics)
    state.update({key: {} for key in NOT_KEPT}, step=metrics["steps"], diverged=metrics["diverged"])
    return state


def write_diverged(t, err: DivergenceError) -> dict[str, Any]:
    """Record trainer ``t``'s divergence ``err`` as the run's outcome: the diverged checkpoint,
    metrics (:func:`~snnl.training.metrics.diverged_metrics`), the per-step log and probe log up
    to the step before the bad one (marked diverged; measured on weights that may already be huge,
    so for diagnosis only: no reader uses them); then the resume files go. Returns the metrics."""
    t.probe_records = [r for r in t.probe_records if r["step"] < err.step]  # none measured at or after the bad step
    metrics = diverged_metrics(t, err.record())
    if t.probe_log_path is not None:
        probe_mod.write_probe_log(t.probe_log_path, t.probe_records,
                                  {"dataset": t.data.name, "regime": t.regime, "seed": t.seed}, diverged_at=err.step)
    _publish(t, metrics, diverged_checkpoint(t, metrics) if t.out is not None else None)
    return metrics
