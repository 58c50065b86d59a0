"""Run loggers chosen with `logger=`: csv (the default), tensorboard, mlflow; several with a list,
e.g. `logger=[csv,tensorboard]`. Built from conf/logger/ by build.build_loggers.

Every logger gets the mean training values every `trainer.log_every_n_steps` batches
(`log_step`), each epoch's history row (`log_epoch`), the pictures a task returns after an
epoch (`log_images`, the same ones the run writes as <name>/epoch_NNN.png), and at the end the
run's record from metrics.json and the PNG files of the task's final pictures (`finish`).
history.csv is written by the run itself, whatever the loggers.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from dlrun.artifacts import RunArtifacts
from dlrun.errors import ConfigError
from dlrun.loop import LoopState
from dlrun.picture import Picture


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The config as `a.b.c -> scalar` pairs (lists and None as text) for hparams/params views."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def run_choices(config: dict[str, Any]) -> dict[str, Any]:
    """What was chosen for this run, as `name -> scalar`: each config group's option
    (model=mlp, optimizer=adam), every override (optimizer.lr=0.003, its value as the config holds
    it), name and tags - not every key and `_target_` of the composed config. Outside a Hydra run
    (the Python API without Hydra): the config's keys less the `_target_`s."""
    from hydra.core.hydra_config import HydraConfig

    flat = flat_params(config)
    if not HydraConfig.initialized():
        return {k: v for k, v in flat.items() if not k.endswith("_target_")}
    hc = HydraConfig.get()
    chosen: dict[str, Any] = {
        str(group): str(option)
        for group, option in hc.runtime.choices.items()
        if option is not None and not str(group).startswith("hydra")
    }
    for override in hc.overrides.task:
        key, _, text = str(override).lstrip("+~").partition("=")
        if key not in chosen:
            chosen[key] = flat.get(key, text)
    if config.get("name"):
        chosen["name"] = str(config["name"])
    if config.get("tags"):
        chosen["tags"] = ",".join(str(t) for t in config["tags"])
    return chosen


def final_metrics(record: dict[str, Any]) -> dict[str, float]:
    """best_val_<metric> and test_<metric> numbers from a metrics.json record."""
    out = {}
    for section, prefix in (("best_val", "best_val_"), ("test", "test_")):
        for k, v in (record.get(section) or {}).items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[prefix + k] = float(v)
    return out


def epoch_tag(key: str) -> str:
    """History column -> a grouped TensorBoard tag: train_loss -> train/loss, val_f1 -> val/f1."""
    for split in ("train", "val"):
        if key.startswith(split + "_"):
            return f"{split}/{key[len(split) + 1 :]}"
    return {"seconds": "time/epoch_seconds"}.get(key, key)


class Logger:
    """Base class: every hook is optional. Runtime arguments `artifacts` and `run_config` (the
    resolved config as plain containers) are passed by the Run; the rest come from
    conf/logger/<name>.yaml."""

    shows_images: ClassVar[bool] = False

    def __init__(self, artifacts: RunArtifacts, run_config: dict[str, Any]) -> None:
        self.artifacts, self.config = artifacts, run_config
        # the run's batches so far, set before every log_epoch: the x-axis per-step values use
        self.batches_done = 0

    @property
    def name(self) -> str | None:
        """The run's `name=` label, if any."""
        return self.config.get("name")

    @property
    def tags(self) -> list[str]:
        """The run's `tags=[...]` labels."""
        return [str(t) for t in self.config.get("tags") or []]

    def log_step(self, step: int, values: dict[str, float]) -> None:
        """Mean training values over the last logging interval; `step` counts batches."""

    def log_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        """One history row (train_*, val_*, lr, seconds)."""

    def log_images(self, epoch: int, pictures: dict[str, Picture]) -> None:
        """The task's pictures after an epoch, by name (only called when `shows_images`)."""

    def finish(self, status: str, record: dict[str, Any], files: list[Path]) -> None:
        """The run ended (completed|interrupted|failed); `files` are PNGs the task wrote."""

    def close(self) -> None:
        """Release files and connections; called once, also at interpreter exit."""


class CSVLogger(Logger):
    """steps.csv: one row per logging interval (step, mean training loss(es), lr)."""

    def log_step(self, step: int, values: dict[str, float]) -> None:
        self.artifacts.append_steps({"step": step, **values})


