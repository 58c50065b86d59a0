"""debug=smoke evaluates a few batches: they are drawn across classes, so its accuracy is not
that of whatever class the split stores first."""

import numpy as np
import torch

from dlrun.data.split import across_classes
from tests.conftest import read_metrics, run_dirs
from tests.datasets import class_images, write_image_folder, write_mnist


def test_across_classes_takes_each_class_in_turn():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 0, 2])
    assert across_classes(labels, 5).tolist() == [0, 4, 6, 1, 5]
    assert sorted(across_classes(labels, 100).tolist()) == list(range(9))


def test_smoke_test_batches_hold_every_class_of_a_class_sorted_split(dlrun, tmp_path):
    images, labels = class_images(60, 10, (28, 28), seed=3)
    order = np.argsort(labels, kind="stable")  # stored class by class: 0, 0, ..., 9
    write_mnist(
        tmp_path / "data",
        images={"train": images, "test": images[order]},
        labels={"train": labels, "test": labels[order]},
    )
    dlrun(
        "model=lenet",
        "data=mnist",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        "debug=smoke",
        "trainer.batch_size=5",  # 2 eval batches of 5: 10 of 60 test images
    )
    cm = np.array(read_metrics(run_dirs(tmp_path)[0])["test"]["confusion_matrix"])
    assert cm.sum() == 10 and (cm.sum(1) == 1).all()  # one image of each of the 10 classes


def test_smoke_on_a_folder_names_the_files_it_tested(dlrun, tmp_path):
    write_image_folder(tmp_path / "pics", ["a", "b", "c"], per_class=10, size=12)
    dlrun(
        "model=cnn",
        "data=image_folder",
        f"data.path={tmp_path / 'pics'}",
        "data.image_size=16",
        "debug=smoke",
        "trainer.batch_size=2",
    )
    run = run_dirs(tmp_path)[0]
    rows = (run / "predictions_test.csv").read_text().splitlines()[1:]
    folders = {r.split(",")[0].split("/")[-2] for r in rows}
    assert len(rows) == 4 and folders == {"a", "b", "c"}  # paths, from every class
