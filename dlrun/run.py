"""One run, start to end: build its pieces (RunPieces), fit them with the FitLoop or continue a
checkpoint, test the best weights, write the run folder (Run). Also mode=eval (EvalRun): rebuild
a model from a checkpoint and score it on a split."""

from __future__ import annotations

import contextlib
import copy
import errno
import logging
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from dlrun import (
    build,
    checkpoint,
    clock,
    config_record,
    distributed,
    faults,
    file_config,
    plots,
    registry,
    report,
    resume,
    runlock,
    thread_tuner,
    threads,
)
from dlrun import record as run_record
from dlrun.artifacts import RunArtifacts
from dlrun.data.bundle import DataBundle
from dlrun.data.split import across_classes
from dlrun.errors import ConfigError, DlrunError, Interrupted, TrialPruned
from dlrun.hooks import Hooks
from dlrun.loggers import Loggers
from dlrun.loop import (
    FitLoop,
    LoopHooks,
    LoopState,
    Optimization,
    samples_per_epoch,
    split_metrics,
    steps_per_epoch,
)
from dlrun.picture import Picture
from dlrun.predict.preprocessing import describe
from dlrun.record import RunRecord
from dlrun.resume import ResumePlan
from dlrun.runtime import (
    StopFlag,
    configure_backends,
    resolve_device,
    seed_everything,
    slow_precision_warning,
)
from dlrun.schema import TrainerConfig
from dlrun.tasks.base import Task

log = logging.getLogger("dlrun")


def last_batch_choice(n_train: int, s: TrainerConfig) -> dict[str, Any]:
    """What trainer.drop_last does to this training split, logged and kept in metrics.json."""
    used = samples_per_epoch(n_train, s.batch_size, s.drop_last)
    if used == 0:
        raise ConfigError(
            f"trainer.drop_last={s.drop_last} drops every batch: the training split has {n_train} "
            f"samples, fewer than trainer.batch_size={s.batch_size}; lower the batch size"
        )
    if used < n_train:
        log.info(
            f"trainer.drop_last={s.drop_last}: the last training batch of each epoch would hold "
            f"{n_train - used} sample(s) ({n_train} % {s.batch_size}); it is dropped, a different "
            "sample each epoch (a one-sample batch breaks BatchNorm)"
        )
    return {"drop_last": s.drop_last, "dropped_per_epoch": n_train - used}


def _overfit(data: DataBundle, batches: int, batch_size: int) -> None:
    """debug=overfit: train and validate on the same first few batches."""
    assert hasattr(data.train, "subset"), "overfit_batches needs a split that can be cut"
    data.train = data.train.subset(torch.arange(min(len(data.train), batches * batch_size)))
    data.val = data.train


def _limit_eval_across_classes(data: DataBundle, samples: int) -> None:
    """trainer.limit_eval_batches (debug=smoke): validation and test keep `samples` samples taken
    from every class in turn, so a smoke run's accuracy is not that of the first stored class."""
    for name in ("val", "test"):
        split = getattr(data, name)
        labels = getattr(split, "labels", None)
        if len(split) <= samples or labels is None or not hasattr(split, "subset"):
            continue
        y = labels()
        if y.ndim == 1 and not y.is_floating_point():  # class labels (not regression targets)
            setattr(data, name, split.subset(across_classes(y, samples).to(y.device)))


