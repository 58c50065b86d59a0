"""Readers of new inputs (dlrun/predict/inputs.py) on files in the datasets' real formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from dlrun.errors import DataError
from dlrun.predict import inputs
from tests.datasets import write_cifar, write_mnist

CIFAR = {"channels": 3, "size": [32, 32], "mean": [0.5] * 3, "std": [0.25] * 3}


def test_a_cifar_batch_file_is_read_as_training_reads_it(tmp_path):
    folder = write_cifar(tmp_path, n_train=10, n_test=12)
    found = inputs.read_images(folder / "test_batch", CIFAR, ["a"] * 10, "fail", chunk=5)
    chunks = list(found.chunks)
    assert [len(c.ids) for c in chunks] == [5, 5, 2] and found.id_name == "index"
    with (folder / "test_batch").open("rb") as f:
        entry = pickle.load(f, encoding="latin1")  # the test's own trusted file
    x = np.concatenate([c.tensors["x"].numpy() for c in chunks])
    assert np.array_equal(x, entry["data"].reshape(-1, 3, 32, 32))
    assert sum((c.targets for c in chunks), []) == ["a"] * 12


def test_a_pickle_that_names_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match="print is not allowed in a data file"):
        inputs.read_images(path, CIFAR, None, "fail", chunk=8)


def test_mnist_idx_files_bring_their_labels_and_a_size_mismatch_is_one_line(tmp_path):
    raw = write_mnist(tmp_path, n_train=4, n_test=6)
    mnist = {"channels": 1, "size": [28, 28], "mean": [0.1], "std": [0.3]}
    names = [str(i) for i in range(10)]
    found = inputs.read_images(raw / "t10k-images-idx3-ubyte", mnist, names, "fail", chunk=64)
    (chunk,) = list(found.chunks)
    labels = np.frombuffer((raw / "t10k-labels-idx1-ubyte").read_bytes()[8:], np.uint8)
    assert chunk.targets == [str(v) for v in labels] and chunk.tensors["x"].shape == (6, 1, 28, 28)
    with pytest.raises(DataError, match="trained on 32x32 with 3"):
        inputs.read_images(raw / "t10k-images-idx3-ubyte", CIFAR, None, "fail", chunk=64)
