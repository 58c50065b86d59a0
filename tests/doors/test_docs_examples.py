"""The README's and the main docs pages' examples, run as written: the commands are parsed out of
the pages' ```bash blocks (and the README's ```python block), so a changed doc changes the test.

The pages run in temporary working folders (README, data and hooks share one, so an example shown
on two pages runs once; using.md has its own) holding the files the examples name (tiny files in
the real formats: houses.csv, pics/, new.csv, MNIST idx and CIFAR pickles and AG_NEWS CSVs under
data/, with DLRUN_DATA_DIR pointing there so nothing downloads). Commands run in-process through
tests.conftest.run_dlrun (which, as for every test run, adds plots=false); `dlrun --version` is the
one real process (the console script itself). Where an example names a run folder that only exists
on the writer's machine (`outputs/2026-12-01/10-00-00-ab12cd`, `outputs/.../RUN`), the real folder
an earlier example on the page made stands in for it (see `run_for`); `dlrun-summary`'s sweep
folder likewise is the sweep the page's earlier `-m` example made.

Every example is classified: a `dlrun`/`dlrun-summary` command runs as written, or with the few
bounded overrides in EXTRA (each with its reason); anything else must be listed in NOT_HERE with
why it cannot run here, and the listed ones must still be in the docs (never skipped silently).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from dlrun.export import FORMATS
from tests.conftest import REPO, dlrun_env, read_metrics, run_dirs, run_dlrun
from tests.datasets import write_cifar, write_image_folder, write_mnist
from tests.smoke.test_predict import write_digits_csv
from tests.textdata import write_ag_news, write_labelled_csv

PAGES = ["README.md", "docs/data.md", "docs/using.md", "docs/hooks.md"]

# Examples that cannot run in this test, and why (the test asserts the parsed list is exactly this).
NOT_HERE = {
    "pip install -e . && dlrun": "installs the package (the tests run from that install)",
    'pip install -e ".[test]" && pytest': "installs the package and runs this suite",
    "dlrun model=resnet18 data=cifar100 trainer.precision=bf16": "a GPU recipe (tests/gpu/)",
    "dlrun name=baseline 'tags=[ablation]' logger=wandb": "needs a W&B account and the network",
    "ruff check . && ruff format --check .": "the lint CI runs, not a dlrun example",
    'pytest -m "not slow"': "this suite itself",
    "pytest -m gpu tests/gpu": "needs CUDA",
    "bash .ci/run": "CI: a fresh venv (downloads packages)",
}

# Bounded overrides appended to examples that as written train for minutes (or hundreds of
# epochs) here; each keeps the example's command, data and models, only shorter.
SMOKE = ("debug=smoke",)
EXTRA = {
    "dlrun -m optimizer=sgd,adam optimizer.lr=0.1,0.01": (SMOKE, "4 full runs"),
    "dlrun -m optimizer=sgd,adam optimizer.lr=0.1,0.01 seed=0,1,2": (SMOKE, "12 full runs"),
    "dlrun data=csv data.path=houses.csv data.target=price data.cv=5": (
        ("trainer.epochs=3",),
        "5 folds of a small table's auto epochs (up to 1,000 each)",
    ),
    "dlrun model=resnet18 data=image_folder data.path=pics/ data.image_size=64": (
        SMOKE,
        "ResNet-18 at 64 px for 30 epochs on 2 CPU cores",
    ),
    "dlrun model=timm model.name=convnext_atto data=cifar10 data.augment=trivialaugment "
    "data.cutmix=1.0": (SMOKE, "ConvNeXt for 30 epochs on 2 CPU cores"),
    "dlrun model=dcgan data=mnist": (SMOKE, "a GAN for 30 epochs on 2 CPU cores"),
    "dlrun model=cnn data=image_folder data.path=pics/train data.test_path=pics/test": (
        ("trainer.epochs=2",),
        "an 8.2M-parameter CNN at 64 px: a 98 MB checkpoint written and fsynced in each of 30 "
        "epochs (8 of the test's 27 s)",
    ),
    "dlrun model=cnn data=mnist": (
        ("trainer.epochs=2",),
        "a 1.6M-parameter CNN: a 19 MB checkpoint in each of 30 epochs",
    ),
    "dlrun -m hparams_search=optuna hydra.sweeper.n_trials=30 trainer.epochs=10": (
        ("hydra.sweeper.n_trials=2", "trainer.epochs=1", "debug=smoke"),
        "30 trials of 10 epochs",
    ),
    "dlrun model=gru data=ag_news model.num_layers=2 model.hidden=256": (
        ("trainer.epochs=1",),
        "a 2-layer GRU of 256 for 30 epochs",
    ),
}

# The example whose run folder stands in for a placeholder run folder, where it is not the newest
# training run of the same block: the README's predict/export/eval take the houses.csv run (its
# new.csv is a houses table without the price).
RUN_MADE_BY = {"README.md": "dlrun data=csv data.path=houses.csv data.target=price"}

# Pages sharing one working folder (and its runs: an example shown on two pages runs once);
# using.md's new.csv is a digits table, the README's a houses table: two folders.
WORKSPACES = {
    "shared": ["README.md", "docs/data.md", "docs/hooks.md"],
    "using": ["docs/using.md"],
}
PLACEHOLDER_RUN = re.compile(r"outputs/(\d{4}-\d\d-\d\d/[\w-]+|\.\.\./RUN)")
PLACEHOLDER_SWEEP = re.compile(r"outputs/multirun/\d{4}-\d\d-\d\d/[\w-]+")


def examples(page: str) -> list[tuple[int, str, str]]:
    """(block number, folder the example runs in, command) of every line of the page's ```bash
    blocks: comments dropped, `\\` continuations joined, `cd DIR` changing the folder of the
    block's later lines."""
    found, block, cwd, lines, language = [], 0, ".", [], None
    for raw in (REPO / page).read_text().splitlines():
        if raw.startswith("```"):
            language = raw[3:].strip() if language is None else None
            block, cwd = block + 1, "."
            continue
        if language != "bash":
            continue
        lines.append(raw.rstrip().removesuffix("\\"))
        if raw.rstrip().endswith("\\"):
            continue
        line = " ".join(part.strip() for part in lines)
        lines = []
        command = _without_comment(line)
        if command.startswith("cd "):
            cwd = command[3:].strip()
        elif command:
            found.append((block, cwd, command))
    return found