def speed_up(task: Task, t: TrainerConfig) -> None:
    """trainer.channels_last and trainer.compile, in place (state_dict keys stay unchanged)."""
    if t.channels_last:
        task.model.to(memory_format=torch.channels_last)
    if t.compile:
        for module in task.compiled_modules():
            module.compile(**({} if t.compile is True else {"mode": t.compile}))


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process and, on CUDA, peak allocated GPU memory."""
    peak = {"host_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        peak["cuda"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return peak


def drawn(task: Task, draw: Callable[[], dict[str, Picture]]) -> dict[str, Picture]:
    """A task's pictures, drawn in eval mode without gradients; the model's mode is restored."""
    was_training = task.model.training
    task.model.eval()
    try:
        with torch.no_grad():
            return draw()
    finally:
        task.model.train(was_training)


def _overrides() -> list[str]:
    try:  # as typed: reading them through the config would resolve ${oc.env:...} in them
        return list(OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False))
    except ValueError:  # not under Hydra (e.g. called from Python)
        return []


class RunPieces:
    """The built pieces of one run (data, task, loop settings) and what the record says about
    them (`about`); a training Run and an EvalRun are made of them."""

    def __init__(
        self, cfg: DictConfig, artifacts: RunArtifacts, data_state: dict | None = None
    ) -> None:
        build.check_all_targets(cfg)
        self.cfg, self.artifacts = cfg, artifacts
        t = TrainerConfig.from_config(cfg.trainer)  # the typed settings; resolved once built
        seed_everything(cfg.seed)
        self.device = distributed.device(resolve_device(cfg.device.name))  # torchrun: LOCAL_RANK
        configure_backends(self.device, t.deterministic)
        self.data = build.build_data(
            cfg.data, cfg.seed, data_state, build.model_needs_images(cfg.model), self.device.type
        ).to(self.device)
        # planned once the data says which loading processes run beside training
        self.thread_plan = threads.plan(
            t.threads, loader_workers=self.data.loader_workers, deterministic=t.deterministic
        )
        self.threads = threads.apply(self.thread_plan)
        self.thread_tuner: thread_tuner.ThreadTuner | None = None  # set when training starts
        for name, content in self.data.run_files.items():
            artifacts.write_json(name, content)  # e.g. text labels.json: class name -> index
        if t.overfit_batches:
            _overfit(self.data, t.overfit_batches, t.batch_size)
        self.task = build.build_task(cfg, self.data, self.device)
        self.task.model = distributed.wrap(self.task.model, self.device, t.batch_size)
        monitor = self.data.monitor or self.task.default_monitor
        self.settings = t.resolved(monitor, self.device.type)
        self.settings = self.settings.with_budget(  # trainer.epochs=auto: the data's step budget
            steps_per_epoch(len(self.data.train), self.settings), self.data.min_steps
        )
        if self.settings.limit_eval_batches:
            limit = self.settings.limit_eval_batches * self.settings.eval_batch_size
            _limit_eval_across_classes(self.data, limit)
        self.config = config_record.recorded(cfg)  # ${oc.env:...} stays unresolved in files
        # what a prediction on new inputs needs, saved in every checkpoint and model.yaml
        self.preprocessing = describe(self.data, self.task.name, self.config["data"])
        self.epoch_callbacks: list = []  # the task's pictures, loggers, live plots...
        self.opt: Optimization | None = None
        self._fixed_record: RunRecord | None = None

    def parameters(self) -> dict[str, int]:
        params = list(self.task.model.parameters())
        return {
            "total": sum(p.numel() for p in params),
            "trainable": sum(p.numel() for p in params if p.requires_grad),
        }

    def about(self) -> RunRecord:
        """What ran, where and with what: the record's description of the run."""
        if self._fixed_record is None:  # rewritten every epoch: compute the constant part once
            self._fixed_record = {
                "task": self.task.name,
                "model": run_record.target_name(self.cfg.model._target_),
                "data": run_record.target_name(self.cfg.data._target_),
                "data_path": self.cfg.data.get("path"),
                "device": str(self.device),
                "precision": self.settings.precision,
                "parameters": self.parameters(),
                "run_dir": str(self.artifacts.run_dir),
                "overrides": _overrides(),
                "name": self.cfg.get("name"),
                "tags": [str(t) for t in self.cfg.get("tags") or []],
            }
        return {
            **self._fixed_record,
            "threads": self.thread_record(),
            "peak_memory_mb": peak_memory_mb(self.device),
        }

    def thread_record(self) -> dict[str, Any]:
        if self.thread_tuner is None:
            return self.threads
        tuning = self.thread_tuner.record()
        return {**self.threads, "torch": tuning.pop("threads"), "tuning": tuning}

    def monitor(self) -> dict[str, str]:
        """The record's `monitor`: the metric that chooses the best epoch, and its direction."""
        metric = self.settings.monitor
        return {"metric": metric, "mode": self.task.monitor_mode(metric)}


