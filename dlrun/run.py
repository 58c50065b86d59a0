"""One job, start to end: build the pieces, fit, test the best weights, write the run folder."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dlrun import build, checkpoint, distributed
from dlrun.artifacts import RunArtifacts
from dlrun.data.bundle import DataBundle, InMemorySplit
from dlrun.errors import DlrunError, Interrupted
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
        progress=t.progress, seed=cfg.seed,
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
        self.device = distributed.device(resolve_device(cfg.device.name))  # torchrun: LOCAL_RANK
        configure_backends(self.device, cfg.trainer.deterministic)
        self.data = build.build_data(cfg.data, cfg.seed).to(self.device)
        if cfg.trainer.overfit_batches:
            _overfit(self.data, cfg.trainer.overfit_batches, cfg.trainer.batch_size)
        self.task = build.build_task(cfg, self.data, self.device)
        self.task.model = distributed.wrap(self.task.model, self.device, cfg.trainer.batch_size)
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
        self.started = time.time()

    # --- checkpoints -------------------------------------------------------------------------
    def state_dict(self, state: LoopState) -> dict[str, Any]:
        return {
            "format": checkpoint.FORMAT, "version": checkpoint.VERSION,
            "model": distributed.unwrap(self.task.model).state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.opt.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, (s, _) in self.opt.schedulers.items()},
            "scaler": self.opt.scaler.state_dict() if self.opt.scaler else None,
            "loop": state.as_dict(), "rng": checkpoint.rng_state(), "config": self.config,
            "data_state": self.data.facts.get("checkpoint_state", {}),
        }  # fmt: skip

    def save(self, name: str, state: LoopState) -> None:
        if not distributed.is_main():
            return  # under torchrun rank 0 alone writes the run folder
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
        if not distributed.is_main():
            return
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
        p = self.parameters()
        log.info(f"{self.task.name}: {self.cfg.model._target_} ({p['trainable']:,} trainable / {p['total']:,} "
                 f"parameters) on {self.device}, precision {self.settings.precision}; run folder {self.artifacts.run_dir}")  # fmt: skip
        state = LoopState()
        self.write_record("running", state)
        with StopFlag() as stop:
            trainer = Trainer(
                self.task, self.data, self.opt, self.settings, self.device, self.save, stop
            )
            try:
                trainer.fit(state)
            except Interrupted as err:
                self.write_record("interrupted", state, error=str(err))
                raise
            except DlrunError as err:
                self.write_record("failed", state, error=str(err))
                raise
        if distributed.is_main():  # the test pass runs on rank 0 only
            best = checkpoint.load(self.artifacts.checkpoint("best"))
            distributed.unwrap(self.task.model).load_state_dict(best["model"])
        test = trainer.evaluate(self.data.test)
        self.write_record("completed", state, test)
        if not distributed.is_main():
            return float(state.best_value)
        written = self.task.write_artifacts(
            self.artifacts.run_dir, self.data.test.batches(self.settings.eval_batch_size)
        )
        for name in written:
            log.info(f"wrote {self.artifacts.run_dir / name}")
        self._log_summary(state, test)
        return float(state.best_value)

    def _log_summary(self, state: LoopState, test: dict[str, Any]) -> None:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in test.items() if isinstance(v, float))
        log.info(f"test (best epoch {state.best_epoch}): {shown}")
        log.info(f"wrote {self.artifacts.metrics_path}")


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
