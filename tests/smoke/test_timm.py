"""model=timm: real timm models (timm's own tiny test architectures, randomly initialised) trained,
exported and used for prediction through the real `dlrun` command."""

import json

import pytest
import torch

from dlrun.models.timm_models import MISSING, timm_model
from tests.conftest import read_metrics, run_dirs
from tests.datasets import write_image_folder, write_mnist

timm = pytest.importorskip("timm")

MNIST = ["data=mnist", "data.download=false", "debug=smoke", "trainer.batch_size=8"]


def _mnist(tmp_path):
    write_mnist(tmp_path / "data", n_train=48, n_test=16)
    return [*MNIST, f"data.root={tmp_path / 'data'}"]


def test_the_data_sizes_a_timm_model(tmp_path):
    model = timm_model(in_channels=1, num_classes=7, image_size=28, name="test_resnet")
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 7)
    assert model.get_classifier().out_features == 7
    vit = timm_model(in_channels=3, num_classes=4, image_size=32, name="test_vit")
    assert vit(torch.zeros(2, 3, 32, 32)).shape == (2, 4)  # img_size=32 reached the ViT


def test_timm_model_trains_exports_and_predicts(dlrun, tmp_path):
    args = _mnist(tmp_path)
    dlrun("model=timm", "model.name=test_efficientnet", *args, "export=[onnx,torchscript]")
    (run,) = run_dirs(tmp_path)
    m = read_metrics(run)
    assert m["status"] == "completed" and m["model"] == "timm_model", m
    assert (run / "model.onnx").is_file() and (run / "model.torchscript.pt").is_file()
    images = tmp_path / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    proc = dlrun("mode=predict", f"ckpt={run}", f"input={images}")
    assert "predicted 16 inputs" in proc.stdout + proc.stderr


def test_unknown_timm_name_is_one_line_with_a_suggestion(dlrun, tmp_path):
    proc = dlrun("model=timm", "model.name=test_resnt", *_mnist(tmp_path), expect_fail=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model.name='test_resnt' is not a timm model (did you mean test_resnet" in proc.stderr


def test_a_hub_or_folder_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not one a hub repository or folder describes"):
        timm_model(1, 10, 28, name="hf-hub:timm/resnet18.a1_in1k")
    assert timm_model(1, 10, 28, name="test_resnet.r160_in1k").num_classes == 10  # a tag


def test_without_timm_installed_the_error_names_the_extra(dlrun, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "timm", None)  # import timm -> ImportError
    proc = dlrun("model=timm", *_mnist(tmp_path), expect_fail=True)
    assert proc.returncode == 2 and f"dlrun: error: {MISSING}" in proc.stderr


def test_weights_from_a_local_file_keep_the_body_and_renew_the_head(tmp_path):
    source = timm.create_model("test_resnet", num_classes=1000, in_chans=1)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "w.pth")
    model = timm_model(1, 10, 28, name="test_resnet", weights=str(tmp_path / "w.pth"))
    own, src = model.state_dict(), source.state_dict()
    body = [k for k in own if own[k].shape == src[k].shape]
    assert len(body) > 10 and all(torch.equal(own[k], src[k]) for k in body)
    assert own["fc.weight"].shape == (10, own["fc.weight"].shape[1])  # the new 10-class head
    other = timm.create_model("test_vit", num_classes=10, in_chans=1, img_size=32)
    torch.save(other.state_dict(), tmp_path / "vit.pt")
    with pytest.raises(ValueError, match="does not hold this model's weights"):
        timm_model(1, 10, 28, name="test_resnet", weights=str(tmp_path / "vit.pt"))


def test_a_file_never_turns_pretrained_or_weights_on(dlrun, tmp_path):
    """A checkpoint whose stored config says pretrained=true (or names a weights file) is rebuilt
    from its own weights only: nothing is downloaded, no other file is read."""
    from dlrun.predict.predictor import Predictor

    dlrun("model=timm", "model.name=test_resnet", *_mnist(tmp_path))
    (run,) = run_dirs(tmp_path)
    best = run / "checkpoints" / "best.pt"
    ckpt = torch.load(best, weights_only=True)
    ckpt["config"]["model"].update(pretrained=True, weights=str(tmp_path / "missing.pt"))
    torch.save(ckpt, best)
    predictor = Predictor.load(run, "cpu")  # would fail: offline download, missing file
    state = predictor.task.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in ckpt["model"].items())
    proc = dlrun("mode=eval", f"ckpt={run}")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr


def test_pretrained_offline_is_one_line(dlrun, tmp_path, monkeypatch):
    # huggingface_hub reads HF_HUB_OFFLINE and HF_HOME when imported: set its switches directly
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    proc = dlrun(
        "model=timm",
        "model.name=test_resnet",
        "model.pretrained=true",
        *_mnist(tmp_path),
        expect_fail=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model.pretrained=true needs test_resnet's weights" in proc.stderr


def test_a_vit_trains_on_a_folder_and_too_small_images_are_refused(dlrun, tmp_path):
    write_image_folder(tmp_path / "pics", ["a", "b"], per_class=6, size=20)
    folder = ["data=image_folder", f"data.path={tmp_path / 'pics'}", "data.num_workers=0"]
    dlrun("model=timm", "model.name=test_vit", *folder, "data.image_size=32", "debug=smoke")
    assert json.loads((run_dirs(tmp_path)[0] / "metrics.json").read_text())["status"] == "completed"
    proc = dlrun("model=timm", "model.name=test_vit", *_mnist(tmp_path), expect_fail=True)
    assert proc.returncode == 2 and "cannot take (1, 28, 28) images" in proc.stderr