class Run(RunPieces):
    """One training run: its optimizers, loggers, checkpoints and record around the FitLoop;
    trains (or continues), then tests the best weights and writes plots and exports."""

    def __init__(
        self, cfg: DictConfig, artifacts: RunArtifacts, data_state: dict | None = None
    ) -> None:
        super().__init__(cfg, artifacts, data_state)
        warning = slow_precision_warning(self.device, self.settings.precision)
        if warning:
            log.warning(warning)
        speed_up(self.task, self.settings)
        self.last_batch = last_batch_choice(len(self.data.train), self.settings)
        # torch.optim imports torch._dynamo on its first step (1.5-2.5 s here): pay it now, before
        # the clock starts, so the first epoch's time and samples/s measure training only.
        import torch._dynamo  # noqa: F401

        optimizers = build.build_optimizers(cfg, self.task)
        schedulers = build.build_schedulers(
            cfg.scheduler,
            optimizers,
            self.settings.epochs,
            steps_per_epoch(len(self.data.train), self.settings),
            self.monitor()["mode"],
        )
        scaler = (
            torch.amp.GradScaler(self.device.type) if self.settings.precision == "fp16" else None
        )
        self.opt = Optimization(optimizers, schedulers, scaler)
        # Under torchrun only rank 0 logs (like it alone writes the run folder).
        loggers = (
            build.build_loggers(cfg.get("logger"), artifacts, config_record.literal(self.config))
            if distributed.is_main()
            else []
        )
        self.loggers = Loggers(loggers)
        self.hooks = build.build_hooks(cfg.get("hooks"))  # hooks=[ema] (dlrun/hooks.py)
        self._add_pruning_hook()
        self.epoch_callbacks += [self.loggers.on_epoch_end, self._epoch_pictures]
        self.step_callbacks = [self.loggers.on_step] if self.loggers.loggers else []
        self.started = time.time()
        self.startup_seconds: float | None = None

    def _add_pruning_hook(self) -> None:
        """An Optuna trial's per-epoch report to its study (dlrun/search/pruning.py)."""
        from dlrun.search.pruning import trial_reporter

        reporter = trial_reporter(self.monitor())
        if reporter is not None:
            self.hooks = Hooks({**self.hooks.named, "optuna_pruning": reporter})

    def about(self) -> RunRecord:
        return {**super().about(), "hooks": self.hooks.record()}  # e.g. ema: {decay, updates}

    def _epoch_pictures(self, state: LoopState, row: dict[str, Any]) -> None:
        """The task's pictures after an epoch (a GAN's samples): <name>/epoch_NNN.png, and the
        same pictures to the loggers that show images."""
        if not distributed.is_main():
            return  # under torchrun rank 0 alone writes the run folder
        pictures = drawn(self.task, self.task.epoch_pictures)
        for name, picture in pictures.items():
            path = self.artifacts.write_picture(f"{name}/epoch_{state.epoch:03d}.png", picture)
            log.debug(f"wrote {path}")
        if pictures:
            self.loggers.log_images(state.epoch, pictures)

    # --- checkpoints -------------------------------------------------------------------------
    def checkpoint_payload(self, state: LoopState) -> dict[str, Any]:
        """Everything a checkpoint holds (what `restore` reads back). `model` holds the weights
        to use (test, exports, predictions, eval); where a hook averages them (ema), the
        training weights are kept apart as `train_model`, which resume continues from."""
        weights = distributed.unwrap(self.task.model).state_dict()
        for_use = self.hooks.evaluation_weights()
        return {
            "format": checkpoint.FORMAT,
            "version": checkpoint.VERSION,
            "model": weights if for_use is None else for_use,
            **({} if for_use is None else {"train_model": weights}),
            "hooks": self.hooks.state_dict(),
            **self._optimizer_state(),
            "loop": state.as_dict(),
            "rng": checkpoint.rng_state(),
            "config": self.config,
            "data_state": self.data.checkpoint_state(),
            "preprocessing": self.preprocessing,
        }

    def _optimizer_state(self) -> dict[str, Any]:
        """Optimizers, schedulers and grad scaler; None with trainer.save_optimizer=false (much
        smaller checkpoints - Adam keeps two tensors per weight - that cannot be resumed)."""
        if not self.settings.save_optimizer:
            return {"optimizers": None, "schedulers": None, "scaler": None}
        return {
            "optimizers": {k: o.state_dict() for k, o in self.opt.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, (s, _) in self.opt.schedulers.items()},
            "scaler": self.opt.scaler.state_dict() if self.opt.scaler else None,
        }

    def restore(self, ckpt: dict[str, Any]) -> LoopState:
        """Restore everything a checkpoint holds; returns the loop state to continue from."""
        if ckpt.get("optimizers") is None:  # resuming without them would not continue the run
            raise ConfigError(
                "this checkpoint was saved with trainer.save_optimizer=false (no optimizer "
                "state), so it cannot be resumed exactly: start a new run, or use it for "
                "mode=eval / mode=predict"
            )
        with checkpoint.fitting("being resumed", "run"):  # a tampered one: one line
            model = ckpt.get("train_model", ckpt["model"])
            distributed.unwrap(self.task.model).load_state_dict(model)
            self.hooks.load_state_dict(ckpt.get("hooks") or {})
            for name, opt in self.opt.optimizers.items():
                opt.load_state_dict(ckpt["optimizers"][name])
            for name, (sched, _) in self.opt.schedulers.items():
                sched.load_state_dict(ckpt["schedulers"][name])
            if self.opt.scaler and ckpt.get("scaler"):
                self.opt.scaler.load_state_dict(ckpt["scaler"])
            checkpoint.restore_rng(ckpt["rng"])
            return LoopState(**ckpt["loop"])

    def write_checkpoint(self, state: LoopState, best: bool = False) -> None:
        """last.pt; with `best`, best.pt too; at an epoch's end the kept epoch copy as well.
        One serialisation and one write: the other names are links to the same bytes."""
        if not distributed.is_main():
            return  # under torchrun rank 0 alone writes the run folder
        last = self.artifacts.checkpoint("last")
        copies = [self.artifacts.checkpoint("best")] if best else []
        keep_k = self.settings.keep_last_k
        if keep_k and state.batch_in_epoch == 0:
            copies.append(self.artifacts.checkpoint(f"epoch_{state.epoch:03d}"))
        try:
            # best.pt is placed before last.pt: a kill in between leaves last.pt one epoch
            # behind, never a best.pt older than the best epoch that last.pt records
            checkpoint.save_atomic(self.checkpoint_payload(state), last, copies=tuple(copies))
            if keep_k:
                checkpoint.prune_epoch_copies(self.artifacts.checkpoint_dir, keep_k)
            self.artifacts.write_history(state.history)
            self.write_record("running", state)
        except (OSError, RuntimeError) as err:  # torch.save's own writer raises RuntimeError
            raise DlrunError(
                f"cannot write {last} ({_write_failure(err, last.parent)}): free disk space or "
                "set hydra.run.dir to a writable folder; "
                + ("the previous checkpoint is intact" if last.exists() else "no checkpoint yet"),
                exit_code=1,
            ) from None

    # --- the record --------------------------------------------------------------------------
    def write_record(
        self,
        status: str,
        state: LoopState,
        test: dict | None = None,
        error: str | None = None,
        in_place_if_full: bool = False,
    ) -> None:
        if not distributed.is_main():
            return
        ckpts = {n: self.artifacts.relative(self.artifacts.checkpoint(n)) for n in ("best", "last")}
        record = run_record.training(
            status,
            state,
            self.about(),
            self.monitor(),
            error=error,
            test=test,
            startup_seconds=self.startup_seconds,
            checkpoints={n: p for n, p in ckpts.items() if (self.artifacts.run_dir / p).exists()},
            last_batch=self.last_batch,
            skipped_files=len(self.data.skipped),
        )
        self.artifacts.write_metrics(record, in_place_if_full=in_place_if_full)

    def _record_failure(self, status: str, state: LoopState, error: str) -> None:
        # The disk that failed the checkpoint may fail this too: the record is then rewritten in
        # place (no room for a new file), or at worst the error is only printed.
        with contextlib.suppress(OSError):
            self.write_record(status, state, error=error, in_place_if_full=True)

    # --- the run -----------------------------------------------------------------------------
    def train(self, plan: ResumePlan = resume.FRESH, saved: dict[str, Any] | None = None) -> float:
        """Fit from the start, or from `saved` (the checkpoint `plan` continues), test the best
        weights, write the record; returns the best monitored validation value."""
        state = LoopState() if saved is None else self._continued(plan, saved)
        log.info(
            report.model_line(
                self.task.name,
                self.cfg.model._target_,
                self.task.model,
                self.device,
                self.settings.precision,
            )
        )
        log.info(f"run folder {self.artifacts.run_dir}")
        # from the command's start (Hydra loaded) to the first batch: what a user waits for
        self.startup_seconds = round(time.time() - clock.started(), 3)
        self.write_record("running", state)
        with StopFlag() as stop:
            metric = self._fit_recording_the_end(state, stop)
            if stop.requested:  # it came during the test pass or the plots: the run is complete
                raise Interrupted(
                    stop.name, stop.exit_code, "the run had completed; results are written"
                )
        return metric

    def _continued(self, plan: ResumePlan, saved: dict[str, Any]) -> LoopState:
        state = self.restore(saved)
        resume.check_epochs_left(plan, state.epoch, self.settings.epochs)
        log.info(
            f"resuming from {plan.checkpoint} at epoch {state.epoch + 1}, "
            f"batch {state.batch_in_epoch + 1}"
        )
        if not plan.in_run_folder:
            log.info(
                f"{plan.checkpoint} is not in a run folder: continuing in a new one; the best "
                "epoch is chosen among the epochs trained from now on"
            )
            state.best_value, state.best_epoch, state.best_val = None, None, {}
        return state

    def fit_loop(self, stop: StopFlag) -> FitLoop:
        """The run's FitLoop: its task, data, optimizers, callbacks and hooks."""
        return FitLoop(
            self.task,
            self.data,
            self.opt,
            self.settings,
            self.device,
            self.write_checkpoint,
            stop,
            self.epoch_callbacks,
            self.step_callbacks,
            self._loop_hooks(),
            seed=self.cfg.seed,
            user_hooks=self.hooks,
            run_dir=self.artifacts.run_dir,
        )

    def _fit_recording_the_end(self, state: LoopState, stop: StopFlag) -> float:
        """The FitLoop, then `_finish`; an interrupt or a failure is recorded, never left
        "running", and plots and loggers still get their last word."""
        try:
            fit_loop = self.fit_loop(stop)
            fit_loop.fit(state)
            return self._finish(fit_loop, state)
        except Interrupted as err:
            self._record_failure("interrupted", state, str(err))
            self._observe_end("interrupted", state)
            log.info(
                f"resume with: dlrun "
                f"{' '.join(o for o in _overrides() if not o.startswith('resume='))} "
                f"resume={self.artifacts.run_dir}"
            )
            raise
        except TrialPruned as err:  # an Optuna trial stopped early: not a failure
            log.info(str(err))
            self.write_record("pruned", state, error=str(err))
            self._observe_end("pruned", state)
            raise
        except DlrunError as err:
            self._record_failure("failed", state, str(err))
            self._observe_end("failed", state)
            raise
        except Exception as err:  # a bug: say so in the record, never leave it "running"
            self._record_failure("failed", state, f"{type(err).__name__}: {err}")
            raise

    def _loop_hooks(self) -> LoopHooks:
        """The test failpoints when armed, and the thread tuner of a CPU run whose thread count
        dlrun chose (dlrun/thread_tuner.py)."""
        hooks = faults.loop_hooks()
        self.thread_tuner = thread_tuner.tuner_for(self.thread_plan, self.device.type)
        if self.thread_tuner:
            hooks.after_batch.append(self.thread_tuner.after_step)
            hooks.after_validation.append(self.thread_tuner.pause)
        return hooks

    def _finish(self, fit_loop: FitLoop, state: LoopState) -> float:
        """Test the best weights once, export them, write the final record."""
        if distributed.is_main():  # the test pass runs on rank 0 only
            best = checkpoint.load(self.artifacts.checkpoint("best"))
            distributed.unwrap(self.task.model).load_state_dict(best["model"])
        test = fit_loop.measure(self.data.test)
        if not distributed.is_main():
            return float(state.best_value)
        checkpoint.export_safetensors(
            distributed.unwrap(self.task.model).state_dict(),
            self.artifacts.run_dir / "model.safetensors",
        )
        self.artifacts.write_model_yaml(self.config, self.preprocessing)
        self.write_record("completed", state, test)
        written = self._final_pictures()
        written += self._use_files()
        for name in written:
            log.info(f"wrote {self.artifacts.run_dir / name}")
        self._observe_end("completed", state, test, written)
        self._log_summary(state, test)
        return float(state.best_value)

    def _final_pictures(self) -> list[str]:
        """The task's pictures of the best weights as <name>.png; returns the file names."""
        batches = self.data.test.batches(self.settings.eval_batch_size)
        pictures = drawn(self.task, lambda: self.task.final_pictures(batches))
        for name, picture in pictures.items():
            self.artifacts.write_picture(f"{name}.png", picture)
        return [f"{name}.png" for name in pictures]

    def _use_files(self) -> list[str]:
        """predictions_test.csv (the best weights on the test split) and the exports asked for."""
        from dlrun.predict.job import write_test_predictions

        model = distributed.unwrap(self.task.model)
        task = copy.copy(self.task)  # the bare model: rank 0 alone runs it (no DDP collectives)
        task.model = model
        written = [
            write_test_predictions(
                task,
                self.data,
                self.preprocessing,
                self.artifacts,
                self.settings.precision,
                self.settings.eval_batch_size,
                self.settings.limit_eval_batches or None,
            )
        ]
        if self.cfg.get("export"):
            from dlrun.export import export_run

            try:
                written += export_run(
                    model,
                    task,
                    self.data.test,
                    self.preprocessing,
                    self.config,
                    self.artifacts,
                    list(self.cfg.export),
                )
            except DlrunError as err:  # the run itself completed: say why there is no export
                log.warning(f"export: {err}")
        return [w for w in written if w]

    def _observe_end(
        self,
        status: str,
        state: LoopState,
        test: dict[str, Any] | None = None,
        written: list[str] | None = None,
    ) -> None:
        """plots/ and the loggers' last word, at the end of a run, an interrupt or a failure."""
        if not distributed.is_main():
            return
        if self.cfg.get("plots", True):
            self._write_plots(status, state, test)
        pngs = [self.artifacts.run_dir / n for n in written or [] if str(n).endswith(".png")]
        self.loggers.finish(status, self.artifacts.read_metrics() or {}, pngs)

    def _write_plots(self, status: str, state: LoopState, test: dict[str, Any] | None) -> None:
        try:
            names = plots.write_plots(
                self.artifacts,
                state.history,
                self.settings.monitor,
                state.best_epoch,
                test,
                self.data.class_names,
                getattr(self.task, "last_predictions", None),
            )
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


