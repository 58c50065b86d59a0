"""The only writer of run files: metrics.json, history.csv and the checkpoints folder layout.

metrics.json schema (version 1) - stable keys, documented in the README:
  schema_version, status (running|completed|interrupted|failed), error, task, model, data,
  monitor {metric, mode}, best_epoch, epochs_run, best_val {metric: value}, test {metric: value},
  train_seconds, samples_per_second, device, precision, parameters {total, trainable},
  checkpoints {best, last}, run_dir, overrides
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Public name for other writers of small text files (sweep summaries).
write_text_atomic = _write_atomic


class RunArtifacts:
    """Paths and writers for one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.metrics_path = self.run_dir / "metrics.json"
        self.history_path = self.run_dir / "history.csv"

    def checkpoint(self, name: str) -> Path:
        return self.checkpoint_dir / f"{name}.pt"

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.run_dir))

    def write_metrics(self, record: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(
            self.metrics_path,
            json.dumps({"schema_version": SCHEMA_VERSION, **record}, indent=2) + "\n",
        )

    def read_metrics(self) -> dict[str, Any] | None:
        if not self.metrics_path.is_file():
            return None
        return json.loads(self.metrics_path.read_text())

    def record_failure(self, error: str, overrides: list[str]) -> None:
        """Mark the run failed where the Job could not (a config or build error, a crash).

        A record the Job already closed as failed or interrupted is kept as it is.
        """
        record = self.read_metrics() or {"run_dir": str(self.run_dir), "overrides": overrides}
        if record.get("status") in ("failed", "interrupted"):
            return
        record.pop("schema_version", None)
        self.write_metrics({**record, "status": "failed", "error": error})

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite history.csv from all epoch rows (a resumed run keeps its earlier epochs)."""
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        _write_atomic(self.history_path, buf.getvalue())
