"""Using a trained model, per data family: train through the real `dlrun` command, predict on
held-out inputs through `dlrun mode=predict` and through the Python API (dlrun.load), and check
the predictions against the run's own test metrics."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dlrun
from tests.conftest import read_metrics, run_dirs
from tests.datasets import write_image_folder, write_mnist
from tests.textdata import write_labelled_csv


def newest_run(root: Path) -> Path:
    return run_dirs(root)[-1]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def predict(dlrun, root: Path, *args: str) -> tuple[Path, list[dict[str, str]]]:
    """`dlrun mode=predict ARGS`; (its run folder, the rows of its predictions.csv)."""
    proc = dlrun("mode=predict", *args)
    run = newest_run(root)
    assert f"wrote {run / 'predictions.csv'}" in proc.stdout + proc.stderr
    return run, read_csv(run / "predictions.csv")


def accuracy(rows: list[dict[str, str]], truth: str = "true") -> float:
    return sum(r[truth] == r["predicted"] for r in rows) / len(rows)


def check_test_predictions(run: Path) -> list[dict[str, str]]:
    """predictions_test.csv agrees with metrics.json: the same confusion matrix and accuracy."""
    test = read_metrics(run)["test"]
    rows = read_csv(run / "predictions_test.csv")
    names = [c.removeprefix("p_") for c in rows[0] if c.startswith("p_")]
    cm = np.zeros((len(names), len(names)), dtype=int)
    for r in rows:
        cm[names.index(r["true"]), names.index(r["predicted"])] += 1
        probs = [float(r[f"p_{n}"]) for n in names]
        assert names[int(np.argmax(probs))] == r["predicted"]
        assert abs(sum(probs) - 1) < 1e-4
    assert cm.tolist() == test["confusion_matrix"]
    assert accuracy(rows) == test["accuracy"]
    return rows


# --- digits as a CSV table --------------------------------------------------------------------
def write_digits_csv(folder: Path) -> tuple[Path, Path, Path]:
    """train.csv, test.csv (features + digit) and new.csv: the test rows with an id column in
    front and the columns in another order."""
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    names = list(d.feature_names)
    files = []
    for name, part, shuffled in (
        ("train", order[:1200], False),
        ("test", order[1200:], False),
        ("new", order[1200:], True),
    ):
        header = ["id", "digit", *names[::-1]] if shuffled else [*names, "digit"]
        with (folder / f"{name}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
            for i in part:
                row = {n: int(v) for n, v in zip(names, d.data[i], strict=True)}
                writer.writerow({**row, "digit": int(d.target[i]), "id": f"img{i}"})
        files.append(folder / f"{name}.csv")
    return tuple(files)


def test_digits_csv_train_predict_through_the_command_and_the_api(dlrun, tmp_path):
    train, test, new = write_digits_csv(tmp_path)
    dlrun(
        "data=csv",
        f"data.path={train}",
        f"data.test_path={test}",
        "data.target=digit",
        "trainer.epochs=2",
        "plots=false",
    )
    run = newest_run(tmp_path)
    check_test_predictions(run)
    test_acc = read_metrics(run)["test"]["accuracy"]

    out, rows = predict(dlrun, tmp_path, f"ckpt={run}", f"input={new}", "topk=3")
    assert accuracy(rows) == test_acc  # columns matched by name, not position
    assert [r["id"] for r in rows[:2]] == [r["id"] for r in read_csv(new)[:2]]  # carried through
    assert "top3" in rows[0] and "top4" not in rows[0]
    assert read_metrics(out)["accuracy"] == test_acc

    model = dlrun_load(run)
    features = np.array(
        [[float(r[c]) for c in model.prep["table"]["features"]] for r in read_csv(test)]
    )
    assert model.predict(features).labels == [r["predicted"] for r in rows]
    assert model.predict(new).accuracy() == test_acc


def dlrun_load(run: Path):
    return dlrun.load(run, device="cpu")


def test_a_csv_without_a_training_column_is_refused_in_one_line(dlrun, tmp_path):
    train, test, _ = write_digits_csv(tmp_path)
    dlrun(
        "data=csv",
        f"data.path={train}",
        f"data.test_path={test}",
        "data.target=digit",
        "trainer.epochs=1",
        "plots=false",
    )
    run = newest_run(tmp_path)
    rows = read_csv(test)
    with (tmp_path / "partial.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in rows[0] if c != "pixel_3_4"])
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if k != "pixel_3_4"} for r in rows)
    proc = dlrun(
        "mode=predict", f"ckpt={run}", f"input={tmp_path / 'partial.csv'}", expect_fail=True
    )
    assert proc.returncode == 2
    assert "lacks the feature column(s) ['pixel_3_4']" in proc.stderr
    assert "Traceback" not in proc.stderr

    rows[4]["pixel_0_2"] = "abc"  # an unreadable row: refused by default, skipped on request
    with (tmp_path / "bad.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    proc = dlrun("mode=predict", f"ckpt={run}", f"input={tmp_path / 'bad.csv'}", expect_fail=True)
    assert "data row 5 has pixel_0_2='abc', not a number" in proc.stderr
    _, kept = predict(
        dlrun, tmp_path, f"ckpt={run}", f"input={tmp_path / 'bad.csv'}", "predict.on_error=skip"
    )
    assert len(kept) == len(rows) - 1 and "5" not in [r["row"] for r in kept]


# --- MNIST-format files, with exports -----------------------------------------------------------
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load is deprecated in torch 2.9+
def test_mnist_files_predict_the_test_accuracy_and_exports_match_pytorch(dlrun, tmp_path):
    raw = write_mnist(tmp_path / "data", n_train=96, n_test=40)
    dlrun(
        "model=lenet",
        "data=mnist",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        "trainer.epochs=2",
        "trainer.batch_size=16",
        "plots=false",
        "export=[onnx,torchscript]",
    )
    run = newest_run(tmp_path)
    check_test_predictions(run)
    test_acc = read_metrics(run)["test"]["accuracy"]
    _, rows = predict(dlrun, tmp_path, f"ckpt={run}", f"input={raw / 't10k-images-idx3-ubyte'}")
    assert accuracy(rows) == test_acc and len(rows) == 40

    # the same images as PNG files, through the API: the same predictions
    images = np.frombuffer((raw / "t10k-images-idx3-ubyte").read_bytes()[16:], np.uint8)
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for i, image in enumerate(images.reshape(-1, 28, 28)[:10]):
        Image.fromarray(image).save(pngs / f"{i:02d}.png")
    model = dlrun_load(run)
    assert model.predict(pngs).labels == [r["predicted"] for r in rows[:10]]
    assert model.predict(images.reshape(-1, 28, 28)[:10]).labels == [
        r["predicted"] for r in rows[:10]
    ]
    check_exports(run, model, images.reshape(-1, 1, 28, 28))


def check_exports(run: Path, model, images: np.ndarray) -> None:
    """model.onnx and model.torchscript.pt give the PyTorch model's logits on the test inputs."""
    import torch

    x = model.split({"x": torch.as_tensor(images)}).batches(len(images)).__next__()["x"]
    with torch.no_grad():
        expected = model.task.model(x).numpy()
    scripted = torch.jit.load(str(run / "model.torchscript.pt"))
    assert np.abs(scripted(x).detach().numpy() - expected).max() < 1e-4
    assert "preprocessing:" in (run / "model.yaml").read_text()
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"input": x.numpy()})[0] - expected).max() < 1e-4