def _without_comment(line: str) -> str:
    """The line up to a shell comment (` #`, or `#` first; no example quotes a `#`)."""
    return "" if line.lstrip().startswith("#") else line.split(" #")[0].strip()


def python_examples(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / page).read_text(), flags=re.S)


def make_files(root: Path, workspace: str) -> None:
    """Every file and dataset the page's examples name, tiny, in their real formats."""
    data = root / "data"
    write_mnist(data, n_train=64, n_test=32)
    write_cifar(data, n_train=50, n_test=20)
    write_ag_news(data / "ag_news", n_train=200, n_test=60)
    shutil.copytree(REPO / "examples" / "plugin", root / "examples" / "plugin")
    reviews = write_labelled_csv(root / "reviews.csv", n=120)
    text = reviews.read_text().replace("headline,body,topic", "title,body,sentiment", 1)
    reviews.write_text(text)
    if workspace == "using":
        write_digits_csv(root)
        for part, n in (("train", 6), ("test", 3), ("new", 2)):
            write_image_folder(root / "pics" / part, ["cat", "dog"], per_class=n, size=28)
        (root / "new_reviews.csv").write_text("\n".join(text.splitlines()[:20]) + "\n")
        lines = [",".join(row.split(",")[1:3]) for row in text.splitlines()[1:6]]
        (root / "one_review_a_line.txt").write_text("\n".join(lines) + "\n")
        return
    write_image_folder(root / "pics", ["cat", "dog"], per_class=6, size=28)
    write_houses(root)


