"""A continued sweep folder's job records are data: text in them that a spreadsheet would run
as a formula is neutralised in summary.csv. Before the fix, a job's metrics.json with
`run_dir: =HYPERLINK(...)` went into summary.csv as a live formula."""

from __future__ import annotations

import csv
import json

from dlrun.summary import summarize
from tests.conftest import run_dlrun

FORMULA = '=HYPERLINK("http://example.invalid","x")'


def test_a_job_records_formula_is_text_in_the_summary(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_dlrun("-m", "debug=smoke", "seed=0", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((sweep / "0" / "metrics.json").read_text())
    record["run_dir"] = FORMULA
    (sweep / "0" / "metrics.json").write_text(json.dumps(record))
    summarize(sweep)
    with (sweep / "summary.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["run_dir"] == "'" + FORMULA
    assert not rows[0]["val"].startswith("'")  # numbers stay numbers


def test_a_damaged_job_record_in_a_continued_sweep_is_one_line(tmp_path):
    """Before: a job folder's metrics.json holding `[]` or no JSON ended the job in a traceback."""
    sweep = tmp_path / "sweep"
    args = ("-m", "debug=smoke", "seed=0", f"hydra.sweep.dir={sweep}")
    assert run_dlrun(*args, cwd=tmp_path).returncode == 0
    for damaged in ("[]", "not json"):
        (sweep / "0" / "metrics.json").write_text(damaged)
        proc = run_dlrun(*args, cwd=tmp_path)
        assert "Traceback" not in proc.stderr + proc.stdout
        assert f"{sweep / '0' / 'metrics.json'} is not a dlrun record" in proc.stderr
