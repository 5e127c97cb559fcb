"""tools/gpu: runs come back from a lent GPU as float16 parts and become the same models here."""

import json
import subprocess
import sys
import tarfile

import keras
import numpy as np
import pytest
from conftest import ROOT

from trainer.data import list_class_folder, load_split
from trainer.pytorch.convert_mobilenet import find_pth
from trainer.pytorch.to_keras import TOLERANCE, check_against_torch, read_state, to_keras
from trainer.train import main


def test_collect_then_import_rebuilds_resnet50_from_float16_parts(sample_root, tmp_path):
    """A teacher run (t*) is never chosen, but its soft predictions come back with the others'."""
    runs, out, back = tmp_path / "runs", tmp_path / "out", tmp_path / "back"
    common = ["--epochs", "1", "--batch-size", "4", "--max-steps", "1", "--geometric-augmentation", "host",
              "--data", str(sample_root), "--quiet", "--no-resume-checkpoint"]
    assert main(["--model", "resnet50", "--backbone-weights", "none", "--img-size", "32", *common,
                 "--out", str(runs / "r32")]) == 0
    assert main(["--model", "cnn", "--width", "8", *common, "--out", str(runs / "t8")]) == 0
    assert not (runs / "r32" / "checkpoints" / "resnet50" / "last.keras").exists()
    subprocess.run([sys.executable, "tools/gpu/collect.py", str(runs), str(out)], cwd=ROOT, check=True,
                   capture_output=True)
    parts = sorted(out.glob("resnet50_fp16.npz.part*"))
    assert parts and all(p.stat().st_size < 16 * 2**20 for p in parts)
    assert not list(out.glob("cnn_fp16*"))
    with tarfile.open(out / "meta.tar.gz") as tar:
        assert json.loads(tar.extractfile("chosen.json").read()) == {"resnet50": "r32"}
        assert "t8/cnn.json" in tar.getnames()
    subprocess.run([sys.executable, "tools/gpu/predict_views.py", str(runs), str(sample_root),
                    str(out / "predictions.npz")], cwd=ROOT, check=True, capture_output=True)
    preds = np.load(out / "predictions.npz")
    assert sorted(preds["runs"]) == ["r32", "t8"]
    n_train, n_val = len(preds["train_labels"]), len(preds["val_labels"])
    assert preds["r32.train.mirror"].shape == (n_train, 7) and preds["t8.val.crops"].shape == (n_val, 7)
    assert preds["val_names"][0].count("/") == 1  # class/file, to check the order on the other side
    subprocess.run([sys.executable, "tools/gpu/import_weights.py", "--meta", str(runs / "r32" / "resnet50.json"),
                    "--parts", str(out / "resnet50_fp16.npz.part*"), "--out", str(back)],
                   cwd=ROOT, check=True, capture_output=True)
    trained = keras.saving.load_model(runs / "r32" / "resnet50.keras")
    rebuilt = keras.saving.load_model(back / "resnet50.keras")  # safe_mode, float32, no optimizer
    assert json.loads((back / "resnet50.json").read_text())["weights_transfer"] == "float16"
    x = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 1)).astype("float32")
    np.testing.assert_allclose(rebuilt(x, training=False), trained(x, training=False), atol=2e-3)
    for a, b in zip(rebuilt.get_weights(), trained.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)  # float16 rounding, nothing more


def test_pack_then_unpack_gives_back_every_train_and_val_file_byte_for_byte(sample_root, tmp_path):
    packed, root = tmp_path / "data.npz.xz", tmp_path / "unpacked"
    subprocess.run([sys.executable, "tools/gpu/pack_data.py", str(sample_root), str(packed)], cwd=ROOT, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "tools/gpu/unpack_data.py", str(packed), str(root)], cwd=ROOT, check=True,
                   capture_output=True)
    for split in ("train", "val"):
        originals = sorted(p.relative_to(sample_root) for p in (sample_root / split).rglob("*.jpg"))
        assert originals == sorted(p.relative_to(root) for p in (root / split).rglob("*.jpg"))
        assert all((root / p).read_bytes() == (sample_root / p).read_bytes() for p in originals)
    assert (root / "test").resolve() == (root / "val").resolve()


