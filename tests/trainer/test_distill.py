"""trainer.distill: real teachers, real student training on the FER2013 sample."""

import json
import shutil

import numpy as np

from trainer.distill import main, soft_targets


def test_soft_targets_blend_tempered_teachers_with_labels():
    probs = np.array([[0.7, 0.2, 0.1, 0, 0, 0, 0], [0.1, 0.1, 0.8, 0, 0, 0, 0]], np.float32)
    t = soft_targets(probs, np.array([0, 1]), temperature=2.0, alpha=0.5)
    np.testing.assert_allclose(t.sum(1), 1, rtol=1e-6)
    assert t[1, 1] > 0.5 > t[1, 2]  # the label pulls row 1 towards class 1
    teacher_only = soft_targets(probs, np.array([0, 1]), temperature=2.0, alpha=1.0)
    assert np.isclose(teacher_only[0, 1] / teacher_only[0, 0], np.sqrt(0.2 / 0.7), rtol=1e-4)  # T = 2: p ** 0.5


def test_distill_trains_a_student_and_caches_teacher_predictions(tiny_models, sample_root, tmp_path, caplog):
    out = tmp_path / "student"
    argv = ["--teachers", str(tiny_models / "cnn.keras"), str(tiny_models / "seed_cnn.keras"),
            "--data", str(sample_root), "--out", str(out), "--views", "mirror",
            "--", "--model", "cnn", "--width", "8", "--epochs", "1", "--batch-size", "16", "--quiet"]
    assert main(argv) == 0
    meta = json.loads((out / "cnn.json").read_text())
    record = meta["distillation"]
    assert record["views"] == "mirror" and len(record["teachers"]) == 2
    assert 0 <= record["ensemble_val_accuracy"] <= 1
    assert meta["settings"]["soft_targets"].endswith("soft_targets.npy")
    targets = np.load(out / "soft_targets.npy")
    assert targets.shape == (meta["train_images"], 7) and np.allclose(targets.sum(1), 1, atol=1e-5)
    cached = sorted((out / "teacher_cache").iterdir())
    assert len(cached) == 2
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert main(argv) == 0  # a second run reads the teachers' predictions back
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    renamed = tmp_path / "renamed.keras"  # the same teacher under another name hits the cache too
    shutil.copy(tiny_models / "cnn.keras", renamed)
    argv[1] = str(renamed)
    assert main(argv) == 0
    assert sorted((out / "teacher_cache").iterdir()) == cached
    assert [p.stat().st_mtime_ns for p in cached] == stamps


def test_distill_refuses_missing_teachers(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["--teachers", str(tmp_path / "nope.keras"), "--data", str(tmp_path), "--out", str(tmp_path)])
    assert "teacher file(s) not found" in capsys.readouterr().err
