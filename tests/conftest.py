"""Shared fixtures: the FER2013 sample, generated bad data folders, tiny trained models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "fer_sample"  # 11 real FER2013 images per class
EXAMPLES = ROOT / "examples"
CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@pytest.fixture(scope="session")
def sample_root() -> Path:
    return SAMPLE


@pytest.fixture
def copy_sample(tmp_path):
    """A writable copy of the sample (or of one split of it) to break in a test."""

    def make(sub: str = "") -> Path:
        dst = tmp_path / "data"
        shutil.copytree(SAMPLE / sub if sub else SAMPLE, dst)
        return dst

    return make


def write_image(path: Path, size=(48, 48), mode="L", seed=0):
    rng = np.random.default_rng(seed)
    channels = {"L": (), "RGB": (3,)}[mode]
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], *channels), dtype=np.uint8), mode).save(path)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """cnn and seed_cnn trained for a few steps on the sample: real files, not good models."""
    from trainer.train import main

    out = tmp_path_factory.mktemp("weights")
    for name in ("cnn", "seed_cnn"):
        assert main(["--model", name, "--data", str(SAMPLE), "--epochs", "1", "--batch-size", "16",
                     "--out", str(out), "--quiet"]) == 0
    shutil.rmtree(out / "checkpoints")
    return out
