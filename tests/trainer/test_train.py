"""Real training runs: every registry entry for a few steps (the backbones in tests of their own),
--resume after a kill, CLI errors."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import ROOT

from trainer.models import REGISTRY
from trainer.train import main

# The backbones are trained and loaded back by tests of their own, each graph traced once (about
# 50 s a test): mobilenetv2 below, resnet50 in test_gpu_tools.py.
TRAINED_ELSEWHERE = {"mobilenetv2", "resnet50"}


@pytest.mark.parametrize("name", sorted(set(REGISTRY) - TRAINED_ELSEWHERE))
def test_a_few_steps_of_every_model_write_a_loadable_model(name, sample_root, tmp_path):
    args = ["--model", name, "--data", str(sample_root), "--epochs", "1", "--batch-size", "8",
            "--max-steps", "2", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    model = keras.saving.load_model(tmp_path / f"{name}.keras")
    assert model.output_shape == (None, 7)
    meta = json.loads((tmp_path / f"{name}.json").read_text())
    assert meta["epochs_trained"] == 1 and len(json.loads((tmp_path / f"{name}.history.json").read_text())) == 1


def test_frozen_then_fine_tuned_transfer_run(sample_root, tmp_path):
    """Head on a frozen pretrained backbone, then fine-tuning: weights from a local notop file."""
    from trainer.models import mobilenetv2_backbone

    weights = tmp_path / "backbone.weights.h5"
    mobilenetv2_backbone(64).save_weights(weights)
    assert main(["--model", "mobilenetv2", "--data", str(sample_root), "--epochs", "1",
                 "--fine-tune-epochs", "1", "--batch-size", "8", "--max-steps", "2", "--img-size", "64",
                 "--backbone-weights", str(weights), "--out", str(tmp_path), "--quiet"]) == 0
    meta = json.loads((tmp_path / "mobilenetv2.json").read_text())
    assert meta["epochs_trained"] == 2


def test_full_fine_tune_of_a_torchvision_backbone_exports_the_trained_layout(sample_root, tmp_path):
    """--fine-tune-layers all --fine-tune-bn: BatchNorm statistics move, and the exported
    file computes what the trained network computed (torch normalisation, symmetric padding)."""
    import numpy as np

    from trainer.data import load_dataset
    from trainer.models import build_model, mobilenetv2_backbone

    weights = tmp_path / "tv.weights.h5"
    start = mobilenetv2_backbone(64, "torchvision")
    start.save_weights(weights)
    (tmp_path / "tv.json").write_text(json.dumps({"flavour": "torchvision"}))
    out = tmp_path / "run"
    assert main(["--model", "mobilenetv2", "--data", str(sample_root), "--epochs", "1",
                 "--fine-tune-epochs", "2", "--fine-tune-layers", "all", "--fine-tune-bn",
                 "--fine-tune-lr", "1e-3", "--batch-size", "8", "--max-steps", "2", "--img-size", "64",
                 "--backbone-weights", str(weights), "--out", str(out), "--quiet"]) == 0
    shipped = keras.saving.load_model(out / "mobilenetv2.keras", safe_mode=True)
    names = [layer.name for layer in shipped.layers]
    assert "torch_preprocess" in names and "symmetric_pad" in names
    assert shipped.get_layer("backbone").get_layer("Conv1").padding == "valid"

    trained = build_model("mobilenetv2", (48, 48, 1), net_size=64, backbone_weights=str(weights))
    trained.load_weights(out / "checkpoints" / "mobilenetv2" / "best.weights.h5")
    x = load_dataset(sample_root, 48, "grayscale", ("val",))[0]["val"].x[:8].astype("float32")
    np.testing.assert_allclose(np.asarray(shipped(x, training=False)), np.asarray(trained(x, training=False)),
                               atol=1e-5)
    # After the fine-tuning epochs even the first BatchNorm has moved off its start.
    last = keras.saving.load_model(out / "checkpoints" / "mobilenetv2" / "last.keras")
    before = start.get_layer("bn_Conv1").moving_mean.numpy()
    assert not np.allclose(before, last.get_layer("backbone").get_layer("bn_Conv1").moving_mean.numpy())


def test_bad_data_folder_exits_2_with_the_path(tmp_path, caplog):
    assert main(["--model", "cnn", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "missing" in caplog.text


def test_resume_without_checkpoint_is_refused(sample_root, tmp_path, caplog):
    assert main(["--model", "cnn", "--data", str(sample_root), "--out", str(tmp_path), "--resume"]) == 2
    assert "no checkpoint" in caplog.text


def test_resume_after_kill_loses_only_the_epoch_in_flight(sample_root, tmp_path):
    cmd = [sys.executable, "-m", "trainer.train", "--model", "seed_cnn", "--data", str(sample_root),
           "--epochs", "40", "--batch-size", "4", "--out", str(tmp_path), "--quiet"]
    state = tmp_path / "checkpoints" / "seed_cnn" / "state.json"
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= 2):
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = json.loads(state.read_text())["epoch"]
    assert 2 <= done < 40, "the run should have been killed mid-way"
    assert not (tmp_path / "seed_cnn.keras").exists()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    resumed = subprocess.run(cmd[:-1] + ["--resume", "--epochs", str(done + 1), "--quiet"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming seed_cnn after epoch {done}" in resumed.stderr
    history = json.loads((tmp_path / "seed_cnn.history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, done + 2))


def test_training_under_a_mirrored_strategy(sample_root, tmp_path):
    assert main(["--model", "seed_cnn", "--data", str(sample_root), "--epochs", "1", "--batch-size", "8",
                 "--strategy", "mirrored", "--out", str(tmp_path), "--quiet"]) == 0
    assert json.loads((tmp_path / "seed_cnn.json").read_text())["settings"]["strategy"] == "mirrored"


def test_host_augmentation_and_a_time_budget_stop_early_and_export_the_trained_layout(sample_root, tmp_path):
    """The GPU recipe's options on the CPU: warps on the host, a cosine over minutes, a wider cnn."""
    from trainer.models import build_model

    assert main(["--model", "cnn", "--width", "16", "--geometric-augmentation", "host", "--class-weight-power",
                 "0.5", "--epochs", "200", "--time-budget", "0.1", "--batch-size", "8", "--patience", "1000",
                 "--data", str(sample_root), "--out", str(tmp_path), "--quiet"]) == 0
    meta = json.loads((tmp_path / "cnn.json").read_text())
    assert 1 <= meta["epochs_trained"] < 200, "the 6-second budget should end the run long before 200 epochs"
    assert meta["settings"]["geometric_augmentation"] == "host" and meta["settings"]["width"] == 16
    assert meta["parameters"] == build_model("cnn", (48, 48, 1), width=16).count_params()
    shipped = keras.saving.load_model(tmp_path / "cnn.keras")
    kinds = {type(layer).__name__ for layer in shipped.get_layer("augmentation").layers}
    assert "RandomRotation" not in kinds and "RandomFlip" in kinds


