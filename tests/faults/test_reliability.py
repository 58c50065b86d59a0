"""Injected faults through the real `dlrun` command: kills, signals, torn writes, NaNs,
bad files."""

from __future__ import annotations

import csv
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import (
    dlrun_env,
    read_metrics,
    run_dirs,
    run_dlrun,
    without_plots_unless_asked,
)

# Dropout on, so RNG state matters; small batches, so an epoch has many steps to be killed in.
EXACT = [
    "model.hidden=[32]",
    "model.dropout=0.2",
    "trainer.batch_size=32",
    "trainer.epochs=3",
    "trainer.checkpoint_every_steps=5",
    "trainer.progress=false",
    "seed=3",
]


def model_state(run: Path, name: str = "last") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / f"{name}.pt", weights_only=True)["model"]


def history(run: Path) -> list[dict[str, str]]:
    return [
        {k: v for k, v in r.items() if k != "seconds"}
        for r in csv.DictReader((run / "history.csv").open())
    ]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run with the settings every kill test uses."""
    cwd = tmp_path_factory.mktemp("reference")
    proc = run_dlrun(*EXACT, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return run_dirs(cwd)[0]


@pytest.mark.parametrize("kill_at", random.Random(2026).sample(range(3, 100), 2))
def test_sigkill_mid_epoch_then_resume_is_bit_exact(tmp_path, reference, kill_at):
    proc = run_dlrun(*EXACT, cwd=tmp_path, failpoints=f"kill_after_batch:{kill_at}", process=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (run,) = run_dirs(tmp_path)
    assert read_metrics(run)["status"] == "running"  # killed: nobody wrote a final status
    resumed = run_dlrun(*EXACT, f"resume={run}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    assert run_dirs(tmp_path) == [run]  # continued in the same folder
    assert_same_weights(model_state(run), model_state(reference))
    assert_same_weights(model_state(run, "best"), model_state(reference, "best"))
    got, want = read_metrics(run), read_metrics(reference)
    for key in ["test", "best_val", "best_epoch", "epochs_run", "status"]:
        assert got[key] == want[key], key
    assert history(run) == history(reference)


def _start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dlrun", *without_plots_unless_asked(args)],
        cwd=cwd,
        env=dlrun_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_external_sigkill_then_resume_is_bit_exact(tmp_path, reference):
    proc = _start(tmp_path, *EXACT)
    while not list((tmp_path / "outputs").rglob("last.pt")):
        assert proc.poll() is None, "finished before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    (run,) = run_dirs(tmp_path)
    assert run_dlrun(*EXACT, f"resume={run}", cwd=tmp_path).returncode == 0
    assert_same_weights(model_state(run), model_state(reference))
    assert read_metrics(run)["test"] == read_metrics(reference)["test"]


def test_sigkill_with_gradient_accumulation_then_resume_is_bit_exact(tmp_path):
    # every 5 batches is mid-accumulation for grad_accum=3: the checkpoint waits for batch 6
    args = [*EXACT, "trainer.grad_accum=3", "trainer.epochs=1"]
    reference = tmp_path / "ref"
    reference.mkdir()
    assert run_dlrun(*args, cwd=reference).returncode == 0
    proc = run_dlrun(*args, cwd=tmp_path, failpoints="kill_after_batch:13", process=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (run,) = run_dirs(tmp_path)
    assert (
        torch.load(run / "checkpoints" / "last.pt", weights_only=True)["loop"]["batch_in_epoch"]
        == 12
    )
    assert run_dlrun(*args, f"resume={run}", cwd=tmp_path).returncode == 0
    assert_same_weights(model_state(run), model_state(run_dirs(reference)[0]))


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_at_a_step_saves_and_says_how_to_resume(tmp_path, sig, code):
    proc = _start(tmp_path, "trainer.epochs=500", "trainer.progress=false")
    while not list((tmp_path / "outputs").rglob("last.pt")):
        assert proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    assert m["status"] == "interrupted" and signal.Signals(sig).name in m["error"]
    assert f"resume={run.resolve()}" in out or f"resume={run}" in out
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["loop"]
    assert 0 < state["epoch"] < 500
    # and it continues from there
    again = run_dlrun(
        "trainer.epochs=" + str(state["epoch"] + 1),
        "trainer.progress=false",
        f"resume={run}",
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert read_metrics(run)["status"] == "completed"


def test_signal_during_the_last_validation_still_stops_the_run(tmp_path):
    # the signal lands between the last training step and the end of the run: no step sees it
    proc = run_dlrun(
        "trainer.epochs=2",
        "trainer.progress=false",
        cwd=tmp_path,
        failpoints="sigint_after_validation:2",
    )
    assert proc.returncode == 130, proc.stderr
    (run,) = run_dirs(tmp_path)
    assert read_metrics(run)["status"] == "interrupted"
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["loop"]["epoch"] == 2


def test_an_unforeseen_exception_is_recorded_as_failed(tmp_path):
    proc = run_dlrun(
        "trainer.epochs=2", "trainer.progress=false", cwd=tmp_path, failpoints="train_bug:30"
    )
    assert proc.returncode != 0
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["status"] == "failed" and m["error"] == "RuntimeError: injected by a failpoint"


def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    proc = _start(tmp_path, "trainer.epochs=2")
    time.sleep(0.5)  # the command is still importing or composing the config (held, then raised)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "dlrun: interrupted (SIGINT)" in err, err


def test_a_ctrl_c_held_during_start_up_is_raised_on_release_and_not_before():
    """While held, a SIGINT must not surface inside an import or Hydra's composition (where it
    turns into other errors); release() raises it, and later ones raise as usual."""
    from dlrun import interrupts

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupts.hold()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs here, in the main thread: it must only take note
        with pytest.raises(KeyboardInterrupt):
            interrupts.release()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        interrupts.release()  # nothing held: nothing raised
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_sweeps_own_process_takes_ctrl_c_once_the_sweep_starts(tmp_path):
    """Under joblib or submitit the sweep's process runs no job: the hold must end anyway."""
    from omegaconf import OmegaConf

    from dlrun import interrupts
    from dlrun.sweep import SweepCallback

    hydra = {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": []}}
    config = OmegaConf.create({"hydra": hydra})
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupts.hold()
        SweepCallback().on_multirun_start(config)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_crash_in_the_middle_of_a_checkpoint_write_keeps_the_old_file(tmp_path):
    from dlrun.checkpoint import save_atomic

    target = tmp_path / "last.pt"
    save_atomic({"format": "dlrun-checkpoint", "w": torch.arange(1000.0)}, target)
    before = target.read_bytes()
    code = (
        "import torch; from pathlib import Path; from dlrun import faults; "
        "from dlrun.checkpoint import save_atomic; faults.arm('checkpoint_crash:1'); "
        f"save_atomic({{'w': torch.zeros(100000)}}, Path({str(target)!r}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=dlrun_env(), capture_output=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == before  # byte-identical
    assert list(tmp_path.glob(".last.pt.*.tmp")), "the torn temporary file should be left beside it"


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-links"])
def test_copies_get_the_same_bytes_and_never_change_afterwards(tmp_path, monkeypatch, links):
    from dlrun import checkpoint

    if not links:  # a file system without hard links: the copy is a real copy

        def no_link(*_):
            raise OSError(errno.EPERM, "links not supported")

        monkeypatch.setattr(os, "link", no_link)
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    checkpoint.save_atomic({"w": torch.arange(10.0)}, last, copies=(best,))
    assert best.read_bytes() == last.read_bytes()
    assert (best.stat().st_ino == last.stat().st_ino) == links
    checkpoint.save_atomic({"w": torch.zeros(10)}, last)  # a later epoch that did not improve
    assert torch.equal(torch.load(best, weights_only=True)["w"], torch.arange(10.0))
    assert torch.equal(torch.load(last, weights_only=True)["w"], torch.zeros(10))
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_run_killed_inside_a_checkpoint_write_resumes(tmp_path):
    # one write per epoch (best.pt is a link to it): the 2nd, epoch 2's, dies half-way through
    proc = run_dlrun(
        "trainer.epochs=4",
        "trainer.progress=false",
        cwd=tmp_path,
        failpoints="checkpoint_crash:2",
    )
    assert proc.returncode == -signal.SIGKILL
    (run,) = run_dirs(tmp_path)
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["loop"]["epoch"] == 1
    assert (
        run_dlrun(
            "trainer.epochs=4", "trainer.progress=false", f"resume={run}", cwd=tmp_path
        ).returncode
        == 0
    )
    assert read_metrics(run)["epochs_run"] == 4


def test_nan_from_a_poisoned_batch_fails_cleanly_with_finite_weights(tmp_path):
    # digits with batch 64 has 21 batches an epoch: batch 30 is in epoch 2
    proc = run_dlrun(
        "trainer.epochs=3",
        "trainer.progress=false",
        cwd=tmp_path,
        failpoints="poison_batch:30",
    )
    assert proc.returncode == 1
    assert (
        "non-finite loss" in proc.stderr
        and "epoch 2 step 9" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    assert m["status"] == "failed" and "epoch 2 step 9" in m["error"]
    for name in ("last", "best"):
        assert all(torch.isfinite(t).all() for t in model_state(run, name).values())
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["loop"]["epoch"] == 1


def test_skip_nonfinite_skips_and_counts(tmp_path):
    proc = run_dlrun(
        "trainer.epochs=2",
        "trainer.skip_nonfinite=1",
        "trainer.progress=false",
        cwd=tmp_path,
        failpoints="poison_batch:5",
    )
    assert proc.returncode == 0, proc.stderr
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["status"] == "completed" and m["nonfinite_skipped"] == 1


def test_out_of_memory_fails_with_advice_and_keeps_the_checkpoint(tmp_path):
    # No GPU here: a failpoint raises the allocator's OutOfMemoryError inside the training step.
    proc = run_dlrun(
        "trainer.epochs=3", "trainer.progress=false", cwd=tmp_path, failpoints="train_oom:30"
    )
    assert proc.returncode == 1, proc.stderr
    assert "out of memory" in proc.stderr and "trainer.batch_size" in proc.stderr
    run = run_dirs(tmp_path)[0]
    assert read_metrics(run)["status"] == "failed"
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["loop"]["epoch"] == 1


def test_full_disk_while_saving_is_a_clear_error_and_the_old_checkpoint_survives(tmp_path):
    proc = run_dlrun(
        "trainer.epochs=3",
        "trainer.progress=false",
        cwd=tmp_path,
        failpoints="checkpoint_enospc:2",
    )
    assert proc.returncode == 1
    assert (
        "No space left on device" in proc.stderr and "previous checkpoint is intact" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    run = run_dirs(tmp_path)[0]
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["loop"]["epoch"] == 1


def test_unwritable_output_folder_is_refused(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    proc = run_dlrun("hydra.run.dir=blocker/run", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        "output folder blocker/run cannot be written" in proc.stderr
        and "Traceback" not in proc.stderr
    )


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root ignores permission bits; the blocker test covers root"
)
def test_read_only_output_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    proc = run_dlrun("hydra.run.dir=ro/run", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot be written" in proc.stderr


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("finished")
    assert run_dlrun("trainer.epochs=2", "trainer.progress=false", cwd=cwd).returncode == 0
    return run_dirs(cwd)[0]


def test_truncated_checkpoint_is_one_line_error(tmp_path, finished):
    bad = tmp_path / "truncated.pt"
    data = (finished / "checkpoints" / "best.pt").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    proc = run_dlrun("mode=eval", f"ckpt={bad}", cwd=tmp_path)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "cannot be loaded safely" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_foreign_file_is_refused(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(3)}, foreign)
    proc = run_dlrun("mode=eval", f"ckpt={foreign}", cwd=tmp_path)
    assert proc.returncode == 2 and "not a dlrun checkpoint" in proc.stderr


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_carrying_code_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "dlrun-checkpoint", "model": _Payload(str(marker))}, evil)
    for args in (["mode=eval", f"ckpt={evil}"], [f"resume={evil}"]):
        proc = run_dlrun(*args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "cannot be loaded safely" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "logging.os.system"])
def test_forbidden_target_is_refused_through_the_command(tmp_path, target):
    proc = run_dlrun(f"model._target_={target}", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        f"model._target_='{target}' is not allowed" in proc.stderr
        and "Traceback" not in proc.stderr
    )


def test_resume_with_changed_model_lists_the_differences(tmp_path, finished):
    proc = run_dlrun("model.hidden=[64]", "model.dropout=0.3", f"resume={finished}", cwd=tmp_path)
    assert proc.returncode == 2
    assert (
        "model.hidden (checkpoint [128], now [64])" in proc.stderr
        and "model.dropout" in proc.stderr
    )


def test_eval_only_run_reproduces_the_test_metrics(tmp_path, finished):
    proc = run_dlrun("mode=eval", f"ckpt={finished}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    assert m["mode"] == "eval" and m["test"] == read_metrics(finished)["test"]
    val = run_dlrun("mode=eval", f"ckpt={finished}", "split=val", cwd=tmp_path)
    assert val.returncode == 0
    vm = read_metrics(run_dirs(tmp_path)[-1])
    assert (
        vm["split"] == "val"
        and vm["val"]["accuracy"] == read_metrics(finished)["best_val"]["accuracy"]
    )


def test_checkpoint_holds_everything_to_continue(finished):
    ckpt = torch.load(finished / "checkpoints" / "last.pt", weights_only=True)
    assert {
        "model",
        "optimizers",
        "schedulers",
        "scaler",
        "loop",
        "rng",
        "config",
        "data_state",
    } <= set(ckpt)
    assert {"python", "numpy", "torch"} <= set(ckpt["rng"])
    assert ckpt["loop"]["epoch"] == 2 and "batch_in_epoch" in ckpt["loop"]
    json.dumps(ckpt["config"])  # a plain container


def test_safetensors_export_matches_the_best_weights(finished):
    from safetensors.torch import load_file

    exported = load_file(str(finished / "model.safetensors"))
    assert_same_weights(exported, model_state(finished, "best"))
    assert "_target_: dlrun.models.mlp.MLP" in (finished / "model.yaml").read_text()


def test_resume_auto_continues_the_unfinished_run_or_starts_fresh(tmp_path):
    args = ["trainer.epochs=3", "trainer.progress=false", "seed=5"]
    fresh = run_dlrun(*args, "resume=auto", cwd=tmp_path)
    assert fresh.returncode == 0 and len(run_dirs(tmp_path)) == 1  # nothing to resume: a new run
    killed = run_dlrun(
        *args, "seed=6", cwd=tmp_path, failpoints="kill_after_batch:30", process=True
    )
    assert killed.returncode == -signal.SIGKILL
    unfinished = [r for r in run_dirs(tmp_path) if read_metrics(r)["status"] == "running"]
    assert len(unfinished) == 1
    again = run_dlrun(*args, "seed=6", "resume=auto", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(run_dirs(tmp_path)) == 2 and read_metrics(unfinished[0])["status"] == "completed"


def test_keep_last_k_keeps_the_newest_epoch_checkpoints(tmp_path):
    assert (
        run_dlrun(
            "trainer.epochs=4", "trainer.keep_last_k=2", "trainer.progress=false", cwd=tmp_path
        ).returncode
        == 0
    )
    run = run_dirs(tmp_path)[0]
    names = sorted(p.name for p in (run / "checkpoints").glob("epoch_*.pt"))
    assert names == ["epoch_003.pt", "epoch_004.pt"]
    # an older copy cannot be resumed inside the folder whose last.pt is further on
    older = run / "checkpoints" / "epoch_003.pt"
    proc = run_dlrun("trainer.epochs=4", "trainer.keep_last_k=2", f"resume={older}", cwd=tmp_path)
    assert proc.returncode == 2 and "has a newer checkpoints/last.pt (epoch 4)" in proc.stderr
    assert "Traceback" not in proc.stderr
    # fewer epochs than the run already has: nothing to resume, said in one line
    proc = run_dlrun("trainer.epochs=3", "trainer.keep_last_k=2", f"resume={run}", cwd=tmp_path)
    assert proc.returncode == 2 and "has already trained 4 epochs" in proc.stderr
    assert read_metrics(run)["status"] == "completed"  # the finished run's record is untouched


def test_deferred_finite_check_still_never_saves_nonfinite_weights(tmp_path):
    # finite_check_every=4 (what GPUs use by default): no per-step sync, the NaN is caught within
    # 4 steps and before any checkpoint is written.
    proc = run_dlrun(
        "trainer.epochs=3",
        "trainer.finite_check_every=4",
        "trainer.progress=false",
        cwd=tmp_path,
        failpoints="poison_batch:30",
    )
    assert proc.returncode == 1 and "non-finite loss in the 4 steps before epoch 2" in proc.stderr
    run = run_dirs(tmp_path)[0]
    assert read_metrics(run)["status"] == "failed"
    for name in ("last", "best"):
        assert all(torch.isfinite(t).all() for t in model_state(run, name).values())


def test_eval_rebuilds_the_checkpoints_model_whatever_the_local_defaults(tmp_path):
    assert (
        run_dlrun(
            "model=perceptron", "trainer.epochs=1", "trainer.progress=false", cwd=tmp_path
        ).returncode
        == 0
    )
    (run,) = run_dirs(tmp_path)
    proc = run_dlrun("mode=eval", f"ckpt={run}", cwd=tmp_path)  # local default model is mlp
    assert proc.returncode == 0, proc.stderr
    assert read_metrics(run_dirs(tmp_path)[-1])["model"] == "Perceptron"
