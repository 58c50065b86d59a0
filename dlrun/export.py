"""Exports of a trained model: ONNX (model.onnx) and TorchScript (model.torchscript.pt), each
checked against the PyTorch model on test inputs, with model.yaml (config + preprocessing) beside.

What is exported takes the model's own input, after preprocessing (normalised images); a table
model takes its raw columns, one input per column, the preprocessing inside the graph
(dlrun/export_table.py, with categories.json beside); model.yaml says how to get there.
Classifiers return logits, regressors values in the model's scale (a raw-column table model: in
the target's units; otherwise model.yaml's table.target_mean/target_std give them), an
autoencoder [0, 1] pixels, a GAN's generator images in [-1, 1] from noise (B, latent_dim). Text
models (variable-length token ids with packed RNNs) are refused in one line.
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from dlrun.artifacts import RunArtifacts
from dlrun.data.bundle import Split
from dlrun.errors import ConfigError, DlrunError
from dlrun.tasks.base import Task

log = logging.getLogger("dlrun")

FORMATS = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
TOLERANCE = 1e-4  # largest |exported - PyTorch| accepted on the check batch
CHECK_SAMPLES = 64


def exportable(model: nn.Module, task: Task, prep: dict[str, Any]) -> tuple[nn.Module, str]:
    """(the module to export, what it takes), or one line on why this model cannot be."""
    if prep["kind"] == "text":
        raise ConfigError(
            "text models take variable-length token ids (and lengths for packed RNNs) and are "
            "not exported: use mode=predict or dlrun.load(RUN).predict([...]) instead"
        )
    return task.exported_module(model)  # the task says what its export is


def example_inputs(split: Split | None, task: Task, takes: str) -> Tensor:
    """Up to CHECK_SAMPLES real test inputs, preprocessed (noise for a generator)."""
    if takes == "noise":
        gen = torch.Generator().manual_seed(0)
        return torch.randn(CHECK_SAMPLES, task.latent_dim, generator=gen)
    batch = next(iter(split.batches(CHECK_SAMPLES)))
    return batch["x"].float().cpu()


def to_bytes(
    module: nn.Module, x: Tensor | tuple[Tensor, ...], fmt: str, names: list[str] | None = None
) -> bytes:
    """The serialised model (both exporters are deprecated in torch 2.9+ but still the ones that
    need no extra packages; their warnings are silenced). Several inputs (a table's raw
    columns) are named by `names`."""
    inputs = x if isinstance(x, tuple) else (x,)
    names = names or ["input"]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            axes = {n: {0: "batch"} for n in [*names, "output"]}
            torch.onnx.export(
                module,
                inputs,
                buf,
                input_names=names,
                output_names=["output"],
                dynamic_axes=axes,
                dynamo=False,
            )
        else:
            torch.jit.save(torch.jit.trace(module, inputs), buf)
    return buf.getvalue()


def run_exported(
    content: bytes, fmt: str, x: Tensor | tuple[Tensor, ...], names: list[str] | None = None
) -> np.ndarray | None:
    """The exported model's output on x; None for ONNX when onnxruntime is not installed."""
    inputs = x if isinstance(x, tuple) else (x,)
    if fmt == "onnx":
        try:
            import onnxruntime
        except ImportError:
            return None
        session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
        feed = dict(zip(names or ["input"], (t.numpy() for t in inputs), strict=True))
        return session.run(None, feed)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(io.BytesIO(content))
    with torch.no_grad():
        return loaded(*inputs).numpy()


def raw_table(prep: dict[str, Any], task: Task) -> Any:
    """The table preprocessing exported inside the graph, where the task's export takes the
    table's columns (Task.exports_raw_columns: classification, regression); else None."""
    if prep["kind"] != "table" or not prep.get("table") or not task.exports_raw_columns:
        return None
    from dlrun.data.table_prep import TablePreprocessing

    return TablePreprocessing.from_state(prep["table"])


