"""tools/gpu: a run's ResNet50 goes through collect.py's float16 parts and comes back the same model."""

import json
import subprocess
import sys
import tarfile

import keras
import numpy as np
from conftest import ROOT

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