# --- an image folder -------------------------------------------------------------------------
def test_image_folder_predicts_paths_and_reports_a_corrupt_image(dlrun, tmp_path):
    write_image_folder(tmp_path / "train", ["ant", "bee", "cat"], per_class=10, size=20)
    write_image_folder(tmp_path / "test", ["ant", "bee", "cat"], per_class=4, size=20)
    dlrun(
        "model=cnn",
        "data=image_folder",
        f"data.path={tmp_path / 'train'}",
        f"data.test_path={tmp_path / 'test'}",
        "data.image_size=24",
        "data.num_workers=0",
        "trainer.epochs=2",
        "plots=false",
    )
    run = newest_run(tmp_path)
    test_rows = check_test_predictions(run)
    assert test_rows[0]["path"] == str(tmp_path / "test" / "ant" / "0.png")
    test_acc = read_metrics(run)["test"]["accuracy"]
    _, rows = predict(dlrun, tmp_path, f"ckpt={run}", f"input={tmp_path / 'test'}")
    assert accuracy(rows) == test_acc  # true labels from the class folders
    assert [r["predicted"] for r in rows] == [r["predicted"] for r in test_rows]

    (tmp_path / "test" / "bee" / "broken.png").write_bytes(b"not a png")
    proc = dlrun("mode=predict", f"ckpt={run}", f"input={tmp_path / 'test'}", expect_fail=True)
    assert f"image {tmp_path / 'test' / 'bee' / 'broken.png'}: cannot be read" in proc.stderr
    assert "Traceback" not in proc.stderr
    pred = dlrun_load(run).predict(tmp_path / "test", on_error="skip")
    assert len(pred.ids) == 12 and "broken.png" in pred.skipped[0]
    one = dlrun_load(run).predict(tmp_path / "test" / "cat" / "1.png")
    assert one.ids == [str(tmp_path / "test" / "cat" / "1.png")] and len(one.labels) == 1


