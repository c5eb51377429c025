"""The per-step CSV log of a run: one :class:`StepRow` per logged step (``train.log_every``).

While training runs, rows go to a work file next to the resume checkpoint (``OUT.resume.csv``):
Snakemake deletes a killed job's outputs before rerunning it, so the rows logged before the
resume checkpoint must live next to it. On resume the work file is cut back to the checkpoint's
step; at the end it is copied to the log (:meth:`StepLog.publish`).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from snnl.atomic import atomic_write_bytes, atomic_write_text


class StepRow(NamedTuple):
    """What one logged step measured: the step (1-based) and the epoch it ran in, its learning
    rate, the batch's cross-entropy, total objective and accuracy, and per entangled layer (in
    the order of ``train.layers``) the SNNL and the online temperature."""

    step: int
    epoch: int
    lr: float
    ce: float
    total: float
    snnl: tuple[float, ...]
    temperatures: tuple[float, ...]
    batch_accuracy: float

    def cells(self) -> list:
        """The CSV cells, in the order of :meth:`StepLog.columns` (floats as ``repr``: exact)."""
        values = [self.lr, self.ce, self.total, *self.snnl, *self.temperatures, self.batch_accuracy]
        return [self.step, self.epoch] + [repr(v) for v in values]


class StepLog:
    """The per-step CSV at ``path`` (None: no log), written through ``work`` while training runs."""

    def __init__(self, path: Path | None, work: Path | None, layers: Sequence[str]):
        self.path, self.work = path, work if path is not None else None
        self.columns = (["step", "epoch", "lr", "ce", "total"] + [f"snnl/{n}" for n in layers]
                        + [f"T/{n}" for n in layers] + ["batch_accuracy"])
        self._fh = None
        self._writer = None

    def open(self, keep_upto: int | None, is_log_step: Callable[[int], bool], say: Callable[[str], None]) -> None:
        """Start the work file: its header, then, when resuming at step ``keep_upto``, the rows
        logged up to that step (from the work file, else from a log an older version wrote)."""
        if self.work is None:
            return
        header = ",".join(self.columns)
        rows: list[str] = []
        if keep_upto:
            source = next((p for p in (self.work, self.path) if p.exists()), None)
            lines = source.read_text().splitlines() if source is not None else []
            if lines and lines[0] == header:
                for line in lines[1:]:
                    parts = line.split(",")
                    if len(parts) == len(self.columns) and parts[0].isdigit() and int(parts[0]) <= keep_upto:
                        rows.append(line)
            expected = sum(1 for step in range(1, keep_upto + 1) if is_log_step(step))
            if len(rows) != expected:
                say(f"warning: {source or self.work} holds {len(rows)} rows for the {expected} logged steps before the resume")
        atomic_write_text(self.work, "\n".join([header] + rows) + "\n")
        self._fh = open(self.work, "a", newline="")
        self._writer = csv.writer(self._fh, lineterminator="\n")

    def write(self, row: StepRow) -> None:
        if self._writer is not None:
            self._writer.writerow(row.cells())

    def flush(self) -> None:
        """Rows so far on disk (before a resume checkpoint refers to them)."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.flush()
            self._fh.close()
            self._fh = self._writer = None

    def publish(self) -> None:
        """At the end of the run: the work file copied (atomically) to the log."""
        self.close()
        if self.work is not None and self.work != self.path:
            atomic_write_bytes(self.path, self.work.read_bytes())
