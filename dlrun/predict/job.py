"""mode=predict (predictions.csv for new inputs) and the test split's predictions_test.csv that
every training run writes. The rows are made here; artifacts.py writes them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dlrun import record as run_record
from dlrun.artifacts import RunArtifacts
from dlrun.data.bundle import DataBundle, Split
from dlrun.errors import ConfigError
from dlrun.predict.predictor import Predictions, Predictor
from dlrun.tasks.base import Task

log = logging.getLogger("dlrun")


def _values(row: Any) -> list[str]:
    return [f"{float(v):.6g}" for v in row]


def rows_for_test_split(pred: Predictions) -> list[dict[str, Any]]:
    """predictions_test.csv: id, true label, predicted label, one probability per class
    (classification); true and predicted values (regression); the MSE of each reconstruction."""
    rows: list[dict[str, Any]] = []
    labels = pred.labels
    for i, sample in enumerate(pred.ids):
        row: dict[str, Any] = {pred.id_name: sample}
        if pred.probabilities is not None:
            row["true"], row["predicted"] = pred.targets[i], labels[i]
            names = pred.class_names or []
            row.update(
                {f"p_{n}": f"{p:.6g}" for n, p in zip(names, pred.probabilities[i], strict=True)}
            )
        elif pred.values is not None:
            row["true"], row["predicted"] = pred.targets[i], " ".join(_values(pred.values[i]))
        elif pred.errors is not None:
            row["mse"] = f"{float(pred.errors[i]):.6g}"
        rows.append(row)
    return rows


def prediction_rows(pred: Predictions, topk: int) -> list[dict[str, Any]]:
    """predictions.csv: id, the input's other columns, the true label when known, then the
    predicted class, its probability and the top-k (classification) or the value(s)."""
    top = pred.topk(topk) if pred.probabilities is not None else None
    labels = pred.labels
    rows = []
    for i, sample in enumerate(pred.ids):
        row: dict[str, Any] = {pred.id_name: sample}
        row.update({c: v[i] for c, v in pred.extra.items() if c != pred.id_name})
        if pred.targets is not None:
            row["true"] = pred.targets[i]
        if top is not None:
            chosen = (pred.class_names or []).index(labels[i])
            row["predicted"] = labels[i]
            row["probability"] = f"{pred.probabilities[i, chosen]:.6g}"
            for j, (name, p) in enumerate(top[i], start=1):
                row[f"top{j}"], row[f"top{j}_probability"] = name, f"{p:.6g}"
        elif pred.values is not None:
            values = _values(pred.values[i])
            row.update(
                {"predicted": values[0]}
                if len(values) == 1
                else {f"predicted_{j}": v for j, v in enumerate(values)}
            )
        elif pred.errors is not None:
            row["mse"], row["reconstruction"] = f"{float(pred.errors[i]):.6g}", image_name(i)
        else:
            row["image"] = image_name(i)
        rows.append(row)
    return rows


def image_name(i: int) -> str:
    return f"images/{i:05d}.png"


def split_ids(split: Split) -> tuple[list[str], str]:
    """The test split's image paths (image folders) or its row numbers (in-memory data)."""
    files = getattr(split, "files", None)  # an image folder decoded into memory
    if files:
        return list(files), "path"
    source = getattr(split, "source", None)
    samples = getattr(getattr(source, "dataset", None), "samples", None)
    if samples is not None:
        return [str(samples[i][0]) for i in split.indices], "path"
    return [str(i) for i in range(len(split))], "row"


def write_test_predictions(
    task: Task,
    data: DataBundle,
    prep: dict[str, Any],
    artifacts: RunArtifacts,
    precision: str,
    batch_size: int,
    limit_batches: int | None = None,
) -> str | None:
    """predictions_test.csv from the model as it is now (the best weights, after the test pass),
    for the samples the test pass saw (its first `limit_batches` batches when limited)."""
    if task.samples_from_noise:  # a GAN has no per-input answer; its samples are written
        return None
    device = next(task.model.parameters()).device
    predictor = Predictor(task, prep, device, precision, batch_size)
    ids, id_name = split_ids(data.test)
    predictions = predictor.predict_split(data.test, ids, id_name, limit_batches)
    rows = rows_for_test_split(predictions)
    return artifacts.relative(artifacts.write_csv("predictions_test.csv", rows))


def run_predict(cfg: DictConfig, artifacts: RunArtifacts) -> None:
    """mode=predict: predictions.csv (and images/ for generative models) in this run's folder."""
    if not cfg.get("ckpt"):
        raise ConfigError("mode=predict needs ckpt=PATH: a run folder (its best.pt) or a .pt file")
    predictor = Predictor.load(cfg.ckpt, cfg.device.name, cfg.get("plugins") or ())
    pred = _predict(cfg, predictor)
    classes = len(predictor.class_names or [])
    topk = min(cfg.topk or 5, classes) if classes else 0
    csv_path = artifacts.write_csv("predictions.csv", prediction_rows(pred, topk))
    if pred.images is not None:
        for i, image in enumerate(pred.images):
            artifacts.write_png(image_name(i), image)
    scores = pred.scores()
    accuracy = scores.get("accuracy")
    record = run_record.prediction(
        str(cfg.ckpt),
        cfg.get("input"),
        artifacts.relative(csv_path),
        len(pred.ids),
        pred.skipped,
        str(artifacts.run_dir),
        _overrides(),
        accuracy,
    )
    record.update({k: v for k, v in scores.items() if k != "accuracy"})  # regression: mae, ...
    artifacts.write_metrics(record)
    _report(pred, csv_path, scores)


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _predict(cfg: DictConfig, predictor: Predictor) -> Predictions:
    if predictor.task.samples_from_noise:
        if cfg.get("input"):
            raise ConfigError("a GAN makes images from noise: drop input= and give samples=N")
        return predictor.sample(cfg.samples, cfg.seed)
    if not cfg.get("input"):
        raise ConfigError(
            "mode=predict needs input=PATH: a CSV, a text file, an image or a folder of images"
        )
    path = Path(cfg.input)
    return predictor.predict(path, on_error=cfg.predict.on_error)


def _report(pred: Predictions, csv_path: Path, scores: dict[str, float]) -> None:
    for line in pred.skipped[:10]:
        log.warning(f"skipped {line}")
    if len(pred.skipped) > 10:
        log.warning(f"... and {len(pred.skipped) - 10} more inputs skipped")
    against = "labels" if "accuracy" in scores else "values"
    names = {"accuracy": "accuracy", "mae": "MAE", "rmse": "RMSE", "r2": "R^2"}
    shown = ", ".join(f"{names[k]} {v:.4f}" for k, v in scores.items())
    known = f" ({shown} against the {against} in the input)" if scores else ""
    did = "generated" if pred.id_name == "sample" else "predicted"
    log.info(f"{did} {len(pred.ids)} {'images' if did == 'generated' else 'inputs'}{known}")
    log.info(f"wrote {csv_path}")
