"""Sweep summaries: one table of every run under a folder, built from the runs' metrics.json.

`dlrun-summary DIR` (or `python -m dlrun.summary DIR`) writes DIR/summary.csv and DIR/summary.md
and prints the table. DIR may be one sweep folder or a whole outputs/ folder. The sweep callback
(dlrun/sweep.py) calls the same code at the end of every multirun.

This module must not import torch: it runs in the sweep's parent process and as a quick tool.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrun.artifacts import write_text_atomic

CSV_NAME, MD_NAME = "summary.csv", "summary.md"


@dataclass
class Row:
    """One run, as the summary shows it."""

    job: str  # the run folder relative to the summary's folder
    status: str
    overrides: list[str]
    monitor: str | None
    mode: str | None  # max | min
    val: float | None
    test: dict[str, float] = field(default_factory=dict)
    epochs: int | None = None
    seconds: float | None = None
    run_dir: str = ""
    error: str | None = None
    val_f1: float | None = None  # classification: macro-F1 at the best epoch, beside accuracy
    model: str = ""
    data: str = ""  # the dataset, with its file for the user's own data: csv_table (h.csv)

    @property
    def seed(self) -> str | None:
        return next((o.split("=", 1)[1] for o in self.overrides if o.startswith("seed=")), None)

    @property
    def fold(self) -> str | None:
        """data.fold of a cross-validation job (data.cv=K)."""
        return next(
            (o.split("=", 1)[1] for o in self.overrides if o.startswith("data.fold=")), None
        )

    def without_seed(self) -> tuple[str, ...]:
        """The overrides but seed and data.fold: runs that differ only there are repeats (seeds)
        or the folds of one cross-validation, summarised as mean ± std."""
        return tuple(o for o in self.overrides if not o.startswith(("seed=", "data.fold=")))


@dataclass
class SeedGroup:
    """Completed runs that differ only by `seed`: mean and sample std of each metric."""

    overrides: tuple[str, ...]
    monitor: str
    mode: str
    rows: list[Row]

    def stats(self, values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    @property
    def val(self) -> tuple[float, float]:
        return self.stats([r.val for r in self.rows if r.val is not None])

    def test(self, name: str) -> tuple[float, float] | None:
        values = [r.test[name] for r in self.rows if name in r.test]
        return self.stats(values) if values else None


def visible_overrides(overrides: Iterable[str]) -> list[str]:
    """Overrides that say what a job is: sweep bookkeeping (sweep.*, resume) is left out."""
    return [
        o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(("sweep.", "resume"))
    ]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def row_from_record(record: dict[str, Any], job: str) -> Row:
    """A Row from one metrics.json (a failed job may hold only status, error and overrides)."""
    monitor = record.get("monitor") or {}
    metric = monitor.get("metric")
    best_val = record.get("best_val") or {}
    test = {k: v for k, v in (record.get("test") or {}).items() if _number(v) is not None}
    error = record.get("error")
    return Row(
        job=job,
        status=str(record.get("status", "unknown")),
        overrides=visible_overrides(record.get("overrides") or []),
        monitor=metric,
        mode=monitor.get("mode"),
        val=_number(best_val.get(metric)) if metric else None,
        test=test,
        epochs=record.get("epochs_run"),
        seconds=_number(record.get("train_seconds")),
        run_dir=str(record.get("run_dir", "")),
        error=str(error).splitlines()[0] if error else None,
        val_f1=_number(best_val.get("f1_macro")) if metric != "f1_macro" else None,
        model=str(record.get("model") or ""),
        data=_data_label(record),
    )


def _data_label(record: dict[str, Any]) -> str:
    path = record.get("data_path")
    name = str(record.get("data") or "")
    return f"{name} ({Path(str(path)).name})" if path else name


# Folders where trackers keep their own copies of a run's files under outputs/.
_TRACKER_STORES = {"mlruns", "wandb"}


def collect(root: Path) -> list[Row]:
    """Every run under `root` (a folder holding metrics.json), in folder order."""
    rows = []
    found = Path(root).rglob("metrics.json")
    for path in sorted(found, key=lambda p: _natural(p.parent, root)):
        if _TRACKER_STORES & set(path.relative_to(root).parts):
            continue  # a logger's copy of a run's record (logger=mlflow's artifacts), not a run
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # being written right now, or not a dlrun record
        if isinstance(record, dict) and "status" in record:
            job = str(path.parent.relative_to(root)) if path.parent != Path(root) else "."
            rows.append(row_from_record(record, job))
    return rows


def _natural(folder: Path, root: Path) -> tuple:
    """Sort key putting job 10 after job 9."""
    parts = folder.relative_to(root).parts
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def sort_rows(rows: list[Row]) -> list[Row]:
    """Best first by the monitored metric (its own direction); runs without a value last."""

    def key(row: Row) -> tuple:
        if row.val is None:
            return (1, row.monitor or "", 0.0)
        return (0, row.monitor or "", -row.val if row.mode == "max" else row.val)

    return sorted(rows, key=key)


def seed_groups(rows: list[Row]) -> list[SeedGroup]:
    """Completed runs that differ only by seed (at least two seeds), best group first."""
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        if row.status == "completed" and row.val is not None and row.monitor:
            groups.setdefault((row.without_seed(), row.monitor, row.mode), []).append(row)
    found = [
        SeedGroup(overrides, monitor, mode or "max", members)
        for (overrides, monitor, mode), members in groups.items()
        if len({(r.seed, r.fold) for r in members}) > 1
    ]
    return sorted(found, key=lambda g: (g.monitor, -g.val[0] if g.mode == "max" else g.val[0]))


def best_rows(rows: list[Row]) -> list[Row]:
    """The best completed run for each data set and monitored metric."""
    best: dict[tuple[str, str], Row] = {}
    for row in sort_rows(rows):
        key = (row.data, row.monitor or "")
        if row.status == "completed" and row.val is not None and key not in best:
            best[key] = row
    return list(best.values())


# --- rendering ------------------------------------------------------------------------------
# Shown first, in this order, where a run has them: macro-F1 beside accuracy (imbalanced classes).
_FIRST = ("accuracy", "f1_macro")


def _test_names(rows: list[Row]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k in row.test if k not in names]
    return [n for n in _FIRST if n in names] + [n for n in names if n not in _FIRST]


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _pm(stat: tuple[float, float] | None) -> str:
    return "" if stat is None else f"{stat[0]:.4f} ± {stat[1]:.4f}"


def _shown(overrides: Iterable[str], shared: Iterable[str] = ()) -> str:
    """A run's overrides less those every run shares (listed once above the tables)."""
    common = set(shared)
    own = [o for o in overrides if o not in common]
    return " ".join(own) or ("(the shared ones only)" if common else "(defaults)")