def export_raw_table(model: nn.Module, table: Any, fmt: str) -> tuple[bytes, float | None]:
    """A table model taking raw columns (dlrun/export_table.py), checked on raw rows against
    the model behind the prediction path's preprocessing."""
    from dlrun.export_table import RawColumns, raw_rows, reference

    module = RawColumns(model.cpu().eval(), table).eval()
    inputs, frame = raw_rows(table, CHECK_SAMPLES)
    try:
        content = to_bytes(module, inputs, fmt, table.features)
    except Exception as err:  # an operator the exporter lacks: say so, no traceback
        raise DlrunError(f"format={fmt}: this model could not be exported ({err})") from None
    got = run_exported(content, fmt, inputs, table.features)
    expected = reference(module, table, frame)
    # relative where values are large (a regression in the target's units: float32 rounding)
    diff = (
        None
        if got is None
        else float((np.abs(got - expected) / np.maximum(1.0, np.abs(expected))).max())
    )
    if diff is not None and diff > TOLERANCE:
        raise DlrunError(
            f"format={fmt}: the exported model differs from mode=predict by {diff:.2g} "
            f"(more than {TOLERANCE}) on raw rows; it was not written"
        )
    return content, diff


def export_model(
    model: nn.Module, task: Task, split: Split | None, prep: dict[str, Any], fmt: str
) -> tuple[bytes, float | None]:
    """(file content, max |exported - PyTorch| on test inputs, None when not checkable)."""
    table = raw_table(prep, task)
    if table is not None:
        return export_raw_table(model, table, fmt)
    module, takes = exportable(model, task, prep)
    module = module.cpu().eval()
    x = example_inputs(split, task, takes)
    try:
        content = to_bytes(module, x, fmt)
    except Exception as err:  # an operator the exporter lacks: say so, no traceback
        raise DlrunError(f"format={fmt}: this model could not be exported ({err})") from None
    with torch.no_grad():
        expected = module(x).numpy()
    got = run_exported(content, fmt, x)
    diff = None if got is None else float(np.abs(got - expected).max())
    if diff is not None and diff > TOLERANCE:
        raise DlrunError(
            f"format={fmt}: the exported model differs from PyTorch by {diff:.2g} "
            f"(more than {TOLERANCE}) on test inputs; it was not written"
        )
    return content, diff


def export_run(
    model: nn.Module,
    task: Task,
    split: Split | None,
    prep: dict[str, Any],
    config: dict[str, Any],
    artifacts: RunArtifacts,
    formats: list[str],
    checked_on: str = "test inputs",
) -> list[str]:
    """Write each format into the run folder (model.yaml is written beside); their names."""
    device = next(model.parameters()).device
    written = []
    try:
        for fmt in formats:
            content, diff = export_model(model, task, split, prep, fmt)
            path = artifacts.write_bytes(FORMATS[fmt], content)
            checked = (
                f"max difference {diff:.1e} on {checked_on}"
                if diff is not None
                else "not checked: pip install onnxruntime"
            )
            log.info(f"exported {path} ({checked})")
            written.append(artifacts.relative(path))
    finally:
        model.to(device)
    if not (artifacts.run_dir / "model.yaml").is_file():
        artifacts.write_model_yaml(config, prep)
    table = raw_table(prep, task)
    if table is not None and written:  # the level -> code maps the graph's inputs use
        from dlrun.export_table import CATEGORIES_JSON, category_codes

        artifacts.write_json(CATEGORIES_JSON, category_codes(table))
        written.append(CATEGORIES_JSON)
    return written


def run_export(cfg: DictConfig, artifacts: RunArtifacts) -> None:
    """mode=export ckpt=RUN format=onnx|torchscript: the files in this run's folder."""
    from dlrun.predict.predictor import Predictor

    if not cfg.get("ckpt"):
        raise ConfigError("mode=export needs ckpt=PATH: a run folder (its best.pt) or a .pt file")
    predictor = Predictor.load(cfg.ckpt, "cpu", cfg.get("plugins") or ())
    split = _test_inputs(cfg, predictor)
    export_run(
        predictor.task.model,
        predictor.task,
        split,
        predictor.prep,
        predictor.config,
        artifacts,
        [cfg.format],
        f"{CHECK_SAMPLES} random inputs" if split is not None else "random noise",
    )


def _test_inputs(cfg: DictConfig, predictor: Any) -> Split | None:
    """Inputs the export is checked on: random ones shaped like the training inputs after
    preprocessing (normalised, so on the scale the model saw). A training run with
    export=[...] checks on its real test split instead."""
    if predictor.prep["kind"] == "text" or predictor.task.samples_from_noise:
        return None
    from dlrun.data.bundle import InMemorySplit

    shape = tuple(predictor.prep["input_shape"])
    x = torch.randn(CHECK_SAMPLES, *shape, generator=torch.Generator().manual_seed(0))
    return InMemorySplit({"x": x})
