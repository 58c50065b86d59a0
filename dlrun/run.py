"""One job, start to end: build the pieces, fit, test the best weights, write the run folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dlrun import build, checkpoint, plots, report
from dlrun.artifacts import RunArtifacts
from dlrun.data.bundle import DataBundle, InMemorySplit
from dlrun.errors import DlrunError, Interrupted
from dlrun.loggers import Loggers
from dlrun.loop import LoopSettings, LoopState, Optimization, Trainer, steps_per_epoch
from dlrun.runtime import StopFlag, configure_backends, resolve_device, seed_everything
from dlrun.tasks.base import Task

log = logging.getLogger("dlrun")


def loop_settings(cfg: DictConfig, task: Task) -> LoopSettings:
    t = cfg.trainer
    monitor = task.default_monitor if t.monitor == "auto" else t.monitor
    stop_metric = t.early_stopping.metric
    return LoopSettings(
        epochs=t.epochs, batch_size=t.batch_size, eval_batch_size=t.eval_batch_size,
        monitor=monitor, grad_clip=t.grad_clip, grad_accum=t.grad_accum,
        patience=t.early_stopping.patience,
        early_stopping_metric=monitor if stop_metric in (None, "auto") else stop_metric,
        min_delta=t.early_stopping.min_delta, limit_train_batches=t.limit_train_batches,
        limit_eval_batches=t.limit_eval_batches, precision=str(t.precision),
        progress=t.progress, seed=cfg.seed, log_every_n_steps=t.log_every_n_steps,
    )  # fmt: skip


def _overfit(data: DataBundle, batches: int, batch_size: int) -> None:
    """debug=overfit: train and validate on the same first few batches."""
    assert isinstance(data.train, InMemorySplit), "overfit_batches needs in-memory data"
    data.train = data.train.subset(torch.arange(min(len(data.train), batches * batch_size)))
    data.val = data.train


class Job:
    """The pieces of one run and the record it writes."""

    def __init__(self, cfg: DictConfig, artifacts: RunArtifacts) -> None:
        build.check_all_targets(cfg)
        self.cfg, self.artifacts = cfg, artifacts
        seed_everything(cfg.seed)
        self.device = resolve_device(cfg.device.name)
        configure_backends(self.device, cfg.trainer.deterministic)
        self.data = build.build_data(cfg.data, cfg.seed).to(self.device)
        if cfg.trainer.overfit_batches:
            _overfit(self.data, cfg.trainer.overfit_batches, cfg.trainer.batch_size)
        self.task = build.build_task(cfg, self.data, self.device)
        self.settings = loop_settings(cfg, self.task)
        optimizers = build.build_optimizers(cfg, self.task)
        schedulers = build.build_schedulers(
            cfg.scheduler,
            optimizers,
            cfg.trainer.epochs,
            steps_per_epoch(len(self.data.train), self.settings),
        )
        scaler = (
            torch.amp.GradScaler(self.device.type) if self.settings.precision == "fp16" else None
        )
        self.opt = Optimization(optimizers, schedulers, scaler)
        self.config = OmegaConf.to_container(cfg, resolve=True)
        self.epoch_callbacks: list = []  # loggers and live plots register here
        self.loggers = Loggers(
            build.build_loggers(cfg.get("logger"), artifacts, self.config), self.task
        )
        self.epoch_callbacks.append(self.loggers.on_epoch_end)
        self.step_callbacks = [self.loggers.on_step] if self.loggers.loggers else []
        self.started = time.time()

    # --- checkpoints -------------------------------------------------------------------------
    def state_dict(self, state: LoopState) -> dict[str, Any]:
        return {
            "format": checkpoint.FORMAT, "version": checkpoint.VERSION,
            "model": self.task.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.opt.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, (s, _) in self.opt.schedulers.items()},
            "scaler": self.opt.scaler.state_dict() if self.opt.scaler else None,
            "loop": state.as_dict(), "rng": checkpoint.rng_state(), "config": self.config,
            "data_state": self.data.facts.get("checkpoint_state", {}),
        }  # fmt: skip

    def save(self, name: str, state: LoopState) -> None:
        checkpoint.save_atomic(self.state_dict(state), self.artifacts.checkpoint(name))
        if name == "last":
            self.artifacts.write_history(state.history)
            self.write_record("running", state)

    # --- the record --------------------------------------------------------------------------
    def parameters(self) -> dict[str, int]:
        params = list(self.task.model.parameters())
        return {
            "total": sum(p.numel() for p in params),
            "trainable": sum(p.numel() for p in params if p.requires_grad),
        }

    def write_record(
        self, status: str, state: LoopState, test: dict | None = None, error: str | None = None
    ) -> None:
        ckpts = {n: self.artifacts.relative(self.artifacts.checkpoint(n)) for n in ("best", "last")}
        self.artifacts.write_metrics({
            "status": status, "error": error, "task": self.task.name,
            "model": self.cfg.model._target_.rsplit(".", 1)[-1], "data": self.cfg.data._target_.rsplit(".", 1)[-1],
            "monitor": {"metric": self.settings.monitor, "mode": self.task.monitor_mode(self.settings.monitor)},
            "best_epoch": state.best_epoch, "epochs_run": state.epoch, "early_stopped": state.early_stopped,
            "best_val": state.best_val, "test": test or {},
            "train_seconds": round(state.train_seconds, 4),
            "samples_per_second": round(state.train_samples / state.train_seconds, 1) if state.train_seconds else None,
            "device": str(self.device), "precision": self.settings.precision, "parameters": self.parameters(),
            "checkpoints": {n: p for n, p in ckpts.items() if (self.artifacts.run_dir / p).exists()},
            "run_dir": str(self.artifacts.run_dir), "overrides": _overrides(),
        })  # fmt: skip

    # --- the run -----------------------------------------------------------------------------
    def train(self) -> float:
        log.info(report.model_line(self.task.name, self.cfg.model._target_, self.task.model, self.device, self.settings.precision))  # fmt: skip
        log.info(f"run folder {self.artifacts.run_dir}")
        state = LoopState()
        self.write_record("running", state)
        with StopFlag() as stop:
            trainer = Trainer(self.task, self.data, self.opt, self.settings, self.device,
                              self.save, stop, self.epoch_callbacks, self.step_callbacks)  # fmt: skip
            try:
                trainer.fit(state)
            except Interrupted as err:
                self.write_record("interrupted", state, error=str(err))
                self._observe_end("interrupted", state)
                raise
            except DlrunError as err:
                self.write_record("failed", state, error=str(err))
                self._observe_end("failed", state)
                raise
        best = checkpoint.load(self.artifacts.checkpoint("best"))
        self.task.model.load_state_dict(best["model"])
        test = trainer.evaluate(self.data.test)
        self.write_record("completed", state, test)
        written = self.task.write_artifacts(
            self.artifacts.run_dir, self.data.test.batches(self.settings.eval_batch_size)
        )
        for name in written:
            log.info(f"wrote {self.artifacts.run_dir / name}")
        self._observe_end("completed", state, test, written)
        self._log_summary(state, test)
        return float(state.best_value)

    def _observe_end(self, status: str, state: LoopState, test: dict[str, Any] | None = None,
                     written: list[str] | None = None) -> None:  # fmt: skip
        """plots/ and the loggers' last word, at the end of a run, an interrupt or a failure."""
        if self.cfg.get("plots", True):
            self._write_plots(status, state, test)
        pngs = [self.artifacts.run_dir / n for n in written or [] if str(n).endswith(".png")]
        self.loggers.finish(status, self.artifacts.read_metrics() or {}, pngs)

    def _write_plots(self, status: str, state: LoopState, test: dict[str, Any] | None) -> None:
        try:
            names = plots.write_plots(
                self.artifacts, state.history, self.settings.monitor, state.best_epoch, test,
                self.data.class_names, getattr(self.task, "last_predictions", None),
            )  # fmt: skip
        except Exception as err:  # never hide why an interrupted or failed run stopped
            if status == "completed":
                raise
            log.warning(f"plots were not written: {err}")
            return
        if names:
            log.info(f"wrote {self.artifacts.plots_dir}/ ({', '.join(names)})")

    def _log_summary(self, state: LoopState, test: dict[str, Any]) -> None:
        record = self.artifacts.read_metrics() or {}
        log.info(report.summary_table(record, time.time() - self.started))


def _overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not under Hydra (e.g. called from Python)
        return []


def run_job(cfg: DictConfig) -> float | None:
    """Run one configured job in Hydra's output folder; returns the best monitored val metric."""
    artifacts = RunArtifacts(Path(HydraConfig.get().runtime.output_dir))
    if cfg.mode == "eval":
        raise DlrunError("mode=eval is not available yet: it needs ckpt=PATH support")
    return Job(cfg, artifacts).train()