class EvalRun(RunPieces):
    """mode=eval: the checkpoint's model and data config, merged onto the local config tree."""

    def score(self, ckpt: dict[str, Any], ckpt_path: Path, split: str) -> float:
        """The checkpoint's weights on `split`: metrics.json (mode: eval), the monitored value."""
        checkpoint.load_weights(self.task.model, ckpt.get("model"), ckpt_path)
        metrics = split_metrics(self.task, getattr(self.data, split), self.settings, self.device)
        self.artifacts.write_metrics(
            run_record.evaluation(self.about(), str(ckpt_path), split, metrics, self.monitor())
        )
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        log.info(f"{split} metrics of {ckpt_path}: {shown}")
        log.info(f"wrote {self.artifacts.metrics_path}")
        return float(metrics[self.settings.monitor])


# Sections an eval run takes from the checkpoint's config (the rest stays local: device, batch
# sizes).
_FROM_CHECKPOINT = ("model", "data", "loss", "seed")


def run_eval(cfg: DictConfig, artifacts: RunArtifacts) -> float:
    if not cfg.get("ckpt"):
        raise DlrunError(
            "mode=eval needs ckpt=PATH: a run folder (its best.pt is used) or a .pt file"
        )
    path = resume.checkpoint_file(cfg.ckpt, name="best")
    ckpt = checkpoint.load(path)
    saved = ckpt.get("config") or {}
    # A checkpoint is data: its sections may name dlrun's built-ins, and plugin code only of the
    # plugins this command lists itself; the checkpoint's own `plugins` are never imported.
    for key in _FROM_CHECKPOINT:
        if key in saved:
            registry.check_config(
                saved[key], key, from_file=str(path), typed_plugins=cfg.get("plugins")
            )
    # The checkpoint's sections replace the local ones (the local model=mlp default must not leak
    # keys into a saved lstm), taken literally (no interpolation evaluated), then go through the
    # same checks as a typed config.
    # Where the data is kept and whether it is fetched (data.root/download, pretrained weights)
    # come from this command or dlrun's defaults, never from the file (dlrun/file_config.py).
    typed = {o.split("=", 1)[0].lstrip("+") for o in _overrides()}
    sections = dict(saved)
    if isinstance(saved.get("data"), dict):
        sections["data"] = file_config.data_for_reading(saved["data"], cfg.data, typed)
    if isinstance(saved.get("model"), dict):  # its weights come from the checkpoint
        sections["model"] = config_record.without_weight_sources(saved["model"])
    merged = cfg.copy()
    with open_dict(merged):
        for key in _FROM_CHECKPOINT:
            if key in saved:
                merged[key] = config_record.literal(sections[key])
        _table_location(merged, cfg, ckpt, typed)
    scoring = EvalRun(merged, artifacts, ckpt.get("data_state"))
    try:
        return scoring.score(ckpt, path, cfg.split)
    finally:
        scoring.data.close()


