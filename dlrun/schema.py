"""The one typed definition of dlrun's own config keys: the run keys at the top level, `trainer`
and `sweep`. Each key is one field with its default, type, allowed values and a one-line doc;
validation (dlrun/validate.py), `dlrun --help`, the loop's settings (`TrainerConfig`), the
top-level block of conf/config.yaml and docs/config.md all come from here.

Add a key: add one field below with `key(...)`, then run `python -m dlrun.schema --write` (it
rewrites conf/config.yaml's generated block and docs/config.md; tests/unit/test_schema.py fails
while they are stale). Keys of the config groups (model, data, ...) live in their own YAML.

Imports neither torch nor Hydra: `dlrun --help` reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --- allowed values -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A value check and what a good value looks like, for the error message and the docs."""

    ok: Callable[[Any], bool]
    expected: str


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def positive_int(v: Any) -> bool:
    return is_int(v) and v > 0


def positive_number(v: Any) -> bool:
    return is_number(v) and v > 0


POSITIVE_INT = Rule(positive_int, "a positive integer")
OPTIONAL_POSITIVE_INT = Rule(lambda v: v is None or positive_int(v), "a positive integer or null")
NON_NEGATIVE_INT = Rule(lambda v: is_int(v) and v >= 0, "an integer >= 0")
NON_NEGATIVE_NUMBER = Rule(lambda v: is_number(v) and v >= 0, "a number >= 0")
BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
AUTO_OR_POSITIVE_INT = Rule(lambda v: v == "auto" or positive_int(v), "auto or a positive integer")


def is_list(v: Any) -> bool:
    """A list typed on the command line (a string is a sequence too, but never a list here)."""
    return isinstance(v, Sequence) and not isinstance(v, str)


def a_list_of(what: str) -> Rule:
    return Rule(is_list, f"a list of {what}")


def one_of(*choices: Any, expected: str | None = None) -> Rule:
    """A value from a fixed set; `expected` words them when the plain list would not."""
    words = ["null" if c is None else str(c) for c in choices]
    shown = " or ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)
    return Rule(lambda v: v in choices, expected or shown)


# --- one key ---------------------------------------------------------------------------------


def key(default: Any, doc: str, rule: Rule | None = None, example: str | None = None) -> Any:
    """A config key: its default, a one-line doc, the rule its value must pass (None: any value)
    and an example value for the error message."""
    meta = {"doc": doc, "rule": rule, "example": example}
    if isinstance(default, (list, dict)):  # a fresh container per instance
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type, doc: str) -> Any:
    """A nested section (trainer.early_stopping): its own dataclass of keys."""
    return field(default_factory=cls, metadata={"doc": doc, "rule": None, "example": None})


# --- the sections ----------------------------------------------------------------------------


# trainer.epochs=auto: the epochs most data trains for, and the ceiling when a small table's
# step budget (DataBundle.min_steps, set by the table builders) asks for more.
AUTO_EPOCHS = 30
MAX_AUTO_EPOCHS = 1000
TABLE_STEPS = 3000


@dataclass
class EarlyStoppingConfig:
    patience: int | None = key(
        None,
        "epochs without improvement of `metric` before stopping; null = off",
        Rule(OPTIONAL_POSITIVE_INT.ok, "a positive integer, or null to turn early stopping off"),
    )
    metric: str = key("${trainer.monitor}", "the validation metric early stopping watches")
    min_delta: float = key(
        0.0, "the least change that counts as an improvement", NON_NEGATIVE_NUMBER
    )