def write_houses(root: Path) -> None:
    """houses.csv (a price from size, rooms and town) and new.csv (the same columns, no price)."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows, new = ["size,rooms,town,price"], ["size,rooms,town"]
    for i in range(1000):  # 240 rows: 1,000 short epochs (auto epochs seek 3,000 steps), 6x slower
        size, rooms, town = rng.integers(40, 200), rng.integers(1, 6), ["Oslo", "Bergen"][i % 2]
        price = 3000 * size + 20000 * rooms + (50000 if town == "Oslo" else 0)
        rows.append(f"{size},{rooms},{town},{price + rng.normal(0, 5000):.0f}")
        new.append(f"{size},{rooms},{town}")
    (root / "houses.csv").write_text("\n".join(rows) + "\n")
    (root / "new.csv").write_text("\n".join(new[:20]) + "\n")


def exports(folder: Path) -> list[Path]:
    return [p for name in FORMATS.values() for p in (folder / "outputs").rglob(name)]


class Page:
    """Runs one page's examples in order in its working folder, remembering the run folders."""

    def __init__(self, page: str, root: Path) -> None:
        self.page, self.root = page, root
        self.env = {"DLRUN_DATA_DIR": str(root / "data")}
        self.runs: dict[str, Path] = {}  # example -> the run (or sweep) folder it made
        self.last_training: dict[tuple[str, int], str] = {}  # its newest training example

    def run_for(self, block: int) -> Path:
        made_by = self.last_training.get((self.page, block)) or RUN_MADE_BY[self.page]
        return self.runs[made_by]

    def run(self, block: int, cwd: str, command: str) -> None:
        words = shlex.split(command)
        args = [PLACEHOLDER_RUN.sub(lambda _: str(self.run_for(block)), w) for w in words[1:]]
        args += EXTRA.get(command, ((), ""))[0]
        folder, started = self.root / cwd, time.process_time()
        before = set(run_dirs(folder)) | set(exports(folder))
        if words[0] == "dlrun-summary":
            self.summary([PLACEHOLDER_SWEEP.sub(lambda _: str(self.sweep()), a) for a in args])
            return
        if words[1:] == ["--version"]:  # the console script itself: the one real process
            proc = subprocess.run(
                words, cwd=folder, env=dlrun_env(), capture_output=True, text=True
            )
        else:
            proc = run_dlrun(*args, cwd=folder, checksums=False, **self.env)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        print(f"{time.process_time() - started:5.1f} s CPU  {command}")
        if words[1:] == ["--version"]:
            assert re.match(r"dlrun \d", proc.stdout), proc.stdout
            return
        if "mode=export" in words:
            assert set(exports(folder)) - before, f"{command} exported nothing"
            return
        made = [r for r in run_dirs(folder) if r not in before]
        assert made, f"{command} made no run folder"
        assert all(read_metrics(r)["status"] == "completed" for r in made), command
        self.runs[command] = made[-1].parent if "-m" in words else made[-1]
        if "mode=" not in command and "-m" not in words:
            self.last_training[self.page, block] = command

    def sweep(self) -> Path:
        return next(f for c, f in reversed(self.runs.items()) if " -m " in c)

    def summary(self, args: list[str]) -> None:
        from dlrun import summary

        summary.main(args)
        assert (Path(args[0]) / "summary.csv").is_file()


def classify(page: str) -> tuple[list[tuple[int, str, str]], list[str]]:
    """(the page's examples to run, the ones listed as not runnable here)."""
    found = examples(page)
    return [e for e in found if e[2] not in NOT_HERE], [e[2] for e in found if e[2] in NOT_HERE]


def test_every_example_is_classified():
    """An example not runnable here is listed with its reason (never skipped silently), and every
    listed exception still exists in the docs."""
    assert sorted(PAGES) == sorted(p for pages in WORKSPACES.values() for p in pages)
    commands = [command for page in PAGES for _, _, command in examples(page)]
    skipped = [c for c in commands if c in NOT_HERE]
    assert sorted(set(skipped)) == sorted(NOT_HERE)
    assert set(EXTRA) <= set(commands)
    assert set(RUN_MADE_BY.values()) <= set(commands)
    assert all(c.startswith(("dlrun ", "dlrun-summary ")) for c in commands if c not in NOT_HERE)


@pytest.mark.slow
@pytest.mark.parametrize("workspace", WORKSPACES)
def test_the_pages_examples_run_as_written(workspace, tmp_path):
    make_files(tmp_path, workspace)
    runner = Page(WORKSPACES[workspace][0], tmp_path)
    for page in WORKSPACES[workspace]:
        runner.page = page
        for block, cwd, command in classify(page)[0]:
            if command not in runner.runs:  # a command shown twice runs once
                runner.run(block, cwd, command)
        if page == "README.md":
            for code in python_examples(page):
                run_python(code, tmp_path, runner.env)


def run_python(code: str, root: Path, env: dict[str, str]) -> None:
    """The README's Python example, executed as written in the page's working folder."""
    from tests.inprocess import _process_state

    scope: dict = {}
    with _process_state(root, env):
        exec(compile(code, "README.md", "exec"), scope)  # the docs' own code, not a file's
    assert scope["result"].status == "completed"
    assert scope["predictor"] is not None


def test_the_hooks_page_shows_the_hook_the_example_runs():
    """docs/hooks.md's plugin hook is examples/plugin/myhooks.py word for word: the file its
    `dlrun plugins=[myhooks] hooks=[count_calls]` example (run above) imports."""
    (code,) = python_examples("docs/hooks.md")
    assert code == (REPO / "examples" / "plugin" / "myhooks.py").read_text()
