"""metrics.json: the run record's one type, and the one place its records are built.

Every writer goes through the builders below (training, mode=eval, mode=predict, a run or sweep
job that failed before it could record itself); RunArtifacts.write_metrics writes the result.
No torch here: the CLI and the sweep's parent process build failure records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from dlrun.loop import LoopState

SCHEMA_VERSION = 1


class RunRecord(TypedDict, total=False):
    """metrics.json (schema_version 1). Which keys a record holds depends on what wrote it: a
    training run all but the mode= ones; mode=eval and mode=predict their own; a run that
    stopped before training only status, error, model, data, run_dir and overrides.

    Keys:
        schema_version: 1 (added by RunArtifacts.write_metrics)
        name, tags: the run's label and labels (name=, tags=[...]), null and [] without
        status: running | completed | interrupted | failed | pruned (an Optuna trial stopped early)
        error: why it failed or was interrupted (one line), else null
        mode: eval | predict (absent for training)
        task: classification | regression | reconstruction | adversarial
        model, data: the class names of model._target_ and data._target_
        data_path: the data file or folder (data.path), null where the data has none
        device, precision: where and in what precision it ran
        parameters: {total, trainable} parameter counts
        run_dir, overrides: the run folder and the command-line overrides as typed
        threads: the thread plan it ran with (dlrun/threads.py: count, why, wait policy, tune)
            and, when a CPU run tuned its count, `tuning` (dlrun/thread_tuner.py: step_ms per
            count, switches, others_busy_cores)
        peak_memory_mb: {host_rss} and, on CUDA, {cuda} (peak allocated)
        hooks: the run's hooks (hooks=[...]) by name, each with what it records (ema: decay,
            updates); {} without hooks
        monitor: {metric, mode} that chose the best epoch (mode=eval: the metric returned)
        best_epoch, epochs_run, early_stopped: the epoch of best.pt, epochs trained, why it ended
        nonfinite_skipped: batches skipped for a non-finite loss (trainer.skip_nonfinite)
        best_val: validation metrics at the best epoch
        test: test metrics of the best weights (training; mode=eval with split=test)
        val: validation metrics (mode=eval with split=val)
        train_seconds, samples_per_second: training time without validation, and throughput
        startup_seconds: from the command's start to the first batch
        checkpoints: {best, last}: the checkpoints present, relative to the run folder
        last_batch: {drop_last, dropped_per_epoch} (trainer.drop_last)
        skipped_files: unreadable images skipped (data.skip_bad=true)
        checkpoint: mode=eval and mode=predict: the checkpoint (or run folder) used
        split: mode=eval: the split evaluated (test | val)
        input, predictions, inputs, skipped: mode=predict: what was read, the CSV written (relative
            to the run folder), how many inputs were predicted and which were skipped
        accuracy: mode=predict on labelled inputs: the share predicted right
    """

    schema_version: int
    name: str | None
    tags: list[str]
    status: str
    error: str | None
    mode: str
    task: str
    model: str
    data: str
    data_path: str | None
    device: str
    precision: str
    parameters: dict[str, int]
    run_dir: str
    overrides: list[str]
    threads: dict[str, Any]
    peak_memory_mb: dict[str, float]
    hooks: dict[str, dict[str, Any]]
    monitor: dict[str, str]
    best_epoch: int | None
    epochs_run: int
    early_stopped: bool
    nonfinite_skipped: int
    best_val: dict[str, Any]
    test: dict[str, Any]
    val: dict[str, Any]
    train_seconds: float
    startup_seconds: float | None
    samples_per_second: float | None
    checkpoints: dict[str, str]
    last_batch: dict[str, Any]
    skipped_files: int
    checkpoint: str
    split: str
    input: str | None
    predictions: str
    inputs: int
    skipped: list[Any]
    accuracy: float


def target_name(target: str | None) -> str:
    """`torchvision.models.resnet18` -> `resnet18`: how the record names a model or dataset."""
    return (target or "").rsplit(".", 1)[-1]


def training(
    status: str,
    state: LoopState,
    about: RunRecord,
    monitor: dict[str, str],
    *,
    error: str | None = None,
    test: dict[str, Any] | None = None,
    startup_seconds: float | None = None,
    checkpoints: dict[str, str],
    last_batch: dict[str, Any],
    skipped_files: int,
) -> RunRecord:
    """A training run's record, rewritten at every checkpoint and at its end. `about` is what
    ran where (RunPieces.about: task, model, data, device, ... peak_memory_mb)."""
    seconds = state.train_seconds
    return {
        "status": status,
        "error": error,
        **about,
        "monitor": monitor,
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        "early_stopped": state.early_stopped,
        "nonfinite_skipped": state.nonfinite_skipped,
        "best_val": state.best_val,
        "test": test or {},
        "train_seconds": round(seconds, 4),
        "startup_seconds": startup_seconds,
        "samples_per_second": round(state.train_samples / seconds, 1) if seconds else None,
        "checkpoints": checkpoints,
        "last_batch": last_batch,
        "skipped_files": skipped_files,
    }


def evaluation(
    about: RunRecord, checkpoint: str, split: str, metrics: dict[str, Any], monitor: dict[str, str]
) -> RunRecord:
    """mode=eval: a checkpoint's metrics on one split, under that split's own key."""
    return {
        "status": "completed",
        "error": None,
        "mode": "eval",
        **about,
        "checkpoint": checkpoint,
        "split": split,
        split: metrics,  # type: ignore[misc]  # "test" or "val"
        "monitor": monitor,
    }


def prediction(
    checkpoint: str,
    input_path: str | None,
    predictions: str,
    inputs: int,
    skipped: list[Any],
    run_dir: str,
    overrides: list[str],
    accuracy: float | None,
) -> RunRecord:
    """mode=predict: what was predicted and where the predictions are."""
    record: RunRecord = {
        "status": "completed",
        "error": None,
        "mode": "predict",
        "checkpoint": checkpoint,
        "input": input_path,
        "predictions": predictions,
        "inputs": inputs,
        "skipped": skipped,
        "run_dir": run_dir,
        "overrides": overrides,  # so dlrun-summary names this folder by its command
    }
    if accuracy is not None:
        record["accuracy"] = accuracy
    return record


def failed_before_training(
    error: str, model_target: str, data_target: str, run_dir: str, overrides: list[str]
) -> RunRecord:
    """A run that stopped on a config or data error before its job could record itself."""
    return {
        "status": "failed",
        "error": error,
        "model": target_name(model_target),
        "data": target_name(data_target),
        "run_dir": run_dir,
        "overrides": overrides,
    }


def marked_failed(
    previous: dict[str, Any] | None, error: str, run_dir: str, overrides: list[str]
) -> RunRecord | None:
    """A sweep job's record marked failed (its own record kept, else a minimal one); None when
    the job already closed its record as failed or interrupted (that record is kept as it is)."""
    base = previous or {"run_dir": run_dir, "overrides": overrides}
    if base.get("status") in ("failed", "interrupted"):
        return None
    kept = {k: v for k, v in base.items() if k != "schema_version"}
    return {**kept, "status": "failed", "error": error}  # type: ignore[typeddict-item]
