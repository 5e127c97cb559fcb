"""trainer.corruptions: the camera-corruption benchmark is deterministic, changes images, and runs."""

import json

import numpy as np
import pytest

from trainer.corruptions import KINDS, SEVERITIES, benchmark_rng, corrupt, random_corruptions
from trainer.data import list_class_folder, load_image
from trainer.evaluate import main as evaluate_main


@pytest.fixture(scope="module")
def faces(sample_root):
    files = [p for p, _ in list_class_folder(sample_root / "test")]
    return np.stack([load_image(p, 48, "grayscale") for p in files])


@pytest.mark.parametrize("kind", KINDS)
def test_each_corruption_is_deterministic_and_changes_the_image(faces, kind):
    previous = None
    for severity in SEVERITIES:
        a = corrupt(faces, kind, severity, benchmark_rng(kind, severity))
        b = corrupt(faces, kind, severity, benchmark_rng(kind, severity))
        assert a.dtype == np.uint8 and a.shape == faces.shape
        assert np.array_equal(a, b), f"{kind} {severity} differs between two runs with the same seed"
        change = np.abs(a.astype(float) - faces).mean()
        assert change > 1.0, f"{kind} at severity {severity} hardly changes the faces ({change:.2f} levels)"
        if previous is not None:  # severities are ordered: more severe, further from the original
            assert change > previous * 0.95, f"{kind}: severity {severity} is milder than {severity - 1}"
        previous = change


def test_corruptions_keep_rgb_and_larger_inputs(faces):
    rgb = np.repeat(np.stack([np.kron(f[..., 0], np.ones((2, 2), np.uint8)) for f in faces[:4]])[..., None], 3, -1)
    for kind in KINDS:
        out = corrupt(rgb, kind, 3, benchmark_rng(kind, 3))
        assert out.shape == rgb.shape and not np.array_equal(out, rgb)


def test_training_draw_hits_the_share_asked_for(faces):
    x = np.repeat(faces, 20, axis=0).astype(np.float32)
    out = random_corruptions(x, np.random.default_rng(0), 0.5)
    changed = (out != x).any(axis=(1, 2, 3)).mean()
    assert 0.4 < changed < 0.6 and out.dtype == np.float32
    assert np.array_equal(random_corruptions(x, np.random.default_rng(0), 0.0), x)


def test_unknown_kind_or_severity_is_refused(faces):
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(faces, "fog", 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="severity"):
        corrupt(faces, "jpeg", 6, np.random.default_rng(0))


def test_benchmark_command_runs_on_a_small_sample(tiny_models, sample_root, tmp_path, capsys):
    out = tmp_path / "eval"
    assert evaluate_main(["--model", str(tiny_models / "cnn.keras"), "--data", str(sample_root / "test"),
                          "--out", str(out), "--corruptions"]) == 0
    c = json.loads((out / "metrics.json").read_text())["corruptions"]
    assert list(c["by_kind"]) == list(KINDS)
    assert all(len(v["severities"]) == 5 and all(0 <= a <= 1 for a in v["severities"]) for v in c["by_kind"].values())
    means = [a for v in c["by_kind"].values() for a in v["severities"]]
    assert c["mean"] == pytest.approx(np.mean(means))
    assert c["relative_drop"] == pytest.approx((c["clean"] - c["mean"]) / c["clean"])
    printed = capsys.readouterr().out
    assert "| gaussian_blur |" in printed and "severity 5" in printed
