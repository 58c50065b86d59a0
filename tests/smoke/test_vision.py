"""Vision through the real `dlrun` command on tiny files in each dataset's real on-disk format."""

import multiprocessing

import numpy as np
import pytest

from tests.conftest import read_metrics, run_dirs
from tests.datasets import write_cifar, write_image_folder, write_mnist

MODELS = ["lenet", "cnn", "mlp", "resnet18", "resnet34", "vgg11", "alexnet", "resnet9"]
MODEL_NAMES = {"LeNet", "CNN", "MLP", "resnet18", "resnet34", "vgg11", "alexnet", "ResNet9"}
# One training step per model (a forward, backward and optimizer step on each image kind is what
# the matrix checks; the loop's epochs are tested elsewhere), no optimizer state in checkpoints
# (1 GB less to write per matrix row; resume tests cover it).
TINY = [
    "trainer.batch_size=2",
    "trainer.eval_batch_size=16",
    "trainer.limit_train_batches=1",
    "trainer.save_optimizer=false",
]
N_TEST = 6  # test images: ResNet-34 and VGG at 32 px spend most of a smoke run on them
# A refused proxy makes any download fail at once: "offline" even on a networked machine.
OFFLINE = {
    v: "http://127.0.0.1:9" for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
}


def _write(dataset, root):
    """Tiny files for `dataset` under root; returns the dlrun overrides that select them."""
    if dataset in ("mnist", "fashion_mnist"):
        write_mnist(root / "data", n_train=24, n_test=N_TEST, fashion=dataset == "fashion_mnist")
    elif dataset in ("cifar10", "cifar100"):
        write_cifar(root / "data", n_train=24, n_test=N_TEST, cifar100=dataset == "cifar100")
    else:
        write_image_folder(root / "train", ["ant", "bee", "cat"], per_class=8, size=30)
        write_image_folder(root / "test", ["ant", "bee", "cat"], per_class=N_TEST // 3, size=30)
        return [
            f"data.path={root / 'train'}",
            f"data.test_path={root / 'test'}",
            "data.image_size=32",
            "data.num_workers=0",
        ]
    return [f"data.root={root / 'data'}", "data.download=false"]


# What a model meets in a dataset is its images' channels and size and its number of classes:
# every model trains on one-channel 28 px images with 10 classes (mnist), three-channel 32 px
# images with 100 classes (cifar100) and resized folder images with 3 classes (image_folder).
# The other loaders (same shapes as one of those) are each run with two models.
FULL_MATRIX = ("mnist", "cifar100", "image_folder")
LOADER_MODELS = ["lenet", "resnet18"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "dataset", ["mnist", "fashion_mnist", "cifar10", "cifar100", "image_folder"]
)
def test_every_model_trains_on_every_vision_dataset(dlrun, tmp_path, dataset):
    """The matrix: one multirun per dataset over the image models (see FULL_MATRIX)."""
    args = _write(dataset, tmp_path)
    models = MODELS if dataset in FULL_MATRIX else LOADER_MODELS
    dlrun(
        "-m",
        f"model={','.join(models)}",
        f"data={dataset}",
        "debug=smoke",
        *TINY,
        *args,
        checksums=False,
    )
    runs = [read_metrics(r) for r in run_dirs(tmp_path)]
    names = MODEL_NAMES if dataset in FULL_MATRIX else {"LeNet", "resnet18"}
    assert {m["model"] for m in runs} == names
    classes = 100 if dataset == "cifar100" else 3 if dataset == "image_folder" else 10
    for m in runs:
        assert m["status"] == "completed" and m["data"] == dataset, m
        cm = np.array(m["test"]["confusion_matrix"])
        assert cm.shape == (classes, classes) and cm.sum() == N_TEST, m["model"]


def test_image_models_train_on_the_default_digits_as_images(dlrun, tmp_path):
    # data.as_images=null: a model that convolves gets digits as 1x8x8 images without being told
    dlrun("-m", "model=cnn,resnet18", "debug=smoke")
    runs = [read_metrics(r) for r in run_dirs(tmp_path)]
    assert sorted(m["model"] for m in runs) == ["CNN", "resnet18"], runs
    assert all(m["status"] == "completed" and m["data"] == "digits" for m in runs)


def test_lenet_on_mnist_uses_the_shared_cache_and_records_the_confusion_matrix(dlrun, tmp_path):
    cache = tmp_path / "cache"
    write_mnist(cache, n_train=200, n_test=N_TEST)
    dlrun(
        "model=lenet",
        "data=mnist",
        "trainer.epochs=2",
        "trainer.progress=false",
        DLRUN_DATA_DIR=str(cache),
        **OFFLINE,
    )
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    assert m["status"] == "completed" and (m["model"], m["data"]) == ("LeNet", "mnist")
    cm = np.array(m["test"]["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == N_TEST
    assert not any(p.name.endswith("ubyte") for p in run.rglob("*"))  # data never in a run folder


def test_data_that_moved_is_found_again_by_eval_and_resume(dlrun, tmp_path):
    args = ["model=cnn", "data=mnist", "debug=smoke", "data.download=false"]
    write_mnist(tmp_path / "old", n_train=24, n_test=N_TEST)
    dlrun(*args, f"data.root={tmp_path / 'old'}")
    (run,) = run_dirs(tmp_path)
    (tmp_path / "old").rename(tmp_path / "new")
    moved = f"data.root={tmp_path / 'new'}"
    dlrun("mode=eval", f"ckpt={run}", *args, moved)  # was: the checkpoint's old root, not found
    evals = [m for m in map(read_metrics, run_dirs(tmp_path)) if m.get("mode") == "eval"]
    assert evals and evals[0]["test"] == read_metrics(run)["test"]
    dlrun(*args, moved, f"resume={run}")  # was refused: data.root differed
    assert read_metrics(run)["status"] == "completed"


def test_cifar_md5_mismatch_is_refused_without_the_test_only_variable(dlrun, tmp_path):
    write_cifar(tmp_path / "data")
    proc = dlrun("model=cnn", "data=cifar10", "data.download=false", expect_fail=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "fail torchvision's MD5 check" in proc.stderr
    assert str(tmp_path / "data" / "cifar-10-batches-py") in proc.stderr


def test_missing_dataset_offline_is_one_clear_line(dlrun, tmp_path):
    proc = dlrun("model=lenet", "data=fashion_mnist", expect_fail=True, **OFFLINE)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("dlrun: error:")]
    assert str(tmp_path / "data" / "FashionMNIST" / "raw") in line
    assert "train-images-idx3-ubyte" in line and "downloading them failed" in line


def test_image_folder_end_to_end_same_results_with_or_without_workers(dlrun, tmp_path):
    write_image_folder(tmp_path / "pics", ["ant", "bee", "cat"], per_class=10, size=20)
    common = [
        "model=cnn",
        "data=image_folder",
        f"data.path={tmp_path / 'pics'}",
        "data.image_size=24",
        "trainer.batch_size=4",
        "trainer.epochs=2",
        "trainer.progress=false",
        "trainer.limit_train_batches=3",
        "data.memory_limit_mb=0",  # streamed every epoch (in memory: test_folder_loading.py)
    ]
    dlrun(*common, "data.num_workers=1")  # worker iterators are abandoned after 3 batches
    assert not multiprocessing.active_children()  # the run stopped its loader workers
    dlrun(*common, "data.num_workers=0")
    first, second = (read_metrics(r) for r in run_dirs(tmp_path))
    assert first["status"] == "completed" and first["data"] == "image_folder"
    assert np.array(first["test"]["confusion_matrix"]).sum() == 6  # 20% of 30 images
    assert first["test"] == second["test"] and first["best_val"] == second["best_val"]


def test_recipe_with_debug_smoke_stays_a_smoke_run(dlrun, tmp_path):
    write_mnist(tmp_path / "data", n_train=40, n_test=N_TEST)
    dlrun("experiment=mnist_lenet", "debug=smoke", "data.download=false")
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["status"] == "completed" and m["epochs_run"] == 1 and m["model"] == "LeNet"


def test_recipes_compose(compose):
    cfg = compose("experiment=cifar10_resnet18")
    assert cfg.model._target_.endswith("resnet18") and cfg.data._target_.endswith("cifar10")
    assert cfg.data.augment == "basic"
    cfg = compose("experiment=mnist_lenet")
    assert cfg.model._target_.endswith("LeNet") and cfg.data._target_.endswith("mnist")


def test_cifar10_speed_recipe_runs_with_bf16_and_channels_last(dlrun, tmp_path):
    args = _write("cifar10", tmp_path)
    # bf16 is emulated on CPUs without avx512_bf16 (~6x slower): batches of 4 keep it short
    recipe = ["experiment=cifar10_speed", "debug=smoke", "trainer.batch_size=4"]
    dlrun(*recipe, "trainer.limit_train_batches=1", *args, checksums=False)
    m = read_metrics(run_dirs(tmp_path)[0])
    assert m["status"] == "completed" and m["model"] == "ResNet9" and m["precision"] == "bf16"
