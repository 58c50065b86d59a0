"""The only writer of run files: metrics.json, history.csv, steps.csv, plots/, the pictures tasks
return (image grids) and the checkpoints folder layout.

metrics.json holds one dlrun.record.RunRecord (its keys are documented there and in
docs/usage.md); dlrun/record.py builds every record, write_metrics writes it.
"""

from __future__ import annotations

import csv
import errno
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlrun import record as run_record
from dlrun import safe_files
from dlrun.errors import DataError

if TYPE_CHECKING:
    from dlrun.picture import Picture
    from dlrun.record import RunRecord


def _write_atomic(path: Path, text: str | bytes) -> None:
    safe_files.write_atomic(path, text)


# Public name for other writers of small text files (sweep summaries).
write_text_atomic = _write_atomic


class RunArtifacts:
    """Paths and writers for one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.metrics_path = self.run_dir / "metrics.json"
        self.history_path = self.run_dir / "history.csv"
        self.steps_path = self.run_dir / "steps.csv"
        self.plots_dir = self.run_dir / "plots"

    def checkpoint(self, name: str) -> Path:
        return self.checkpoint_dir / f"{name}.pt"

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.run_dir))

    def write_metrics(self, record: RunRecord, in_place_if_full: bool = False) -> None:
        """Atomically; with `in_place_if_full`, a full disk (no room for the temporary file)
        rewrites the existing file in place instead, so a failure is still recorded."""
        safe_files.make_dirs(self.run_dir)
        text = json.dumps({"schema_version": run_record.SCHEMA_VERSION, **record}, indent=2) + "\n"
        try:
            _write_atomic(self.metrics_path, text)
        except OSError as err:
            if not (in_place_if_full and err.errno == errno.ENOSPC and self.metrics_path.is_file()):
                raise
            with safe_files.open_rewrite(self.metrics_path) as f:  # reuses the file's own blocks
                f.write(text)
                f.truncate()

    def read_metrics(self) -> dict[str, Any] | None:
        """The folder's record as plain data; one that is not a JSON object is a one-line
        DataError (a continued folder may be someone else's, or damaged)."""
        if not self.metrics_path.is_file():
            return None
        try:
            record = json.loads(self.metrics_path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            record, reason = None, str(err).splitlines()[0]
        else:
            reason = f"a JSON {type(record).__name__}, not an object"
        if not isinstance(record, dict):
            raise DataError(
                f"{self.metrics_path} is not a dlrun record ({reason}): it is damaged or not "
                "dlrun's; move it away, or use another folder"
            )
        return record

    def record_failure(self, error: str, overrides: list[str]) -> None:
        """Mark the run failed where the Run could not (a config or build error, a crash).

        A record the Run already closed as failed or interrupted is kept as it is.
        """
        try:
            earlier = self.read_metrics()
        except DataError:  # a damaged record: the failure is recorded in its place
            earlier = None
        record = run_record.marked_failed(earlier, error, str(self.run_dir), overrides)
        if record is not None:
            self.write_metrics(record)

    def write_text(self, name: str, text: str) -> Path:
        path = self.run_dir / name
        safe_files.make_dirs(path.parent)
        _write_atomic(path, text)
        return path

    def write_model_yaml(
        self, config: dict[str, Any], preprocessing: dict[str, Any], name: str = "model.yaml"
    ) -> Path:
        """The config that builds the model, then `preprocessing:` (what a prediction needs).
        The preprocessing is dumped by PyYAML, not OmegaConf: a vocabulary token such as '???'
        or '${x}' must stay text."""
        import yaml
        from omegaconf import OmegaConf

        body = OmegaConf.to_yaml(OmegaConf.create(config))
        return self.write_text(
            name,
            body
            + yaml.safe_dump(
                {"preprocessing": preprocessing},
                sort_keys=False,
                allow_unicode=True,
                default_flow_style=None,
            ),
        )

    def write_json(self, name: str, content: Any) -> None:
        """A small JSON file the data or task asks for (e.g. labels.json: class name -> index)."""
        safe_files.make_dirs(self.run_dir)
        _write_atomic(self.run_dir / name, json.dumps(content, indent=2) + "\n")

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

    def append_steps(self, row: dict[str, Any]) -> None:
        """Append one logging-interval row to steps.csv (appending keeps a resumed run's rows)."""
        new = not self.steps_path.is_file()
        columns = list(row)
        if not new:  # keep the file's own columns (a resumed run appends under the same header)
            with self.steps_path.open(newline="") as f:
                columns = next(csv.reader(f), columns)
        with safe_files.open_append(self.steps_path) as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def write_picture(self, name: str, picture: Picture) -> Path:
        """A task's picture as one PNG grid at run_dir/<name>; returns its path."""
        path = self.run_dir / name
        write_image_grid(path, picture.images, picture.per_row)
        return path

    def write_csv(self, name: str, rows: list[dict[str, Any]]) -> Path:
        """A CSV of rows (predictions.csv, predictions_test.csv); columns in first-seen order.
        Text from the inputs or a checkpoint (ids, class names, carried columns) that a
        spreadsheet would run as a formula is neutralised (see `spreadsheet_safe`)."""
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=[spreadsheet_safe(c) for c in columns], restval="")
        writer.writeheader()
        writer.writerows(
            {spreadsheet_safe(k): spreadsheet_safe(v) for k, v in r.items()} for r in rows
        )
        return self.write_text(name, buf.getvalue())

    def write_png(self, name: str, image: Any) -> Path:
        """One (C, H, W) image with values in [0, 1] as a PNG at its own size."""
        path = self.run_dir / name
        safe_files.make_dirs(path.parent)
        _write_atomic(path, _png(np.asarray(image, dtype=np.float32)))
        return path

    def write_bytes(self, name: str, content: bytes) -> Path:
        """A binary file of the run (an exported model.onnx / model.torchscript.pt)."""
        path = self.run_dir / name
        safe_files.make_dirs(path.parent)
        _write_atomic(path, content)
        return path

    def write_plot(self, name: str, png: bytes) -> Path:
        """Write plots/<name> atomically; returns its path."""
        safe_files.make_dirs(self.plots_dir)
        path = self.plots_dir / name
        _write_atomic(path, png)
        return path


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that starts like a formula (= + - @, or a tab/CR before one) gets a leading
    apostrophe, as OWASP's CSV-injection advice says: Excel, LibreOffice and Sheets then show it
    as text instead of running it. Numbers (-0.5, +3) are left as numbers."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_STARTS):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def write_image_grid(path: Path, images: Any, per_row: int, min_tile: int = 32) -> None:
    """Write (N, C, H, W) images with values in [0, 1] as one PNG grid (torchvision's make_grid).

    C is 1 (a grey PNG) or 3 (RGB). Small images are enlarged by whole-pixel repetition (nearest
    neighbour) so each tile is at least `min_tile` pixels high; tiles are separated by 2 px of grey.
    """
    import torch
    from PIL import Image
    from torchvision.utils import make_grid  # here: runs without pictures never import torchvision

    pixels = torch.as_tensor(images).detach().float().cpu().clamp(0, 1)
    scale = max(1, -(-min_tile // pixels.shape[2]))
    pixels = pixels.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    grid = make_grid(pixels, nrow=per_row, padding=2, pad_value=0.5)  # grey comes back as RGB
    grid = grid[:1] if pixels.shape[1] == 1 else grid
    picture = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).squeeze(2)  # PIL: (H, W[, 3])
    buf = io.BytesIO()
    Image.fromarray(picture.numpy()).save(buf, format="PNG")
    safe_files.make_dirs(path.parent)
    _write_atomic(path, buf.getvalue())


def _png(pixels: np.ndarray) -> bytes:
    """(C, H, W) values in [0, 1], C = 1 or 3, as PNG bytes."""
    from PIL import Image

    picture = (np.clip(pixels, 0.0, 1.0) * 255).round().astype(np.uint8)
    picture = picture[0] if len(picture) == 1 else picture.transpose(1, 2, 0)  # PIL: (H, W[, 3])
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    return buf.getvalue()
