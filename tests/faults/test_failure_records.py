"""Every failure leaves a record: config/data errors, a full disk (real, a small tmpfs), a
read-only data folder, and dlrun-summary over mixed runs."""

import torch

from dlrun.artifacts import RunArtifacts
from dlrun.data.text import text_csv
from dlrun.summary import summarize
from tests.conftest import read_metrics, run_dirs
from tests.textdata import write_labelled_csv
from tests.unit.test_summary import record

SHORT = ("trainer.progress=false", "plots=false")


def test_a_config_or_data_error_leaves_a_failed_record(dlrun, tmp_path):
    for args, error in [
        (("data=csv", "data.path=nope.csv", "data.target=y"), "data.path=nope.csv does not exist"),
        (("optimizer.lr=-1",), "optimizer.lr=-1 is invalid"),
    ]:
        proc = dlrun(*args, expect_fail=True)
        assert proc.returncode == 2 and error in proc.stderr
    runs = [read_metrics(r) for r in run_dirs(tmp_path)]
    assert [(m["status"], m["error"].split(":")[0]) for m in runs] == [
        ("failed", "data.path=nope.csv does not exist"),
        ("failed", "optimizer.lr=-1 is invalid"),
    ]
    assert all("\n" not in m["error"] for m in runs)
    summary = summarize(tmp_path / "outputs")
    failed = summary.markdown.split("## Failed or interrupted")[1]
    assert "data.path=nope.csv does not exist" in failed and "optimizer.lr=-1 is invalid" in failed


def test_a_full_disk_at_the_first_checkpoint_is_one_line_and_a_failed_record(dlrun, small_disk):
    disk = small_disk(96)  # Hydra's files fit; the 140 KB checkpoint does not
    proc = dlrun("trainer.epochs=2", f"hydra.run.dir={disk}/run", *SHORT, expect_fail=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    # torch.save's writer reports a full disk as a RuntimeError about zip positions, or the
    # file's write as ENOSPC, depending on where the space runs out
    full = ("No space left on device", "the disk may be full")
    assert any(f in proc.stderr for f in full) and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot write" in proc.stderr and "no checkpoint yet" in proc.stderr
    m = read_metrics(disk / "run")
    assert m["status"] == "failed" and any(f in m["error"] for f in full)


def test_a_disk_full_from_the_start_still_records_the_failure(dlrun, small_disk):
    disk = small_disk(24)  # room for Hydra's files and the first metrics.json only
    proc = dlrun("trainer.epochs=1", f"hydra.run.dir={disk}/run", *SHORT, expect_fail=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("dlrun: error: cannot write") and proc.stderr.count("\n") == 1
    assert read_metrics(disk / "run")["status"] == "failed"  # rewritten in place


def test_a_full_disk_later_keeps_the_previous_checkpoint(dlrun, small_disk):
    disk = small_disk(300)  # one checkpoint fits, not a second beside it
    proc = dlrun("trainer.epochs=3", f"hydra.run.dir={disk}/run", *SHORT, expect_fail=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert "previous checkpoint is intact" in proc.stderr
    run = disk / "run"
    assert read_metrics(run)["status"] == "failed"
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["loop"]["epoch"] == 1


def test_a_read_only_data_root_caches_text_in_the_user_cache(tmp_path, read_only, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = write_labelled_csv(tmp_path / "news.csv", n=40)
    root = tmp_path / "data"
    root.mkdir()
    read_only(root)
    kw = dict(
        text_columns=["headline", "body"],
        label_column="topic",
        root=str(root),
        tokenizer="basic_english",
        lowercase=True,
        min_freq=1,
        max_vocab=None,
        max_length=64,
        test_fraction=0.2,
        split_seed=0,
        val_fraction=0.2,
        seed=0,
    )
    first = text_csv(str(path), **kw)
    cached = list((tmp_path / "cache" / "dlrun" / "text_cache").iterdir())
    assert len(cached) == 1 and not list(root.iterdir())
    again = text_csv(str(path), **kw)  # read back from the user cache
    assert torch.equal(first.train.tensors["x"], again.train.tensors["x"])


def test_summary_groups_runs_by_model_and_data_with_a_best_per_data_set(tmp_path):
    for i, (model, data, val) in enumerate(
        [
            ("MLP", "digits", 0.9),
            ("Perceptron", "digits", 0.8),
            ("MLP", "synthetic_classification", 0.7),
            ("Perceptron", "synthetic_classification", 0.75),
        ]
    ):
        record(tmp_path / str(i), [f"run={i}"], val, accuracy=val)
        m = read_metrics(tmp_path / str(i))
        m.pop("schema_version")
        RunArtifacts(tmp_path / str(i)).write_metrics({**m, "model": model, "data": data})
    record(tmp_path / "9", ["run=9"], status="failed")
    md = summarize(tmp_path).markdown
    assert "**Best** on digits (val accuracy 0.9000, max): `run=0`" in md
    assert "**Best** on synthetic_classification (val accuracy 0.7500, max): `run=3`" in md
    runs = md.split("## Runs (best first)")[1].split("##")[0]
    assert "| # | model | data | overrides |" in runs and "run=9" not in runs
    assert "run=9" in md.split("## Failed or interrupted")[1]
