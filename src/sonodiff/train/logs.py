"""Training logs: a CSV file, TensorBoard scalars and a progress bar (rank 0 only).

The running CSV (columns :data:`sonodiff.contracts.model_file.TRAIN_LOG_COLUMNS`) lives next
to the checkpoints (``checkpoints/train_log.csv``), so a job killed and rerun keeps its history:
on resume at step s the rows after s are dropped (they belong to the lost part of the run) and
new rows are appended. The finished log is copied atomically to the declared output
``train_log.csv`` beside ``model.pt``. TensorBoard events resumed at step s purge the later
events the same way (``purge_step``).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from sonodiff.contracts.model_file import TRAIN_LOG_COLUMNS as COLUMNS
from sonodiff.io import atomic_path

log = logging.getLogger(__name__)


class TrainLogger:
    """Append rows to the CSV and TensorBoard; ``close()`` when done; ``finish(path)`` copies the CSV."""

    def __init__(self, csv_path: str | Path, tensorboard_dir: str | Path | None, start_step: int):
        self.csv_path = Path(csv_path)
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if start_step > 0 and self.csv_path.is_file():
            with open(self.csv_path, newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if r.get("step", "").isdigit() and int(r["step"]) <= start_step]
        with atomic_path(self.csv_path) as tmp:
            with open(tmp, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        self.writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(tensorboard_dir), purge_step=start_step if start_step > 0 else None)
            except ImportError as err:  # tensorboard is optional at run time
                log.warning("no TensorBoard logs: %s", err)

    def write(self, row: dict) -> None:
        with open(self.csv_path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        if self.writer is not None:
            for key in COLUMNS[1:]:
                if key in row:
                    self.writer.add_scalar(f"train/{key}", row[key], row["step"])

    def finish(self, target: str | Path) -> None:
        """Copy the CSV atomically to ``target``."""
        with atomic_path(target) as tmp:
            tmp.write_bytes(self.csv_path.read_bytes())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
