"""What a prediction needs, saved with the model: a plain dict (checkpoint["preprocessing"] and
model.yaml's `preprocessing:`), made from the data bundle at training time.

It holds values only (names, numbers, the vocabulary), never code or import paths:

    version, task (what the model does), data_task, kind (table | images | text), input_shape,
    num_classes, num_targets,
    class_names, facts (what the model was sized from: vocab_size and padding_idx for text,
    batch_inputs unless just x, normalization {mean, std} for images),
    images {channels, size, mean, std}      pixels are read as uint8, resized, then normalised
    table  TablePreprocessing.to_state() (dlrun/data/table_prep.py): features, mean, std,
           categories, imputation, target scaling, class names
    text   {text_columns, tokenizer, lowercase, max_length, vocab}
"""

from __future__ import annotations

from typing import Any

import torch

from dlrun.data.bundle import DataBundle, ImageFacts, InMemorySplit, TextFacts
from dlrun.errors import DataError

VERSION = 1


def describe(data: DataBundle, task: str, data_config: dict[str, Any]) -> dict[str, Any]:
    """The preprocessing of this bundle, as plain values."""
    prep: dict[str, Any] = {
        "version": VERSION,
        "task": task,
        "data_task": data.task,
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "num_targets": data.num_targets,
        "class_names": list(data.class_names) if data.class_names else None,
        "facts": _model_facts(data),
    }
    if data.text is not None:
        prep["kind"], prep["text"] = "text", _text(data.text.state, data_config)
    elif data.images is not None:
        channels, height, width = data.input_shape
        prep["kind"] = "images"
        prep["images"] = {"channels": channels, "size": [height, width], **data.images.to_state()}
    else:
        table = data.preprocessing
        prep["kind"], prep["table"] = "table", table.to_state() if table is not None else None
    return prep


def _model_facts(data: DataBundle) -> dict[str, Any]:
    """What the model and task were built from, as version 1 saves it under "facts"."""
    facts: dict[str, Any] = {}
    if data.text is not None:
        facts["vocab_size"], facts["padding_idx"] = data.text.vocab_size, data.text.padding_idx
    if data.batch_inputs != ("x",):  # the default is left out, as files before it were written
        facts["batch_inputs"] = list(data.batch_inputs)
    if data.images is not None:
        facts["normalization"] = data.images.to_state()
    return facts


def _text(state: dict[str, Any], data_config: dict[str, Any]) -> dict[str, Any]:
    columns = data_config.get("text_columns") or ["text"]
    return {
        "text_columns": [columns] if isinstance(columns, str) else list(columns),
        "tokenizer": state["tokenizer"],
        "lowercase": state["lowercase"],
        "label_column": data_config.get("label_column"),
        "max_length": state.get("max_length"),
        "vocab": list(state["vocab"]),
    }


def model_bundle(prep: dict[str, Any]) -> DataBundle:
    """A bundle without samples that tells build.py what the model was sized from."""
    empty = InMemorySplit({"x": torch.empty(0)})
    facts = prep["facts"]
    norm = facts.get("normalization")
    text = TextFacts(facts["vocab_size"], facts["padding_idx"]) if "vocab_size" in facts else None
    return DataBundle(
        train=empty,
        val=empty,
        test=empty,
        task=prep["data_task"],
        input_shape=tuple(prep["input_shape"]),
        num_classes=prep["num_classes"],
        num_targets=prep["num_targets"],
        class_names=prep["class_names"],
        images=ImageFacts(norm["mean"], norm["std"]) if norm else None,
        text=text,
        batch_inputs=tuple(facts.get("batch_inputs", ("x",))),
    )


def from_checkpoint(ckpt: dict[str, Any], where: str) -> dict[str, Any]:
    """The checkpoint's preprocessing, or one line saying it predates it."""
    prep = ckpt.get("preprocessing")
    if not isinstance(prep, dict) or prep.get("version") != VERSION:
        raise DataError(
            f"{where} holds no preprocessing (it was written by an older dlrun): train the model "
            "again to predict or export with it"
        )
    _check_classes(prep, where)
    return prep


def _check_classes(prep: dict[str, Any], where: str) -> None:
    """class_names: one text per class the model outputs (a short list would fail mid-way)."""
    names, classes = prep.get("class_names"), prep.get("num_classes")
    if names is None:
        return
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(f"{where}: its class_names are not a list of texts; it was altered")
    if isinstance(classes, int) and prep.get("task") == "classification":
        wanted = max(classes, 2)  # a binary model with one logit still names two classes
        if len(names) != wanted:
            raise DataError(
                f"{where}: it names {len(names)} classes for a model of {wanted}; it was altered "
                "or is damaged: use the run's own checkpoint"
            )