def _table_location(merged: DictConfig, cfg: DictConfig, ckpt: dict, typed: set[str]) -> None:
    """A table's files: data.path/test_path typed on this command line, else where training
    read them (absolute paths recorded in the checkpoint), so eval runs from any folder."""
    location = (ckpt.get("data_state") or {}).get("location") or {}
    for key in ("path", "test_path"):
        if f"data.{key}" in typed and key in cfg.data:
            merged.data[key] = cfg.data[key]
        elif isinstance(location.get(key), str) and key in merged.data:
            merged.data[key] = location[key]


def _write_failure(err: Exception, folder: Path) -> str:
    """Why a write failed, in words: torch.save's writer reports a full disk as a RuntimeError
    about zip positions ("unexpected pos 46016 vs 45908"), so say what is free on that disk."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    try:
        free = f"{shutil.disk_usage(folder).free // 1024:,} KiB free there"
    except OSError:
        free = "its disk cannot be read"
    return f"torch.save failed: {str(err).splitlines()[0][:80]}; the disk may be full, {free}"


# A write that fails for lack of room (or a read-only disk): one line, never a traceback.
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def run_job(cfg: DictConfig, plan: ResumePlan | None = None) -> float | None:
    """Run one configured job in Hydra's output folder; returns the monitored val metric. A
    training job follows `plan` (made here from resume= unless a sweep job brings its own)."""
    try:
        return _run_holding_the_folder(cfg, plan)
    except OSError as err:
        if err.errno not in _DISK_ERRORS:
            raise
        raise DlrunError(
            f"cannot write {err.filename or 'a file'} ({err.strerror}): free disk space or set "
            "hydra.run.dir to another disk",
            exit_code=1,
        ) from None


def _run_holding_the_folder(cfg: DictConfig, plan: ResumePlan | None) -> float | None:
    artifacts = RunArtifacts(Path(HydraConfig.get().runtime.output_dir))
    # A single run holds its folder from before Hydra writes into it (callbacks.OutputGuard); a
    # sweep's job holds its own folder here, for the job's duration.
    held = runlock.acquire(artifacts.run_dir)
    try:
        return _run_job(cfg, artifacts, plan)
    finally:
        if held:
            runlock.release(artifacts.run_dir)


def _run_job(cfg: DictConfig, artifacts: RunArtifacts, plan: ResumePlan | None) -> float | None:
    if cfg.mode == "eval" or cfg.get("train") is False:
        return run_eval(cfg, artifacts)
    if cfg.mode == "predict":
        from dlrun.predict.job import run_predict

        return run_predict(cfg, artifacts)
    if cfg.mode == "export":
        from dlrun.export import run_export

        return run_export(cfg, artifacts)
    plan = plan or resume.plan(cfg.get("resume"), artifacts.run_dir)
    saved = resume.load_checkpoint(plan)
    # A resumed run encodes its data with the statistics it saved (a table's preprocessing, a
    # vocabulary), not refitted ones.
    run = Run(cfg, artifacts, saved.get("data_state") if saved else None)
    try:
        if saved is not None:
            resume.check_same_setup(saved["config"], run.config, plan.checkpoint)
        return run.train(plan, saved)
    finally:
        run.data.close()