def budget_callback(budget_s: float):
    """A TimeBudget on a tiny compiled model at a peak rate of 1e-3: (callback, model, state)."""
    from trainer.train import time_budget

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="mse")
    state = {}
    cb = time_budget(1e-3, budget_s, state)
    cb.set_model(model)
    return cb, model, state


def test_time_budget_schedule_warms_up_anneals_by_elapsed_time_and_stops_in_time():
    import math

    cb, model, state = budget_callback(100.0)
    cb.on_epoch_begin(0)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)  # warm-up epoch
    cb.on_epoch_end(0)
    assert not model.stop_training
    state["budget_seconds"] = 50.0  # half the budget spent: halfway down the cosine
    cb.on_epoch_begin(1)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi / 2))))
    cb.on_epoch_end(1)
    assert not model.stop_training
    state["budget_seconds"] = 99.9
    cb.on_epoch_begin(2)
    assert float(model.optimizer.learning_rate) < 2e-5  # nearly annealed
    time.sleep(0.1)  # an epoch of 0.1 s leaves no room for another before 100 s
    cb.on_epoch_end(2)
    assert model.stop_training


def test_time_budget_counts_the_saves_between_epochs():
    cb, model, state = budget_callback(1.0)
    cb.on_epoch_begin(0)
    cb.on_epoch_end(0)
    time.sleep(0.6)  # a checkpoint save after the epoch
    cb.on_epoch_begin(1)
    assert state["budget_seconds"] >= 0.6
    cb.on_epoch_end(1)
    # 0.6 s spent, and the next epoch with its save would take about as long again: stop now.
    assert model.stop_training


@pytest.mark.parametrize("budget", ["0", "-3", "nan"])
def test_a_time_budget_must_be_positive(budget, sample_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--model", "cnn", "--data", str(sample_root), "--out", str(tmp_path), "--time-budget", budget])
    assert exit_.value.code == 2 and "positive number of minutes" in capsys.readouterr().err


def test_init_from_starts_at_a_trained_file_and_refuses_another_layout(sample_root, tmp_path, caplog):
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--model", "cnn", "--width", "8", "--data", str(sample_root), "--epochs", "1", "--batch-size", "8",
              "--max-steps", "2", "--quiet"]
    assert main([*common, "--out", str(first)]) == 0
    # A learning rate of ~0 and another seed: the second cycle's export is the file it started from.
    assert main([*common, "--out", str(second), "--init-from", str(first / "cnn.keras"), "--lr", "1e-12",
                 "--mixup", "0.2", "--seed", "7"]) == 0
    start, end = (keras.saving.load_model(p / "cnn.keras") for p in (first, second))
    conv = [w for w in start.weights if "conv0_0" in w.path][0]
    assert conv.numpy().std() > 0
    for a, b in zip(start.weights, end.weights):
        if "moving" not in a.path:  # BatchNorm statistics move with any data, whatever the rate
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)
    assert json.loads((second / "cnn.json").read_text())["settings"]["init_from"] == str(first / "cnn.keras")

    assert main([*common[:3], "16", *common[4:], "--out", str(tmp_path / "x"),
                 "--init-from", str(first / "cnn.keras")]) == 2
    assert "not a model of this layout" in caplog.text


def test_keep_last_ships_the_last_epoch_with_corruptions_on_the_host(sample_root, tmp_path):
    """--keep last exports the final epoch (not the best on clean val), in float32, from a mixed-precision run."""
    assert main(["--model", "cnn", "--width", "8", "--geometric-augmentation", "host", "--corruptions", "0.5",
                 "--epochs", "2", "--batch-size", "8", "--max-steps", "2", "--precision", "mixed_bfloat16",
                 "--keep", "last", "--data", str(sample_root), "--out", str(tmp_path), "--quiet"]) == 0
    meta = json.loads((tmp_path / "cnn.json").read_text())
    assert meta["kept_epoch"] == 2 and meta["settings"]["corruptions"] == 0.5
    shipped = keras.saving.load_model(tmp_path / "cnn.keras")
    last = keras.saving.load_model(tmp_path / "checkpoints" / "cnn" / "last.keras")
    assert shipped.dtype_policy.name == "float32"
    for a, b in zip(shipped.get_weights(), last.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b, dtype=a.dtype), rtol=0, atol=0)
