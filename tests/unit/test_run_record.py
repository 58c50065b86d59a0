"""metrics.json has one type, dlrun.record.RunRecord: every key a real run writes is declared
there and documented in its docstring and in docs/usage.md, so the three cannot drift apart."""

import re

from dlrun.record import RunRecord, marked_failed
from tests.conftest import REPO, read_metrics, run_dirs
from tests.smoke.test_predict import write_digits_csv

DECLARED = set(RunRecord.__annotations__)


def docstring_keys() -> set[str]:
    """The keys the docstring's `Keys:` list names ("a, b: meaning" lines)."""
    listing = RunRecord.__doc__.split("Keys:")[1]
    lines = [line for line in listing.splitlines() if re.match(r"^ {8}\w", line)]
    return {key.strip() for line in lines for key in line.split(":")[0].split(",")}


def usage_keys() -> set[str]:
    """The keys in the first column of docs/usage.md's metrics.json table."""
    text = (REPO / "docs" / "usage.md").read_text().split("### metrics.json")[1]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(r"`(\w+)`", row.split("|")[1])}


def test_every_declared_key_is_documented_in_the_docstring_and_the_docs():
    assert docstring_keys() == DECLARED
    assert usage_keys() == DECLARED


def test_every_key_a_real_run_writes_is_declared(dlrun, tmp_path):
    train_csv, test_csv, new_csv = write_digits_csv(tmp_path)
    data = ["data=csv", f"data.path={train_csv}", f"data.test_path={test_csv}", "data.target=digit"]
    seen: set = set()

    def record_of_the_new_folder() -> set[str]:
        (folder,) = set(run_dirs(tmp_path)) - seen
        seen.add(folder)
        return set(read_metrics(folder))

    dlrun(*data, "trainer.epochs=1", "trainer.progress=false", "plots=false")
    written = {"training": record_of_the_new_folder()}
    run = next(iter(seen))
    dlrun("mode=eval", f"ckpt={run}", "split=val")
    written["mode=eval"] = record_of_the_new_folder()
    dlrun("mode=predict", f"ckpt={run}", f"input={new_csv}")  # labelled: `accuracy` too
    written["mode=predict"] = record_of_the_new_folder()
    dlrun(*data, "optimizer.lr=-1", expect_fail=True)  # stops before training
    written["config error"] = record_of_the_new_folder()
    for what, keys in written.items():
        assert keys <= DECLARED, f"{what} wrote undeclared keys {sorted(keys - DECLARED)}"
    assert set().union(*written.values()) == DECLARED  # and nothing declared is never written
    only_eval_or_predict = {"mode", "val", "checkpoint", "split", "accuracy"}
    only_eval_or_predict |= {"input", "predictions", "inputs", "skipped"}
    assert written["training"] == DECLARED - only_eval_or_predict


def test_a_failed_sweep_job_keeps_its_own_record_or_gets_a_minimal_one():
    kept = {"schema_version": 1, "status": "running", "error": None, "task": "regression"}
    assert marked_failed(kept, "boom", "d", ["x=1"]) == {
        "status": "failed",
        "error": "boom",
        "task": "regression",
    }
    assert marked_failed(None, "boom", "d", ["x=1"]) == {
        "run_dir": "d",
        "overrides": ["x=1"],
        "status": "failed",
        "error": "boom",
    }
    assert marked_failed({"status": "interrupted"}, "boom", "d", []) is None
