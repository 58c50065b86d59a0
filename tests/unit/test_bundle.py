"""DataBundle's typed fields: what the model is told, what is saved with it, what the run folder
gets; image facts only for images; the saved preprocessing (version 1) still reads back."""

from __future__ import annotations

import pytest
import torch

from dlrun import build
from dlrun.data.bundle import DataBundle, ImageFacts, InMemorySplit, TextFacts
from dlrun.errors import ConfigError
from dlrun.predict.preprocessing import describe, model_bundle

# The preprocessing dicts as model.yaml and checkpoints stored them before the typed fields.
SAVED_IMAGES = {
    "version": 1,
    "task": "classification",
    "data_task": "classification",
    "input_shape": [1, 28, 28],
    "num_classes": 10,
    "num_targets": 1,
    "class_names": [str(i) for i in range(10)],
    "facts": {"normalization": {"mean": [0.1307], "std": [0.3081]}},
}
SAVED_TEXT = {
    **SAVED_IMAGES,
    "input_shape": [40],
    "num_classes": 2,
    "class_names": ["neg", "pos"],
    "facts": {"vocab_size": 12, "padding_idx": 0, "batch_inputs": ["x", "lengths"]},
}
TEXT_STATE = {
    "tokenizer": "basic_english",
    "lowercase": True,
    "max_length": None,
    "vocab": ["<pad>", "<unk>", *[f"w{i}" for i in range(10)]],
    "class_names": ["neg", "pos"],
}


def bundle(shape: tuple[int, ...], **fields) -> DataBundle:
    split = InMemorySplit({"x": torch.zeros(4, *shape), "y": torch.arange(4) % 2})
    return DataBundle(split, split, split, "classification", shape, num_classes=2, **fields)


def test_saved_preprocessing_of_images_reads_into_image_facts_and_is_written_the_same():
    data = model_bundle(SAVED_IMAGES)
    assert data.images == ImageFacts((0.1307,), (0.3081,)) and data.text is None
    assert data.batch_inputs == ("x",)
    facts = data.model_facts()
    assert (facts["in_channels"], facts["image_size"], facts["in_features"]) == (1, 28, 784)
    assert "vocab_size" not in facts
    written = describe(data, "classification", {})
    assert written["facts"] == SAVED_IMAGES["facts"] and written["kind"] == "images"
    assert written["images"] == {"channels": 1, "size": [28, 28], "mean": [0.1307], "std": [0.3081]}


def test_saved_preprocessing_of_text_reads_into_text_facts_and_is_written_the_same():
    data = model_bundle(SAVED_TEXT)
    assert data.text == TextFacts(12, 0) and data.images is None
    assert data.batch_inputs == ("x", "lengths")
    facts = data.model_facts()
    assert (facts["vocab_size"], facts["padding_idx"]) == (12, 0)
    assert {"in_channels", "image_size"}.isdisjoint(facts)
    trained = bundle((40,), text=TextFacts(12, 0, TEXT_STATE), batch_inputs=("x", "lengths"))
    written = describe(trained, "classification", {"text_columns": "review"})
    assert written["facts"] == SAVED_TEXT["facts"] and written["kind"] == "text"
    assert written["text"]["vocab"] == TEXT_STATE["vocab"]
    assert trained.checkpoint_state() == {"text": TEXT_STATE}


def test_a_table_is_told_its_width_and_saves_no_image_or_text_facts():
    table = bundle((10,))
    facts = table.model_facts()
    assert facts == {"input_shape": (10,), "in_features": 10, "num_classes": 2}
    assert describe(table, "classification", {})["facts"] == {}
    assert table.checkpoint_state() == {} and table.run_files == {}


def test_image_facts_belong_to_images_only():
    with pytest.raises(ValueError, match=r"input_shape of \(channels, height, width\)"):
        bundle((64,), images=ImageFacts((0.5,), (0.2,)))
    with pytest.raises(ValueError, match="input_shape"):  # one mean per channel
        bundle((3, 8, 8), images=ImageFacts((0.5,), (0.2,)))
    with pytest.raises(ValueError, match="differ in length"):
        ImageFacts((0.5, 0.5), (0.2,))


@pytest.mark.parametrize("model", ["cnn", "resnet18"])
def test_an_image_model_on_a_table_is_one_line_naming_the_fix(compose, model):
    cfg = compose(f"model={model}", "data=classification")
    with pytest.raises(ConfigError) as err:
        build.build_task(cfg, bundle((10,)), torch.device("cpu"))
    message = str(err.value)
    # outside a Hydra run the data is named by its builder (a run says data=classification)
    assert f"model={model} needs images but data=synthetic_classification gives 10" in message
    assert "use an image dataset" in message and "model=mlp" in message and "\n" not in message


def test_a_generative_model_on_images_without_their_normalisation_names_the_fix(compose):
    cfg = compose("model=conv_autoencoder")
    with pytest.raises(ConfigError) as err:  # a plugin's images, no ImageFacts
        build.build_task(cfg, bundle((1, 8, 8), source="data.path=mine"), torch.device("cpu"))
    assert "data.path=mine gives images without their normalisation" in str(err.value)
    assert "DataBundle(images=ImageFacts(mean, std))" in str(err.value)
