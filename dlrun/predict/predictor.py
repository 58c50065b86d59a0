"""A trained model with its preprocessing: `Predictor.load(run)` rebuilds it from a checkpoint
(through build.py's allowlist and signature checks: the checkpoint's config is data), and
`predict(...)` runs it batch-wise, on the GPU when there is one, over new inputs.

The preprocessing is the training code's own: images go through the data's ImageBatchTransform,
tables through tabular.scale_features, text through the corpus tokeniser, vocabulary and padding.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor

from dlrun import build, checkpoint, config_record, registry, resume
from dlrun.data.bundle import Batch, InMemorySplit, Split
from dlrun.errors import DataError
from dlrun.loop import autocast
from dlrun.predict import inputs as readers
from dlrun.predict import preprocessing
from dlrun.runtime import resolve_device
from dlrun.tasks.base import Task


@dataclass
class Predictions:
    """What a model said about each input, in input order (skipped inputs left out)."""

    ids: list[str]
    id_name: str = "row"
    class_names: list[str] | None = None
    probabilities: np.ndarray | None = None  # (N, classes): classification
    index: np.ndarray | None = None  # (N,) the predicted class numbers
    values: np.ndarray | None = None  # (N, targets), in the target's own units: regression
    images: np.ndarray | None = None  # (N, C, H, W) in [0, 1]: reconstructions, GAN samples
    errors: np.ndarray | None = None  # (N,) per-image MSE of a reconstruction
    targets: list[str] | None = None  # the true labels, where the inputs had them
    extra: dict[str, list[str]] = field(default_factory=dict)  # other input columns
    skipped: list[str] = field(default_factory=list)  # "where: why" of inputs left out

    @property
    def labels(self) -> list[str]:
        """The predicted class names (classification) or values as text (regression)."""
        if self.probabilities is not None and self.class_names:
            index = self.index if self.index is not None else self.probabilities.argmax(1)
            return [self.class_names[int(i)] for i in index]
        if self.values is not None:
            return [" ".join(f"{v:.6g}" for v in row) for row in self.values]
        return []

    def topk(self, k: int) -> list[list[tuple[str, float]]]:
        """The k most probable (class name, probability) pairs of each input."""
        assert self.probabilities is not None and self.class_names
        order = np.argsort(-self.probabilities, axis=1, kind="stable")[:, :k]
        return [
            [(self.class_names[j], float(p[j])) for j in row]
            for p, row in zip(self.probabilities, order, strict=True)
        ]

    def accuracy(self) -> float | None:
        """The share of inputs whose true label (when known) is the predicted class."""
        if self.probabilities is None or not self.targets:
            return None
        right = sum(t == p for t, p in zip(self.targets, self.labels, strict=True))
        return right / len(self.targets)

    def scores(self) -> dict[str, float]:
        """Against the true labels or values the inputs had: accuracy (classification), or
        MAE, RMSE and R^2 in the target's units (regression; rows whose value is not a number
        are left out). Empty when the inputs had none."""
        accuracy = self.accuracy()
        if accuracy is not None:
            return {"accuracy": accuracy}
        if self.values is None or not self.targets:
            return {}
        true = np.array([_number(t) for t in self.targets], dtype=np.float64)
        ok = np.isfinite(true) & (self.values.shape[1] == 1)
        if not ok.any():
            return {}
        y, pred = true[ok], self.values[ok, 0].astype(np.float64)
        spread = float(((y - y.mean()) ** 2).sum())
        return {
            "mae": float(np.abs(pred - y).mean()),
            "rmse": float(np.sqrt(((pred - y) ** 2).mean())),
            "r2": 1 - float(((pred - y) ** 2).sum()) / spread if spread > 0 else float("nan"),
        }


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _run_settings(trainer: Any, file: Path) -> tuple[str, int]:
    """(precision, eval batch size) the checkpoint's run used, checked like typed values: a
    batch size of 0 or less would predict nothing and still write an (empty) predictions.csv."""
    trainer = trainer if isinstance(trainer, dict) else {}
    precision, size = str(trainer.get("precision", "32")), trainer.get("eval_batch_size", 1024)
    if precision not in ("32", "bf16", "fp16"):
        raise DataError(f"checkpoint {file}: trainer.precision={precision!r} is not 32, bf16, fp16")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise DataError(
            f"checkpoint {file}: trainer.eval_batch_size={size!r} is not a positive integer; "
            "it was altered, use the run's own checkpoint"
        )
    return precision, size


def _cat(parts: list[np.ndarray]) -> np.ndarray | None:
    return np.concatenate(parts) if parts else None


class Predictor:
    """A model rebuilt from a checkpoint, with the preprocessing it was trained with."""

    def __init__(
        self,
        task: Task,
        prep: dict[str, Any],
        device: torch.device,
        precision: str = "32",
        batch_size: int = 1024,
    ) -> None:
        self.task, self.prep, self.device = task, prep, device
        self.precision, self.batch_size = precision, batch_size
        self.class_names: list[str] | None = prep.get("class_names")
        self.kind: str = prep["kind"]
        self.config: dict[str, Any] = {}  # the training run's config (set by load)
        self.table = None  # a table's fitted preprocessing (dlrun/data/table_prep.py)
        if self.kind == "table" and prep.get("table"):
            from dlrun.data.table_prep import TablePreprocessing

            self.table = TablePreprocessing.from_state(prep["table"])

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", plugins: Sequence[str] = ()) -> Predictor:
        """A run folder (its best checkpoint) or a .pt file; a model of a plugin module needs
        that plugin named in `plugins` (a file never chooses code to import)."""
        file = resume.checkpoint_file(path, name="best")
        ckpt = checkpoint.load(file)
        prep = preprocessing.from_checkpoint(ckpt, str(file))
        saved = ckpt["config"]
        sections = {k: saved[k] for k in ("model", "loss", "data") if k in saved}
        if isinstance(sections.get("model"), dict):  # its weights come from the checkpoint
            sections["model"] = config_record.without_weight_sources(sections["model"])
        # A checkpoint is data: it may name built-ins (and plugin code only of `plugins` the
        # caller names), and its strings are taken literally (no interpolation evaluated).
        registry.check_config(sections, from_file=str(file), typed_plugins=plugins)
        registry.activate(plugins)
        cfg = OmegaConf.create(config_record.literal(sections))
        target = torch.device(resolve_device(device))
        task = build.build_task(cfg, preprocessing.model_bundle(prep), target)
        checkpoint.load_weights(task.model, ckpt.get("model"), file)
        task.model.eval()
        precision, batch_size = _run_settings(saved.get("trainer"), file)
        predictor = cls(task, prep, target, precision, batch_size)
        predictor.config = saved
        return predictor

    def _fitted_table(self) -> Any:
        """The table preprocessing new rows are encoded with (a dataset that fitted none, such as
        a plugin's own builder, trains and tests fine but cannot encode new rows)."""
        if self.table is None:
            raise DataError(
                "this table model saved no preprocessing for new rows (its dataset builder fitted "
                "none): predict on tensors of encoded features instead, or train it again"
            )
        return self.table

    # --- preprocessing -----------------------------------------------------------------------
    def split(self, tensors: dict[str, Tensor]) -> InMemorySplit:
        """Raw inputs (uint8 images, unscaled features, token-id rows) as a batched split."""
        if self.kind == "images":
            from dlrun.data.augment import ImageBatchTransform

            images = self.prep["images"]
            return InMemorySplit(tensors, ImageBatchTransform(images["mean"], images["std"]))
        return InMemorySplit(tensors)  # table rows and token ids are encoded when read

    def encode_text(self, docs: Sequence[str]) -> InMemorySplit:
        """Documents -> padded token ids, exactly as training encoded its rows."""
        from dlrun.data import corpus
        from dlrun.data.text import pad
        from dlrun.data.tokenize import get_tokenizer
        from dlrun.data.vocab import Vocab

        text = self.prep["text"]
        tokenizer = get_tokenizer(text["tokenizer"], text["lowercase"])
        found = corpus.tokenize_splits({"new": [(d, 0) for d in docs]}, tokenizer, [])
        table = Vocab.from_state(text["vocab"]).table_for(found.types, torch.int32)
        docs_ids = found.splits["new"]
        docs_ids.ids = table[docs_ids.ids] if len(docs_ids.ids) else docs_ids.ids
        split = pad(docs_ids, text["max_length"])
        del split.tensors["y"]
        return split

    # --- running the model -------------------------------------------------------------------
    def _batches(self, split: Split, limit: int | None = None) -> Iterator[Batch]:
        for batch in itertools.islice(split.batches(self.batch_size), limit):
            yield {k: v.to(self.device) for k, v in batch.items()}

    @torch.no_grad()
    def outputs(self, split: Split, limit_batches: int | None = None) -> dict[str, np.ndarray]:
        """The model's answers over a split, or its first `limit_batches` batches (its `y`, when
        present, is ignored)."""
        task, parts = self.task, {}
        task.model.eval()
        with autocast(self.device, self.precision):
            for batch in self._batches(split, limit_batches):
                for name, value in self._answer(task, batch).items():
                    parts.setdefault(name, []).append(value.float().cpu().numpy())
        return {name: np.concatenate(p) for name, p in parts.items()}

    def _answer(self, task: Task, batch: Batch) -> dict[str, Tensor]:
        answer = self._model_answer(task, {k: v for k, v in batch.items() if k != "y"})
        if "y" in batch and "probabilities" in answer:
            answer["y"] = batch["y"]
        elif "y" in batch and "values" in answer:
            answer["y"] = self._target_units(batch["y"].float())
        return answer

    def _model_answer(self, task: Task, batch: Batch) -> dict[str, Tensor]:
        answer = task.answers(batch)  # the task says what its model's output means
        if "values" in answer:
            answer["values"] = self._target_units(answer["values"])
        return answer

    def _target_units(self, out: Tensor) -> Tensor:
        """Regression outputs (standardised targets) in the target's own units."""
        return self.table.unscale_target(out) if self.table is not None else out

    def _collect(
        self, chunks: Iterable[tuple[readers.Chunk, InMemorySplit]], total: int
    ) -> dict[str, Any]:
        from tqdm import tqdm

        found: dict[str, Any] = {"ids": [], "targets": [], "extra": {}, "arrays": {}}
        with tqdm(
            total=total,
            disable=not sys.stderr.isatty() or total < 10_000,
            unit="input",
            leave=False,
        ) as bar:
            for chunk, split in chunks:
                for name, value in self.outputs(split).items():
                    found["arrays"].setdefault(name, []).append(value)
                found["ids"] += chunk.ids
                found["targets"] = (
                    None
                    if chunk.targets is None or found["targets"] is None
                    else (found["targets"] + chunk.targets)
                )
                for column, values in chunk.extra.items():
                    found["extra"].setdefault(column, []).extend(values)
                bar.update(len(chunk.ids))
        return found

    def _predictions(self, found: dict[str, Any], id_name: str, skipped: list[str]) -> Predictions:
        arrays = {k: _cat(v) for k, v in found["arrays"].items()}
        return Predictions(
            ids=found["ids"],
            id_name=id_name,
            class_names=self.class_names,
            targets=found["targets"] or None,
            extra=found["extra"],
            skipped=skipped,
            **arrays,
        )

    # --- the public entry points ---------------------------------------------------------------
    def predict(self, data: Any, on_error: str = "fail") -> Predictions:
        """`data`: a path (CSV or Parquet table, text file, image, folder of images, MNIST/CIFAR
        file), a pandas DataFrame (a table model's raw columns), an array or tensor (feature
        rows, or uint8 images at the training size), or a list of strings (documents) or of
        image paths."""
        if isinstance(data, str | Path):
            return self.predict_path(Path(data), on_error)
        if isinstance(data, list | tuple) and data and all(isinstance(d, str) for d in data):
            if self.kind == "text":
                return self._from_chunk(
                    "index",
                    readers.Chunk([str(i) for i in range(len(data))], {}),
                    self.encode_text(data),
                )
            return self._from_inputs(
                readers.read_image_list(
                    [Path(d) for d in data], self.prep, on_error, self.batch_size
                )
            )
        if self.table is not None and isinstance(data, list | tuple) and data:
            return self._table_rows(list(data), on_error)
        if (
            self.table is not None
            and type(data).__module__.startswith("pandas")
            and hasattr(data, "columns")
        ):
            return self._table_frame(data, on_error)
        if isinstance(data, np.ndarray | Tensor):
            x = torch.as_tensor(np.array(data)) if isinstance(data, np.ndarray) else data
            if self.table is not None:
                x = self._table_array(x)
            elif self.kind == "table":  # data that fitted no preprocessing (a plugin's own)
                x = self._raw_rows(x)
            else:
                x = readers.array_layout(x, self.prep)
            ids = [str(i) for i in range(len(x))]
            return self._from_chunk("index", readers.Chunk(ids, {"x": x}), self.split({"x": x}))
        raise DataError(
            f"cannot predict on a {type(data).__name__}: give a path, an array or tensor, or a "
            "list of strings"
        )

    def _raw_rows(self, x: Tensor) -> Tensor:
        """Feature rows as the model took them in training, where no preprocessing was fitted."""
        shape = tuple(self.prep["input_shape"])
        if tuple(x.shape[1:]) != shape:
            raise DataError(
                f"the array holds rows of shape {tuple(x.shape[1:])}; the model takes {shape}"
            )
        return x.float()

    def _table_array(self, x: Tensor) -> Tensor:
        """Raw numeric feature rows (N, features) in the training columns' order, encoded."""
        x = x.reshape(len(x), -1) if x.ndim > 1 else x[None]
        if x.shape[1] != len(self.table.features) or self.table.categories:
            raise DataError(
                f"an array of {x.shape[1]} columns cannot be encoded for this model: it takes the "
                f"columns {self.table.features}; give rows as dicts or a CSV file instead"
            )
        return self._fitted_table().transform_array(x.double().cpu().numpy())

    def _table_rows(self, rows: list[Any], on_error: str) -> Predictions:
        """Rows as dicts (column -> value), like a CSV's rows."""
        if not all(isinstance(r, dict) for r in rows):
            raise DataError("give table rows as dicts of column -> value, an array or a CSV path")
        skipped: list[str] = []
        errors = readers.ErrorPolicy(on_error, skipped)
        numbers, x = readers.encode_rows(self._fitted_table(), rows, "the rows", errors)
        chunk = readers.Chunk([str(n) for n in numbers], {"x": x})
        pred = self._from_chunk("row", chunk, InMemorySplit({"x": x}))
        pred.skipped = skipped
        return pred

    def _table_frame(self, frame: Any, on_error: str) -> Predictions:
        """A pandas DataFrame of raw columns (by name; others carried through)."""
        table = self._fitted_table()
        columns = [str(c) for c in frame.columns]
        missing = [f for f in table.features if f not in columns]
        if missing:
            raise DataError(
                f"the DataFrame lacks the feature column(s) {missing} the model was trained on "
                f"(it takes {table.features}, in any order)"
            )
        frame = frame.reset_index(drop=True)
        return self._from_inputs(readers.frame_inputs(frame, table, "the DataFrame", on_error))

    def predict_path(self, path: Path, on_error: str = "fail") -> Predictions:
        readers.regular_input(path)
        if self.kind == "text":
            id_name, docs, chunk = readers.read_text(path, self.prep["text"])
            return self._from_chunk(id_name, chunk, self.encode_text(docs))
        if self.kind == "table":
            return self._from_inputs(readers.read_table(path, self._fitted_table(), on_error))
        return self._from_inputs(
            readers.read_images(
                path, self.prep["images"], self.class_names, on_error, self.batch_size
            )
        )

    def _from_chunk(self, id_name: str, chunk: readers.Chunk, split: InMemorySplit) -> Predictions:
        pairs = [(chunk, split.to(self.device))]
        return self._predictions(self._collect(pairs, len(chunk.ids)), id_name, [])

    def _from_inputs(self, found: readers.Inputs) -> Predictions:
        # raw inputs go to the device first: uint8 images are 4x smaller than normalised floats
        pairs = ((c, self.split(c.tensors).to(self.device)) for c in found.chunks)
        collected = self._collect(pairs, found.total)
        if not collected["ids"]:
            raise DataError(
                f"no input could be read ({len(found.skipped)} skipped: "
                f"{found.skipped[0] if found.skipped else 'none found'})"
            )
        return self._predictions(collected, found.id_name, found.skipped)

    def predict_split(
        self, split: Split, ids: list[str], id_name: str, limit_batches: int | None = None
    ) -> Predictions:
        """A split of the training data (already preprocessed), e.g. the test split; with
        `limit_batches`, the samples of its first batches (those trainer.limit_eval_batches
        tested)."""
        arrays = self.outputs(split, limit_batches)
        y = arrays.pop("y", None)
        ids = ids[: len(next(iter(arrays.values()))) if arrays else 0]
        targets = None
        if y is not None and self.class_names and "probabilities" in arrays:
            targets = [self.class_names[int(i)] for i in y]
        elif y is not None:
            targets = [" ".join(f"{v:.6g}" for v in np.atleast_1d(row)) for row in y]
        found = {
            "ids": ids,
            "targets": targets,
            "extra": {},
            "arrays": {k: [v] for k, v in arrays.items()},
        }
        return self._predictions(found, id_name, [])

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> Predictions:
        """n images from a GAN's generator, noise drawn from `seed`."""
        if not self.task.samples_from_noise:
            raise DataError(f"samples=N needs a GAN; this model is a {self.prep['task']} model")
        noise = torch.randn(n, self.task.latent_dim, generator=torch.Generator().manual_seed(seed))
        parts = [
            (self.task.generator(z.to(self.device)).float() + 1) / 2
            for z in noise.split(self.batch_size)
        ]
        images = torch.cat(parts).clamp(0, 1).cpu().numpy()
        return Predictions(ids=[str(i) for i in range(n)], id_name="sample", images=images)