@dataclass
class TrainerConfig:
    """The loop's settings, as typed: `auto` values are resolved by `resolved()`."""

    epochs: int | str = key(
        "auto",
        f"epochs to train; auto = {AUTO_EPOCHS}, or for a small table (the data asks for "
        f"{TABLE_STEPS:,} optimizer steps) as many as reach them, at most {MAX_AUTO_EPOCHS:,}, "
        "stopped early once the monitored metric has not improved for a tenth of them (>= 20)",
        AUTO_OR_POSITIVE_INT,
        "10",
    )
    batch_size: int = key(64, "training batch size (global under torchrun)", POSITIVE_INT, "64")
    eval_batch_size: int = key(1024, "validation/test batch size", POSITIVE_INT, "1024")
    grad_clip: float | None = key(
        None,
        "max global gradient norm; null = off",
        Rule(
            lambda v: v is None or positive_number(v),
            "a positive max-norm, or null to turn clipping off",
        ),
    )
    grad_accum: int = key(
        1,
        "micro-batches per optimizer step",
        Rule(positive_int, "a positive integer (1 = no accumulation)"),
    )
    monitor: str = key(
        "auto",
        "validation metric that picks the best epoch (accuracy, f1_macro, loss, mae, rmse, r2...); "
        "auto = the task's (classification: accuracy, regression: loss)",
    )
    early_stopping: EarlyStoppingConfig = section(
        EarlyStoppingConfig, "stop when `metric` has not improved for `patience` epochs"
    )
    limit_train_batches: int | None = key(
        None, "cap on training batches per epoch (debugging)", OPTIONAL_POSITIVE_INT
    )
    limit_eval_batches: int | None = key(
        None, "cap on validation/test batches (debugging)", OPTIONAL_POSITIVE_INT
    )
    overfit_batches: int | None = key(
        None,
        "train and validate on the first N training batches only (debug=overfit)",
        OPTIONAL_POSITIVE_INT,
    )
    precision: str = key(
        "32",
        "32 | bf16 | fp16 (autocast; fp16 adds a GradScaler)",
        Rule(lambda v: str(v) in {"32", "bf16", "fp16"}, "32, bf16 or fp16"),
    )
    deterministic: bool = key(
        False,
        "bit-identical runs for one command and seed: a fixed thread count (no tuning) and "
        "torch.use_deterministic_algorithms (else cudnn.benchmark on CUDA)",
        BOOL,
    )
    compile: bool | str = key(
        False,
        "torch.compile the model (a GAN: generator and discriminator): false | true | a mode "
        "(reduce-overhead, max-autotune); checkpoints keep plain keys",
        Rule(
            lambda v: (
                isinstance(v, bool)
                or v in {"default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"}
            ),
            "false, true or a torch.compile mode (reduce-overhead, max-autotune)",
        ),
    )
    channels_last: bool = key(
        False, "channels-last memory format for CNNs (faster convolutions on GPUs)", BOOL
    )
    finite_check_every: int | str = key(
        "auto",
        "read the loss's finiteness every N steps; auto = 1 on CPU, 50 on GPU "
        "(each read is a host sync); always before a checkpoint",
        AUTO_OR_POSITIVE_INT,
    )
    progress: bool = key(
        True,
        "tqdm bar over batches when stderr is a terminal (one summary line per epoch always)",
        BOOL,
    )
    checkpoint_every_steps: int | None = key(
        None, "also write last.pt every N batches, so a kill loses at most N", OPTIONAL_POSITIVE_INT
    )
    keep_last_k: int | None = key(
        None, "keep numbered epoch_NNN.pt checkpoints, the k newest", OPTIONAL_POSITIVE_INT
    )
    save_optimizer: bool = key(
        True,
        "false: checkpoints without optimizer/scheduler state (a third of the size with Adam); "
        "resume= refuses such a checkpoint",
        BOOL,
    )
    skip_nonfinite: int = key(
        0, "skip up to K batches with a non-finite loss (0 = stop at the first)", NON_NEGATIVE_INT
    )
    log_every_n_steps: int = key(
        50,
        "loggers get the mean training loss and lr every N batches (one device read each)",
        POSITIVE_INT,
        "50",
    )
    threads: int | str = key(
        "auto",
        "CPU threads for torch; auto = up to the CPUs this process may use (shared by torchrun's "
        "local ranks, less data workers), as many as measured steps and free cores say pay off; "
        "N or OMP_NUM_THREADS: fixed",
        AUTO_OR_POSITIVE_INT,
        "1",
    )
    drop_last: bool | str = key(
        "auto",
        "the last, incomplete training batch: auto = drop it when it holds 1 sample (BatchNorm "
        "fails on one), true = always drop, false = keep",
        Rule(
            lambda v: v == "auto" or isinstance(v, bool),
            "auto (drop a last batch of one sample), true or false",
        ),
    )

    def with_budget(self, steps_per_epoch: int, min_steps: int | None) -> TrainerConfig:
        """trainer.epochs=auto decided: AUTO_EPOCHS, or for data that asks for `min_steps`
        optimizer steps (small tables: a fixed epoch count is 60 steps for a 150-row table) the
        epochs that reach them, with early stopping (unless set) ending them once the monitored
        metric stops improving. A typed epoch count is kept as it is."""
        if self.epochs != "auto":
            return self
        epochs, stop = AUTO_EPOCHS, self.early_stopping
        if min_steps and steps_per_epoch and min_steps > epochs * steps_per_epoch:
            epochs = min(-(-min_steps // steps_per_epoch), MAX_AUTO_EPOCHS)
            if stop.patience is None:
                stop = dataclasses.replace(stop, patience=max(20, epochs // 10))
        return dataclasses.replace(self, epochs=epochs, early_stopping=stop)

    @classmethod
    def from_config(cls, node: Any) -> TrainerConfig:
        """The typed settings from the composed `trainer` node (a DictConfig or a dict)."""
        return build(cls, node)

    def resolved(self, monitor: str, device_type: str) -> TrainerConfig:
        """A copy with the `auto` values decided: the task's monitor metric and the device's
        finiteness-check interval (reading a loss is free on CPU, a sync on a GPU)."""
        chosen = monitor if self.monitor == "auto" else self.monitor
        stop = self.early_stopping
        every = self.finite_check_every
        return dataclasses.replace(
            self,
            monitor=chosen,
            precision=str(self.precision),
            finite_check_every=(1 if device_type == "cpu" else 50) if every == "auto" else every,
            early_stopping=dataclasses.replace(
                stop, metric=chosen if stop.metric in (None, "auto") else stop.metric
            ),
        )


@dataclass
class SweepConfig:
    fail_fast: bool = key(
        False, "stop the sweep at the first failed job (default: record it and go on)", BOOL
    )
    resume: bool = key(
        False,
        "continue the newest earlier sweep of the same command: skip completed jobs, resume "
        "unfinished ones",
        BOOL,
    )


EXPORT_FORMATS = ("onnx", "torchscript")


@dataclass
class PredictConfig:
    on_error: str = key(
        "fail",
        "mode=predict: an unreadable image or row stops the run (fail) or is listed and left out "
        "(skip)",
        one_of("fail", "skip"),
    )


# A run name joins the run folder's name, so it may not hold a path separator or start with a dot.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class RunConfig:
    """The top level of conf/config.yaml that dlrun owns (the groups have their own YAML)."""

    seed: int = key(
        0,
        "seeds python, numpy and torch; also decides the validation split and batch order",
        NON_NEGATIVE_INT,
        "42",
    )
    name: str | None = key(
        None,
        "a label for the run: in metrics.json, the run folder's name and every logger",
        Rule(
            lambda v: v is None or bool(RUN_NAME.fullmatch(str(v))),
            "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ),
        "baseline",
    )
    tags: list = key(
        [],
        "labels for the run: in metrics.json and every logger, e.g. tags=[ablation,small]",
        a_list_of("labels, e.g. tags=[ablation,small]"),
        "[ablation]",
    )
    mode: str = key(
        "train",
        "train | eval (evaluate ckpt=PATH on `split`) | predict (ckpt=PATH on input=PATH) | "
        "export (ckpt=PATH as `format`)",
        one_of("train", "eval", "predict", "export"),
    )
    resume: str | None = key(
        None,
        "PATH (a run folder or checkpoint) to continue it in place; auto = the newest unfinished "
        "run with this config",
    )
    ckpt: str | None = key(
        None, "mode=eval/predict/export: a run folder (its best.pt) or a .pt file"
    )
    split: str = key("test", "mode=eval: test | val", one_of("test", "val"))
    input: str | None = key(
        None,
        "mode=predict: a CSV (tables, text), a text file (one document a line), an image, a folder "
        "of images, an MNIST/CIFAR file",
    )
    topk: int = key(
        5,
        "mode=predict: the most probable classes listed per input (at most the model's classes)",
        POSITIVE_INT,
        "3",
    )
    samples: int = key(
        64,
        "mode=predict on a GAN: images to generate, from `seed`",
        Rule(positive_int, "a positive integer (images a GAN generates)"),
        "16",
    )
    predict: PredictConfig = section(PredictConfig, "mode=predict: how inputs are read")
    format: str = key("onnx", "mode=export: onnx | torchscript", one_of(*EXPORT_FORMATS))
    export: list = key(
        [],
        "formats to export at the end of training, e.g. export=[onnx,torchscript]",
        Rule(
            lambda v: is_list(v) and set(v) <= set(EXPORT_FORMATS),
            "a list of onnx and torchscript",
        ),
        "[onnx]",
    )
    plots: bool = key(
        True, "write plots/*.png at the end of a run (about 1-2 s of matplotlib)", BOOL
    )
    plugins: list = key(
        [],
        "your own modules, importable by name: plugins=[mymodels] (see docs/plugins.md)",
        a_list_of("module names, e.g. plugins=[mymodels]"),
        "[mymodels]",
    )
    optimizers: dict = key(
        {}, "per-group settings merged over `optimizer` (GANs: optimizers.generator.lr=1e-4)"
    )
    trainer: TrainerConfig = section(TrainerConfig, "the training loop")
    sweep: SweepConfig = section(SweepConfig, "multirun only (dlrun -m ...); see docs/sweeps.md")


# --- reading the schema ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    """One documented key: `trainer.early_stopping.patience`, its default, type, doc, rule."""

    name: str
    default: Any
    type: str
    doc: str
    rule: Rule | None
    example: str | None

    def expected(self) -> str:
        """What a good value looks like, e.g. 'a positive integer, e.g. trainer.epochs=10'."""
        assert self.rule is not None
        tail = f", e.g. {self.name}={self.example}" if self.example else ""
        return self.rule.expected + tail


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def all_keys(cls: type = RunConfig, prefix: str = "") -> Iterator[KeyInfo]:
    """Every key of a section, nested sections flattened to dotted names, in definition order."""
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if dataclasses.is_dataclass(_default(f)):
            yield from all_keys(type(_default(f)), name + ".")
            continue
        meta = f.metadata
        yield KeyInfo(name, _default(f), str(f.type), meta["doc"], meta["rule"], meta["example"])


def sections(cls: type = RunConfig, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted name, doc) of every nested section, e.g. ('trainer', 'the training loop')."""
    for f in dataclasses.fields(cls):
        value = _default(f)
        if dataclasses.is_dataclass(value):
            yield prefix + f.name, f.metadata["doc"]
            yield from sections(type(value), prefix + f.name + ".")


def build(cls: type, node: Any) -> Any:
    """A section's dataclass from a config node; keys the node lacks keep their defaults (an
    older checkpoint's config), keys the schema lacks are ignored (validation reports them)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in node:
            continue
        value = node[f.name]
        sub = _default(f)
        values[f.name] = build(type(sub), value) if dataclasses.is_dataclass(sub) else value
    return cls(**values)


# --- generated files: conf/config.yaml's block and docs/config.md ----------------------------

ROOT = Path(__file__).resolve().parent.parent  # a source checkout: conf/ and docs/ are here
BEGIN = (
    "# --- generated by `python -m dlrun.schema --write` from dlrun/schema.py: edit the schema ---"
)
END = "# --- end of the generated keys ---"


def yaml_value(value: Any) -> str:
    """A default as YAML writes it: null, true, 30, "32" (quoted where YAML would retype it)."""
    import yaml  # PyYAML ships with OmegaConf

    if isinstance(value, str) and yaml.safe_load(value) == value:
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def config_block(cls: type = RunConfig, indent: str = "") -> list[str]:
    """The YAML lines of a section: `key: default   # doc`, nested sections indented."""
    lines = []
    for f in dataclasses.fields(cls):
        value = _default(f)
        if dataclasses.is_dataclass(value):
            lines.append(f"{indent}{f.name}:".ljust(31) + f"# {f.metadata['doc']}")
            lines += config_block(type(value), indent + "  ")
            continue
        lines.append(f"{indent}{f.name}: {yaml_value(value)}".ljust(30) + f" # {f.metadata['doc']}")
    return lines


def with_config_block(text: str) -> str:
    """conf/config.yaml's text with the generated block between BEGIN and END rewritten."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"conf/config.yaml lacks the marker lines {BEGIN!r} and {END!r}")
    head, rest = text.split(BEGIN + "\n", 1)
    _, tail = rest.split(END + "\n", 1)
    return head + BEGIN + "\n" + "\n".join(config_block()) + "\n" + END + "\n" + tail


def markdown() -> str:
    """docs/config.md: every key of the schema with its default, type and meaning."""
    lines = [
        "# Config keys",
        "",
        "<!-- generated by `python -m dlrun.schema --write` from dlrun/schema.py; do not edit -->",
        "",
        "dlrun's own keys: override any with `key=value`, e.g. `dlrun trainer.epochs=5 seed=1`.",
        "The config groups (`model`, `data`, `optimizer`, ...) have their keys in their YAML under",
        "`conf/`; `dlrun --help` shows them composed.",
        "",
        "| key | default | type | allowed | meaning |",
        "|---|---|---|---|---|",
    ]
    for k in all_keys():
        allowed = k.rule.expected if k.rule else "any"
        doc = k.doc.replace("|", "\\|")
        row = [f"`{k.name}`", f"`{yaml_value(k.default)}`", f"`{k.type}`".replace("|", "\\|")]
        lines.append("| " + " | ".join([*row, allowed.replace("|", "\\|"), doc]) + " |")
    return "\n".join(lines) + "\n"


GENERATED = {
    ROOT / "conf" / "config.yaml": lambda old: with_config_block(old),
    ROOT / "docs" / "config.md": lambda old: markdown(),
}


def stale() -> list[Path]:
    """The generated files whose committed text differs from what the schema gives."""
    out = []
    for path, make in GENERATED.items():
        old = path.read_text() if path.exists() else ""
        if not old or make(old) != old:
            out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlrun.schema", description=__doc__)
    parser.add_argument("--markdown", action="store_true", help="print docs/config.md")
    parser.add_argument("--write", action="store_true", help="rewrite the generated files")
    parser.add_argument("--check", action="store_true", help="exit 1 when one is stale")
    args = parser.parse_args(argv)
    if args.write:
        for path, make in GENERATED.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(make(path.read_text() if path.exists() else ""))
            print(f"wrote {path.relative_to(ROOT)}")
    if args.check:
        for path in stale():
            print(f"{path.relative_to(ROOT)} is stale: run python -m dlrun.schema --write")
        return 1 if stale() else 0
    if args.markdown:
        sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
