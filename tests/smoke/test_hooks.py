"""Hooks (dlrun/hooks.py): the docs' example hook counting its stage calls, the built-in `ema`
(its averaged weights are what validation, best.pt, the test pass and predictions use), and a
resume with hooks on that is bit-exact."""

from __future__ import annotations

import shutil
import signal

import torch

import dlrun as dlrun_api
from dlrun.hooks import EMA, HookContext
from tests.conftest import REPO, read_metrics, run_dirs, run_dlrun
from tests.faults.test_reliability import EXACT, assert_same_weights, history, model_state

SHORT = ["trainer.epochs=2", "trainer.limit_train_batches=3", "trainer.limit_eval_batches=1"]


def test_the_docs_example_hook_is_called_at_every_stage(dlrun, tmp_path):
    shutil.copy(REPO / "examples" / "plugin" / "myhooks.py", tmp_path / "myhooks.py")
    dlrun("plugins=[myhooks]", "hooks=[count_calls]", *SHORT)
    (run,) = run_dirs(tmp_path)
    assert read_metrics(run)["hooks"]["count_calls"] == {
        "on_fit_start": 1,
        "on_epoch_start": 2,
        "on_batch_end": 6,
        "on_validation_end": 2,
        "on_epoch_end": 2,
        "on_fit_end": 1,
    }
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["hooks"]
    assert saved["count_calls"]["on_batch_end"] == 6  # its state_dict, in the checkpoint


def test_the_docs_show_the_example_hook_the_tests_run():
    code = (REPO / "examples" / "plugin" / "myhooks.py").read_text().rstrip("\n")
    assert f"`myhooks.py`:\n\n```python\n{code}\n```" in (REPO / "docs" / "hooks.md").read_text()


def test_ema_averages_after_every_optimizer_step(tmp_path):
    model = torch.nn.Linear(3, 2)
    ema = EMA(decay=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    class State:
        epoch = batches_done = optimizer_steps = 0

    ctx = HookContext(model, None, {"model": opt}, {}, State(), tmp_path, 1)  # type: ignore[arg-type]
    ema.on_fit_start(ctx)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    ctx.state.optimizer_steps = 1
    ema.on_batch_end(ctx)
    ema.on_batch_end(ctx)  # no new optimizer step (grad_accum): no update
    for k, v in model.state_dict().items():
        assert torch.allclose(ema.shadow[k], 0.5 * start[k] + 0.5 * v)
    assert ema.updates == 1


def test_ema_weights_are_the_ones_validated_tested_saved_and_predicted(dlrun, tmp_path):
    dlrun("hooks=[ema]", "hooks.ema.decay=0.9", *SHORT)
    (run,) = run_dirs(tmp_path)
    record = read_metrics(run)
    assert record["hooks"]["ema"] == {"decay": 0.9, "updates": 6}
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    averaged, trained = best["model"], best["train_model"]
    assert any(not torch.equal(averaged[k], trained[k]) for k in averaged)
    assert_same_weights(best["hooks"]["ema"]["shadow"], averaged)
    # mode=eval scores best.pt's `model`: the test metrics the run recorded are the averaged ones
    dlrun("mode=eval", f"ckpt={run}")
    assert read_metrics(run_dirs(tmp_path)[-1])["test"] == record["test"]
    predictor = dlrun_api.load(run, device="cpu")
    assert_same_weights(predictor.task.model.state_dict(), averaged)


def test_resume_with_hooks_on_is_bit_exact(tmp_path):
    args = [*EXACT, "trainer.epochs=2", "hooks=[ema]", "hooks.ema.decay=0.8"]
    (tmp_path / "ref").mkdir()
    assert run_dlrun(*args, cwd=tmp_path / "ref").returncode == 0
    (reference,) = run_dirs(tmp_path / "ref")
    proc = run_dlrun(*args, cwd=tmp_path, failpoints="kill_after_batch:53", process=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (run,) = run_dirs(tmp_path)
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["loop"]
    assert saved["batch_in_epoch"] > 0  # resumed mid-epoch (checkpoint_every_steps=5)
    resumed = run_dlrun(*args, f"resume={run}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    assert_same_weights(model_state(run), model_state(reference))  # the averaged weights
    assert_same_weights(model_state(run, "best"), model_state(reference, "best"))
    assert history(run) == history(reference)
    assert read_metrics(run)["hooks"] == read_metrics(reference)["hooks"]


SCHEDULE_AND_STOP = '''
import dlrun


@dlrun.register("hook", "warmup")
class Warmup:
    """lr from 0 to its configured value over the first `steps` optimizer steps."""

    def __init__(self, steps: int = 4) -> None:
        self.steps, self.base = steps, None

    def _set(self, ctx):
        for group in ctx.optimizers["model"].param_groups:
            group["lr"] = self.base * min(1.0, (ctx.step + 1) / self.steps)

    def on_fit_start(self, ctx):
        self.base = ctx.optimizers["model"].param_groups[0]["lr"]
        self._set(ctx)

    def on_batch_end(self, ctx):
        self._set(ctx)


@dlrun.register("hook", "stop_at")
class StopAt:
    """A pruning-like rule: stop once validation reaches `accuracy`."""

    def __init__(self, accuracy: float = 0.0) -> None:
        self.accuracy = accuracy

    def on_validation_end(self, ctx):
        if ctx.metrics["accuracy"] >= self.accuracy:
            ctx.stop(f"val accuracy {ctx.metrics['accuracy']:.3f} reached")
'''


def test_hooks_can_schedule_the_lr_and_stop_training(dlrun, tmp_path):
    (tmp_path / "rules.py").write_text(SCHEDULE_AND_STOP)
    proc = dlrun(
        "plugins=[rules]",
        "hooks=[warmup,stop_at]",
        "hooks.warmup.steps=12",
        "hooks.stop_at.accuracy=0.0",  # reached at once: training ends after the first epoch
        "trainer.epochs=3",
        "trainer.limit_train_batches=3",
        "optimizer.lr=0.01",
    )
    (run,) = run_dirs(tmp_path)
    record = read_metrics(run)
    assert record["epochs_run"] == 1 and record["early_stopped"] is True
    assert record["status"] == "completed"
    assert "stopped by a hook: val accuracy" in proc.stdout + proc.stderr
    # history's lr is the rate the epoch trained with, read as it starts: the hook's on_fit_start
    # set the first step's 1/12 of 0.01 (after the epoch's 3 steps it would be 4/12)
    lr = float(history(run)[0]["lr"])
    assert abs(lr - 0.01 * 1 / 12) < 1e-12
