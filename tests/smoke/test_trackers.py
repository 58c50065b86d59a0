"""Trackers hold the whole run: W&B (offline, its run file read back), MLflow's artifacts (read
back with MLflow's client), and `name=`/`tags=` on the run folder, metrics.json and each logger."""

import csv
import json
import struct
from pathlib import Path

import pytest
import yaml

from tests.conftest import read_metrics, run_dirs

RUN = ["debug=smoke", "trainer.epochs=2", "name=baseline", "tags=[ablation,small]"]


def wandb_records(run_file: Path):
    """The records of an offline W&B run file: a LevelDB-style log (a 7-byte file header, 32 KiB
    blocks, each record a 7-byte header - crc, length, type - and a chunk of a protobuf)."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw, pos, chunks = run_file.read_bytes(), 7, b""
    assert raw[:4] == b":W&B"
    while pos + 7 <= len(raw):
        left = 32768 - pos % 32768
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        chunks += raw[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = pb.Record()
            record.ParseFromString(chunks)
            chunks = b""
            yield record


def items(update) -> dict:
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in update}


def test_name_and_tags_label_the_folder_and_the_record(dlrun, tmp_path):
    dlrun(*RUN)
    (run,) = run_dirs(tmp_path)
    assert run.name.endswith("-baseline")
    record = read_metrics(run)
    assert record["name"] == "baseline" and record["tags"] == ["ablation", "small"]


def test_bad_name_is_one_line_and_writes_no_run(dlrun, tmp_path):
    proc = dlrun("debug=smoke", "name=../elsewhere", expect_fail=True)
    assert proc.returncode == 2 and "name='../elsewhere' is invalid" in proc.stderr
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.slow  # ~10 s: W&B starts its service process
def test_wandb_offline_run_file_holds_the_run(dlrun, tmp_path):
    pytest.importorskip("wandb")
    dlrun(*RUN, "logger=wandb", "optimizer.lr=0.003", WANDB_MODE="offline", WANDB_SILENT="true")
    (run,) = run_dirs(tmp_path)
    (run_file,) = run.glob("wandb/offline-run-*/run-*.wandb")
    records = list(wandb_records(run_file))
    (started,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert started.display_name == "baseline" and list(started.tags) == ["ablation", "small"]
    config = items(started.config.update)
    assert config["model"] == "mlp" and config["optimizer.lr"] == pytest.approx(0.003)
    assert config["config"]["trainer"]["epochs"] == 2  # the whole config beside the choices
    epochs = [items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]
    history = list(csv.DictReader((run / "history.csv").open()))
    assert [h["epoch"] for h in epochs] == [1, 2]
    assert [h["val/accuracy"] for h in epochs] == [
        pytest.approx(float(row["val_accuracy"])) for row in history
    ]
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update(items(r.summary.update))
    test = read_metrics(run)["test"]
    assert summary["test_accuracy"] == pytest.approx(test["accuracy"])
    assert summary["status"] == "completed"
    saved = run_file.parent / "files"
    assert json.loads((saved / "metrics.json").read_text()) == read_metrics(run)
    assert (saved / "model.yaml").read_text() == (run / "model.yaml").read_text()


@pytest.mark.slow  # ~15 s; optional extra
def test_mlflow_artifacts_hold_config_record_and_best_model(dlrun, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    dlrun(*RUN, "logger=mlflow")
    (run,) = run_dirs(tmp_path)  # MLflow's copy of metrics.json is not taken for a run
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read the folder store back
    client = MlflowClient(tracking_uri=(tmp_path / "outputs" / "mlruns").as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("dlrun").experiment_id])
    assert found.info.run_name == "baseline"
    assert found.data.tags["dlrun.tags"] == "ablation,small" and "small" in found.data.tags
    listed = {a.path for a in client.list_artifacts(found.info.run_id)}
    listed |= {a.path for a in client.list_artifacts(found.info.run_id, "model")}
    assert {"config.yaml", "metrics.json", "model/model.safetensors", "model/model.yaml"} <= listed
    local = Path(client.download_artifacts(found.info.run_id, "", str(tmp_path / "back")))
    assert json.loads((local / "metrics.json").read_text()) == read_metrics(run)
    config = yaml.safe_load((local / "config.yaml").read_text())
    assert config["trainer"]["epochs"] == 2 and config["name"] == "baseline"
    assert (local / "model" / "model.safetensors").read_bytes() == (
        run / "model.safetensors"
    ).read_bytes()
    from dlrun.summary import summarize

    assert len(summarize(tmp_path / "outputs", write=False).rows) == 1  # the store is no run


def test_tensorboard_shows_name_and_tags(dlrun, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    dlrun(*RUN, "logger=tensorboard")
    (run,) = run_dirs(tmp_path)
    events = EventAccumulator(str(run), size_guidance={"tensors": 0})
    events.Reload()
    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["name"].string_value == "baseline"
    assert hparams["tags"].string_value == "ablation,small"
    (text,) = events.Tensors("run/text_summary")
    assert b"baseline" in text.tensor_proto.string_val[0]
