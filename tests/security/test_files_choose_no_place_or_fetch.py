"""Point 5 of the trust model: a checkpoint never chooses where data goes or what is fetched.

A stranger's checkpoint names a dataset with `data.root` pointing where they like and
`download: true`, or a model with `pretrained: true`. Before the fix eval created the folder the
file named (and started a download into it), and eval/predict/export tried to fetch ImageNet
weights into TORCH_HOME. Now the root is this machine's (DLRUN_DATA_DIR / the command line), and
a rebuilt model fetches nothing: the checkpoint's own weights are loaded over it."""

from __future__ import annotations

from tests.conftest import run_dlrun
from tests.security.conftest import refused


def test_a_checkpoints_data_root_is_not_where_data_goes(run_copy, tmp_path, tamper):
    chosen, mine = tmp_path / "chosen_by_the_file", tmp_path / "mine"
    mnist = {
        "_target_": "dlrun.data.vision.mnist",
        "root": str(chosen),
        "download": True,
        "val_fraction": 0.1,
    }
    tamper(run_copy / "checkpoints" / "best.pt", lambda c: c["config"].update(data=mnist))
    proc = run_dlrun("mode=eval", f"ckpt={run_copy}", cwd=tmp_path, DLRUN_DATA_DIR=str(mine))
    assert proc.returncode != 0  # offline here: MNIST is neither in `mine` nor downloadable
    assert not chosen.exists()
    assert str(chosen) not in proc.stderr


def test_a_checkpoints_model_never_fetches_pretrained_weights(run_copy, tmp_path, tamper):
    model = {"_target_": "dlrun.models.vision.resnet18", "pretrained": True, "stem": "auto"}

    def edit(ckpt: dict) -> None:
        ckpt["config"]["model"] = model
        ckpt["config"]["data"]["as_images"] = True  # digits as 1x8x8 images, for a resnet

    tamper(run_copy / "checkpoints" / "best.pt", edit)
    (tmp_path / "rows.csv").write_text("x\n1\n")
    for mode in ("eval", "predict", "export"):
        extra = [f"input={tmp_path / 'rows.csv'}"] if mode == "predict" else []
        proc = run_dlrun(
            f"mode={mode}",
            f"ckpt={run_copy}",
            *extra,
            cwd=tmp_path,
            TORCH_HOME=str(tmp_path / "th"),
        )
        assert not (tmp_path / "th").exists(), mode
        # eval: the MLP's weights do not fit a resnet18; predict/export: the saved 64-feature
        # preprocessing does not fit it either. One line each, never a download.
        refused(proc, "does not fit the model" if mode == "eval" else "needs images")