@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2"])
def test_a_torch_run_becomes_a_keras_file_that_predicts_what_torch_does(name, sample_root, tmp_path):
    """trainer.pytorch.train on a GPU machine's packed data -> tools/gpu/torch_collect.py ->
    trainer.pytorch.to_keras.

    MobileNetV2 starts from torchvision's ImageNet file, which must load key for key. ResNet50's
    weights are scattered like a trained network's (BatchNorm statistics and scales), so that a
    layout mismatch (a stride, a padding, an epsilon, a preprocessing step) shows.
    """
    packed, cache, runs, sent, back = (tmp_path / n for n in ("data.npz.xz", "fer.npz", "runs", "sent", "back"))
    run = runs / "x1"
    tool = [sys.executable, "-m", "trainer.pytorch.train"]
    subprocess.run([sys.executable, "tools/gpu/pack_data.py", str(sample_root), str(packed)], cwd=ROOT, check=True,
                   capture_output=True)
    subprocess.run([*tool, "--prepare", "--packed", str(packed), "--cache", str(cache)], cwd=ROOT, check=True,
                   capture_output=True)
    weights = str(find_pth()) if name == "mobilenetv2" else "none"
    subprocess.run([*tool, "--model", name, "--img-size", "32", "--backbone-weights", weights, "--cache", str(cache),
                    "--batch-size", "4", "--max-steps", "2", "--minutes", "10", "--out", str(run)],
                   cwd=ROOT, check=True, capture_output=True)
    meta = json.loads((run / f"{name}.json").read_text())
    assert (meta["epochs_trained"], meta["best_epoch"], meta["input_shape"]) == (1, 1, [48, 48, 1])
    state, rng = read_state(run, name), np.random.default_rng(0)
    # MobileNetV2's ImageNet statistics are a trained network's already (and some of its variances
    # are so near 0 that any change explodes); ResNet50's two steps leave its BatchNorm at its start.
    scattered = [k.removesuffix(".running_var") for k in state if k.endswith(".running_var")]
    for bn in scattered if name == "resnet50" else []:
        for key, scale in (("weight", 0.3), ("running_var", 0.0)):  # 0.3: ResNet's last gammas start at 0
            state[f"{bn}.{key}"] = state[f"{bn}.{key}"] * rng.uniform(0.5, 1.5, state[f"{bn}.{key}"].shape) + scale
        for key in ("bias", "running_mean"):
            state[f"{bn}.{key}"] = state[f"{bn}.{key}"] + rng.normal(0, 0.1, state[f"{bn}.{key}"].shape)
    state["emotion.weight"] = state["emotion.weight"] * 30  # two steps leave the head near uniform
    np.savez(run / f"{name}_fp16.npz", **{k: v.astype(np.float16) for k, v in state.items()})
    state = read_state(run, name)
    # What a lent machine sends back (torch_collect.py: parts of under 16 MiB), converted here.
    subprocess.run([sys.executable, "tools/gpu/torch_collect.py", str(runs), str(sent)], cwd=ROOT, check=True,
                   capture_output=True)
    assert all(p.stat().st_size < 16 * 2**20 for p in sent.glob(f"{name}_fp16.npz.part*"))
    result = subprocess.run([sys.executable, "-m", "trainer.pytorch.to_keras", "--run", str(sent), "--name", name,
                             "--out", str(back), "--data", str(sample_root / "val")],
                            cwd=ROOT, check=True, capture_output=True, text=True)
    assert "largest probability difference" in result.stdout
    saved = json.loads((back / f"{name}.json").read_text())
    assert saved["weights_transfer"] == "float16" and saved["torch_check_max_difference"] < TOLERANCE

    model = keras.saving.load_model(back / f"{name}.keras")  # safe_mode: nothing but Keras layers inside
    pixels = load_split(list_class_folder(sample_root / "val"), 48, "grayscale").x
    got = model.predict(pixels.astype("float32"), verbose=0)
    assert got.std(0).max() > 1e-3, "the predictions do not depend on the image: a check of nothing"
    assert check_against_torch(model, meta, state, pixels) < TOLERANCE  # the saved file, read back

    # The same check fails on one BatchNorm's statistics moved: it would catch a wrong layout.
    broken = to_keras(json.loads((run / f"{name}.json").read_text()), state)
    bn = next(layer for layer in broken.get_layer("backbone").layers if layer.__class__.__name__ == "BatchNormalization")
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma, beta, mean + 3 * np.sqrt(var), var])
    assert check_against_torch(broken, meta, state, pixels) > TOLERANCE