class TensorBoardLogger(Logger):
    """Event files in the run folder: `tensorboard --logdir outputs` compares runs and sweeps."""

    shows_images = True

    def __init__(
        self, artifacts: RunArtifacts, run_config: dict[str, Any], flush_secs: int = 30
    ) -> None:
        super().__init__(artifacts, run_config)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "logger=tensorboard needs tensorboard: "
                "pip install 'dlrun[tensorboard]' (or tensorboard)"
            ) from None
        self.writer = SummaryWriter(log_dir=str(artifacts.run_dir), flush_secs=flush_secs)
        self.last_epoch = 0
        if self.name or self.tags:  # the run's labels, on the Text tab
            self.writer.add_text("run", f"name: {self.name or ''}; tags: {', '.join(self.tags)}")

    def log_step(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(f"step/{key}", value, step)

    def log_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        # One x-axis for every scalar: the run's batches, as the per-step ones use; the epoch
        # itself is a scalar (time/epoch) to read an epoch off that axis.
        self.last_epoch, step = epoch, self.batches_done
        for key, value in row.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(
                    "time/epoch" if key == "epoch" else epoch_tag(key), value, step
                )

    def log_images(self, epoch: int, pictures: dict[str, Picture]) -> None:
        for name, picture in pictures.items():  # a batch: TensorBoard tiles it into one grid
            images = picture.images.detach().float().clamp(0, 1).cpu()
            self.writer.add_images(f"images/{name}", images, self.batches_done)

    def finish(self, status: str, record: dict[str, Any], files: list[Path]) -> None:
        import numpy as np
        from PIL import Image

        for path in files:
            with Image.open(path) as img:
                pixels = np.asarray(img.convert("RGB"))
            self.writer.add_image(
                f"files/{path.name}", pixels, self.batches_done, dataformats="HWC"
            )
        metrics = {f"hparam/{k}": v for k, v in final_metrics(record).items()}
        if metrics:  # the HParams tab: this run's choices beside its final metrics
            # run_name="." keeps the hparams in this run's folder instead of a timestamped
            # subfolder.
            self.writer.add_hparams(
                run_choices(self.config), metrics, run_name=".", global_step=self.batches_done
            )
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MLflowLogger(Logger):
    """An MLflow run per dlrun run: params, per-step and per-epoch metrics, plots as artifacts."""

    _STATUS: ClassVar[dict[str, str]] = {
        "completed": "FINISHED",
        "interrupted": "KILLED",
        "failed": "FAILED",
        "pruned": "KILLED",
    }

    def __init__(
        self,
        artifacts: RunArtifacts,
        run_config: dict[str, Any],
        tracking_uri: str | None = None,
        experiment_name: str = "dlrun",
        run_name: str | None = None,
    ) -> None:
        super().__init__(artifacts, run_config)
        try:
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError(
                "logger=mlflow needs mlflow: pip install 'dlrun[mlflow]' (or mlflow-skinny)"
            ) from None
        if tracking_uri is None:
            store = Path("outputs/mlruns").resolve()
            store.mkdir(parents=True, exist_ok=True)
            tracking_uri = store.as_uri()
        if tracking_uri.startswith("file:") or "://" not in tracking_uri:
            # MLflow 3 refuses a plain-folder store unless asked for; a local folder is the point.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=tracking_uri)
        tags = {"dlrun.run_dir": str(artifacts.run_dir), **{t: "" for t in self.tags}}
        if self.tags:
            tags["dlrun.tags"] = ",".join(self.tags)
        run = self.client.create_run(
            self._experiment_id(experiment_name),
            run_name=run_name or self.name or _short_name(artifacts.run_dir),
            tags=tags,
        )
        self.run_id = run.info.run_id
        params = [Param(k, str(v)[:500]) for k, v in flat_params(run_config).items()]
        for chunk in _chunks(params, 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=chunk)
        self.status = "RUNNING"

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except MlflowException:  # a parallel sweep job created it first
            return self.client.get_experiment_by_name(name).experiment_id

    def _log(self, values: dict[str, Any], step: int, prefix: str = "") -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(prefix + k, float(v), now, step)
            for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        for chunk in _chunks(metrics, 1000):
            self.client.log_batch(self.run_id, metrics=chunk)

    def log_step(self, step: int, values: dict[str, float]) -> None:
        self._log(values, step, prefix="step_")

    def log_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        self._log({k: v for k, v in row.items() if k != "epoch"}, epoch)

    def finish(self, status: str, record: dict[str, Any], files: list[Path]) -> None:
        import yaml

        self._log(final_metrics(record), int(record.get("epochs_run") or 0))
        if self.artifacts.plots_dir.is_dir():
            self.client.log_artifacts(self.run_id, str(self.artifacts.plots_dir), "plots")
        # The whole run: its resolved config, its record, the best model (weights and the
        # model.yaml that says how to use them), beside the history and pictures. Tools that find
        # runs by their metrics.json skip MLflow's store (dlrun/summary.py).
        config = yaml.safe_dump(self.config, sort_keys=False)
        self.client.log_text(self.run_id, config, "config.yaml")
        run = self.artifacts.run_dir
        for path in [self.artifacts.history_path, run / "metrics.json", *files]:
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        for name in ("model.safetensors", "model.yaml"):
            if (run / name).is_file():
                self.client.log_artifact(self.run_id, str(run / name), "model")
        self.status = self._STATUS.get(status, "FAILED")

    def close(self) -> None:
        # A run that never reached finish() (a crash) is recorded as failed, not left running.
        self.client.set_terminated(
            self.run_id, "FAILED" if self.status == "RUNNING" else self.status
        )


class WandbLogger(Logger):
    """A Weights & Biases run per dlrun run: the run's choices and whole config, per-step and
    per-epoch values on one x-axis (the run's batches; `epoch` is a value of its own), final
    metrics in the summary, the record and model.yaml saved with it. WANDB_MODE=offline keeps it
    in <run folder>/wandb for a later `wandb sync`."""

    shows_images = True

    def __init__(
        self,
        artifacts: RunArtifacts,
        run_config: dict[str, Any],
        project: str = "dlrun",
        entity: str | None = None,
        mode: str | None = None,
    ) -> None:
        super().__init__(artifacts, run_config)
        try:
            import wandb
        except ImportError:
            raise ConfigError(
                "logger=wandb needs wandb: pip install 'dlrun[wandb]' (or wandb)"
            ) from None
        self.wandb = wandb
        self.run = wandb.init(
            project=project,
            entity=entity,
            mode=mode,  # None: WANDB_MODE decides (online unless set)
            dir=str(artifacts.run_dir),
            name=self.name or _short_name(artifacts.run_dir),
            tags=self.tags or None,
            config={**run_choices(run_config), "config": run_config},
            reinit="create_new",  # a sweep runs many jobs in one process
        )

    def log_step(self, step: int, values: dict[str, float]) -> None:
        self.run.log({f"step/{k}": v for k, v in values.items()}, step=step)

    def log_epoch(self, epoch: int, row: dict[str, Any]) -> None:
        values = {
            epoch_tag(k): v
            for k, v in row.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        self.run.log({**values, "epoch": epoch}, step=self.batches_done)

    def log_images(self, epoch: int, pictures: dict[str, Picture]) -> None:
        images = {
            f"images/{name}": [
                self.wandb.Image(img.permute(1, 2, 0).float().clamp(0, 1).cpu().numpy())
                for img in picture.images
            ]
            for name, picture in pictures.items()
        }
        self.run.log(images, step=self.batches_done)

    def finish(self, status: str, record: dict[str, Any], files: list[Path]) -> None:
        self.run.summary.update({**final_metrics(record), "status": status})
        run = self.artifacts.run_dir
        for path in [run / "metrics.json", run / "model.yaml", self.artifacts.history_path]:
            if path.is_file():
                self.run.save(str(path), base_path=str(run), policy="now")
        self.exit_code = 0 if status in ("completed", "pruned") else 1

    def close(self) -> None:
        self.run.finish(exit_code=getattr(self, "exit_code", 1))


def _short_name(run_dir: Path) -> str:
    """The run folder below outputs/ (e.g. multirun/2026-01-02/10-00-00-ab12cd/3), else its name."""
    try:
        return str(run_dir.resolve().relative_to(Path("outputs").resolve()))
    except ValueError:
        return run_dir.name


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Loggers:
    """The run's loggers as one loop callback (per step and per epoch), closed exactly once."""

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = loggers
        self.closed = False
        atexit.register(self.close)  # flush event files even if the run dies of a bug

    def on_step(self, step: int, values: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.log_step(step, values)

    def on_epoch_end(self, state: LoopState, row: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.batches_done = state.batches_done
            logger.log_epoch(row["epoch"], row)

    def log_images(self, epoch: int, pictures: dict[str, Picture]) -> None:
        """The task's pictures after an epoch, to the loggers that show images."""
        for logger in self.loggers:
            if logger.shows_images:
                logger.log_images(epoch, pictures)

    def finish(self, status: str, record: dict[str, Any], files: list[Path]) -> None:
        try:
            for logger in self.loggers:
                logger.finish(status, record, files)
        finally:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)  # a sweep runs many jobs in one process: free this one
        for logger in self.loggers:
            logger.close()