# --- text --------------------------------------------------------------------------------------
def test_text_csv_and_plain_text_predict_like_the_test_split(dlrun, tmp_path):
    write_labelled_csv(tmp_path / "train.csv", n=300, seed=0)
    write_labelled_csv(tmp_path / "test.csv", n=60, seed=1)
    dlrun(
        "model=embedding_bag",
        "data=text_csv",
        f"data.path={tmp_path / 'train.csv'}",
        f"data.test_path={tmp_path / 'test.csv'}",
        "data.text_columns=[headline,body]",
        "data.label_column=topic",
        f"data.root={tmp_path / 'data'}",
        "trainer.epochs=3",
        "plots=false",
    )
    run = newest_run(tmp_path)
    check_test_predictions(run)
    test_acc = read_metrics(run)["test"]["accuracy"]
    _, rows = predict(dlrun, tmp_path, f"ckpt={run}", f"input={tmp_path / 'test.csv'}")
    assert accuracy(rows) == test_acc
    assert rows[0]["topic"] == rows[0]["true"] and "id" in rows[0]  # other columns carried

    docs = [f"{r['headline']} {r['body']}" for r in read_csv(tmp_path / "test.csv")]
    (tmp_path / "docs.txt").write_text("\n".join(docs) + "\n")
    _, lines = predict(dlrun, tmp_path, f"ckpt={run}", f"input={tmp_path / 'docs.txt'}")
    assert [r["predicted"] for r in lines] == [r["predicted"] for r in rows]
    assert dlrun_load(run).predict(docs).labels == [r["predicted"] for r in rows]


# --- generative models -------------------------------------------------------------------------
def test_autoencoder_reconstructs_new_images_at_the_test_error(dlrun, tmp_path):
    raw = write_mnist(tmp_path / "data", n_train=64, n_test=24)
    dlrun(
        "model=autoencoder",
        "data=mnist",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        "trainer.epochs=1",
        "plots=false",
    )
    run = newest_run(tmp_path)
    out, rows = predict(dlrun, tmp_path, f"ckpt={run}", f"input={raw / 't10k-images-idx3-ubyte'}")
    mse = np.mean([float(r["mse"]) for r in rows])
    assert mse == pytest.approx(read_metrics(run)["test"]["mse"], rel=1e-4)
    picture = np.asarray(Image.open(out / rows[3]["reconstruction"]))
    assert picture.shape == (28, 28)
    recon = dlrun_load(run).predict(raw / "t10k-images-idx3-ubyte").images[3, 0]
    assert np.abs(picture / 255 - recon).max() <= 0.5 / 255 + 1e-6


def test_gan_writes_samples_from_a_seed(dlrun, tmp_path):
    write_mnist(tmp_path / "data", n_train=64, n_test=16)
    dlrun(
        "model=gan",
        "data=mnist",
        f"data.root={tmp_path / 'data'}",
        "data.download=false",
        "trainer.epochs=1",
        "plots=false",
        "export=[onnx]",
    )
    run = newest_run(tmp_path)
    assert not (run / "predictions_test.csv").exists()  # no per-input answer
    out, rows = predict(dlrun, tmp_path, f"ckpt={run}", "samples=5", "seed=3")
    assert len(rows) == 5 and (out / rows[4]["image"]).is_file()
    again = dlrun_load(run).sample(5, seed=3).images
    picture = np.asarray(Image.open(out / rows[2]["image"])) / 255
    assert np.abs(picture - again[2, 0]).max() <= 0.5 / 255 + 1e-6
    assert (run / "model.onnx").is_file()  # the generator: noise -> images
    proc = dlrun("mode=predict", f"ckpt={run}", f"input={run}", expect_fail=True)
    assert "a GAN makes images from noise" in proc.stderr


def test_a_limited_test_pass_predicts_the_samples_it_tested(dlrun, tmp_path):
    # debug=smoke tests 2 batches of 16: predictions_test.csv holds those 32 rows, not the
    # whole test split (which cost a smoke run of ResNet-18 on MNIST seconds more than its test)
    dlrun("debug=smoke")
    run = newest_run(tmp_path)
    rows = check_test_predictions(run)
    assert len(rows) == 32 == sum(map(sum, read_metrics(run)["test"]["confusion_matrix"]))