def shared_overrides(rows: list[Row]) -> list[str]:
    """The overrides every run has, in the first run's order: a sweep's fixed settings
    (`trainer.epochs=10 hparams_search=optuna`), shown once instead of on every line. With one
    run there is nothing to compare: none."""
    if len(rows) < 2:
        return []
    common = set(rows[0].overrides).intersection(*(r.overrides for r in rows[1:]))
    return [o for o in rows[0].overrides if o in common]


def to_csv(rows: list[Row]) -> str:
    """One line per run, every numeric test metric as a `test_<name>` column."""
    names = _test_names(rows)
    shared = shared_overrides(rows)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        [
            "rank",
            "job",
            "status",
            "overrides",  # those that differ between the runs
            "shared_overrides",  # those every run has (the same on every line)
            "monitor",
            "mode",
            "val",
            "val_f1_macro",
            *[f"test_{n}" for n in names],
            "epochs",
            "seconds",
            "run_dir",
            "error",
        ]
    )
    for rank, row in enumerate(rows, 1):
        writer.writerow(
            [
                rank,
                row.job,
                row.status,
                _shown(row.overrides, shared),
                " ".join(shared),
                row.monitor or "",
                row.mode or "",
                _fmt(row.val),
                _fmt(row.val_f1),
                *[_fmt(row.test.get(n)) for n in names],
                row.epochs if row.epochs is not None else "",
                _fmt(row.seconds),
                row.run_dir,
                row.error or "",
            ]
        )
    return buf.getvalue()


def _md_table(header: list[str], lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines]


def _runs_table(rows: list[Row], shared: list[str]) -> list[str]:
    names = _test_names(rows)
    monitors = sorted({f"{r.monitor} ({r.mode})" for r in rows if r.monitor})
    f1 = any(r.val_f1 is not None for r in rows)
    # runs of several models or data sets: say which is which
    which = [k for k in ("model", "data") if len({getattr(r, k) for r in rows}) > 1]
    header = [
        "#",
        *which,
        "overrides",
        "status",
        f"val {' / '.join(monitors) or 'metric'}",
        *(["val f1_macro"] if f1 else []),
        *[f"test {n}" for n in names],
        "epochs",
        "seconds",
        "folder",
    ]
    lines = [
        [
            str(i),
            *[getattr(r, k) for k in which],
            f"`{_shown(r.overrides, shared)}`",
            r.status,
            _fmt(r.val),
            *([_fmt(r.val_f1)] if f1 else []),
            *[_fmt(r.test.get(n)) for n in names],
            "" if r.epochs is None else str(r.epochs),
            "" if r.seconds is None else f"{r.seconds:.2f}",
            r.job,
        ]
        for i, r in enumerate(rows, 1)
    ]
    return _md_table(header, lines)


def _groups_table(groups: list[SeedGroup], shared: list[str]) -> list[str]:
    names = _test_names([r for g in groups for r in g.rows])
    header = [
        "overrides (all but seed and data.fold)",
        "seeds / folds",
        "val (mean ± std)",
        *[f"test {n}" for n in names],
    ]
    lines = [
        [
            f"`{_shown(g.overrides, shared)}`",
            ",".join(sorted(_repeat(r) for r in g.rows)),
            f"{g.monitor} {_pm(g.val)}",
            *[_pm(g.test(n)) for n in names],
        ]
        for g in groups
    ]
    return _md_table(header, lines)


def _repeat(row: Row) -> str:
    """Which repeat a run is: its seed, its fold, or both (seed/fold)."""
    parts = [p for p in (row.seed, row.fold and f"fold {row.fold}") if p is not None]
    return "/".join(parts) or "-"


# Shown in the runs table; any other status is listed under "Failed or interrupted". A pruned
# Optuna trial stopped early by design: its value is that of its best epoch before it stopped.
_FINISHED = ("completed", "running", "pruned")


def to_markdown(rows: list[Row], title: str) -> str:
    """The summary as Markdown: best run, all runs sorted, seed groups, failures."""
    counts = {s: sum(r.status == s for r in rows) for s in dict.fromkeys(r.status for r in rows)}
    out = [
        f"# Sweep summary: {title}",
        "",
        f"{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
        "",
    ]
    shared = shared_overrides(rows)
    if shared:
        out += [f"Every run: `{' '.join(shared)}`; the tables show the overrides that differ.", ""]
    datasets = len({r.data for r in rows}) > 1
    for row in best_rows(rows):
        on = f" on {row.data}" if datasets else ""
        out.append(
            f"**Best**{on} (val {row.monitor} {_fmt(row.val)}, {row.mode}): "
            f"`{_shown(row.overrides, shared)}` in `{row.job}`"
        )
    finished = [r for r in rows if r.status in _FINISHED]
    if finished:  # failed and interrupted runs have their own section below
        out += ["", "## Runs (best first)", "", *_runs_table(finished, shared)]
    groups = seed_groups(rows)
    if groups:
        out += [
            "",
            "## Seeds and folds: mean ± sample std over runs that differ only by seed or "
            "data.fold (cross-validation)",
            "",
        ]
        out += _groups_table(groups, shared)
    failed = [r for r in rows if r.status not in _FINISHED]
    if failed:
        out += ["", "## Failed or interrupted", ""]
        out += [
            f"- `{r.job}` ({r.status}) `{_shown(r.overrides, shared)}`: "
            f"{r.error or 'no error recorded'}"
            for r in failed
        ]
    return "\n".join(out) + "\n"


@dataclass
class Summary:
    """What a summary found and where it was written."""

    rows: list[Row]
    markdown: str
    md_path: Path

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status not in ("completed", "pruned")]


def summarize(root: Path, write: bool = True) -> Summary:
    """Collect every run under `root`, sort them, and write summary.csv / summary.md there."""
    root = Path(root)
    rows = sort_rows(collect(root))
    markdown = to_markdown(rows, str(root))
    if write:
        write_text_atomic(root / CSV_NAME, to_csv(rows))
        write_text_atomic(root / MD_NAME, markdown)
    return Summary(rows, markdown, root / MD_NAME)


def main(argv: list[str] | None = None) -> None:
    """`dlrun-summary DIR`: rebuild and print the summary of a sweep or outputs folder."""
    parser = argparse.ArgumentParser(
        prog="dlrun-summary",
        description=(
            "Summarise every run (metrics.json) under DIR into DIR/summary.csv and DIR/summary.md."
        ),
    )
    parser.add_argument("dir", type=Path, help="a sweep folder or an outputs folder")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        sys.exit(
            f"dlrun-summary: error: {args.dir} is not a folder: give a sweep or outputs folder"
        )
    summary = summarize(args.dir)
    if not summary.rows:
        sys.exit(f"dlrun-summary: error: no run (metrics.json) under {args.dir}")
    print(summary.markdown, end="")
    print(f"wrote {args.dir / CSV_NAME} and {summary.md_path}")


if __name__ == "__main__":
    main()
