"""`make resnet50`, the ResNet50 recipe, rerun on a 1 % sample of FER2013 with a
1-minute budget: it distils from the shipped ensemble, trains in bfloat16 on the CPU,
checkpoints, resumes after a kill, converts, and the .keras file loads with safe_mode."""

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

FER2013 = ROOT.parent / "shared" / "datasets" / "fer2013"


@pytest.mark.skipif(not (FER2013 / "train").is_dir(), reason="FER2013 (../shared/datasets) not beside the checkout")
def test_the_recipe_trains_resumes_after_a_kill_and_converts(tmp_path):
    out = tmp_path / "resnet50"
    make = ["make", "--no-print-directory", "resnet50", f"PY={sys.executable}", f"RESNET50_OUT={out}",
            "RESNET50_ARGS=--limit=287 --minutes 1"]
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(make, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    checkpoint, t0 = out / "checkpoint.pt", time.time()
    while not checkpoint.exists() and first.poll() is None and time.time() - t0 < 300:
        time.sleep(0.5)
    assert checkpoint.exists(), (tmp_path / "first.log").read_text()[-3000:]
    time.sleep(3)
    os.killpg(first.pid, signal.SIGKILL)  # mid-run, as a session's end or a lost machine would
    first.wait()
    assert not (out / "resnet50.json").exists(), "the run ended before it could be killed"
    targets = np.load(out / "targets.npz")
    assert targets["train"].shape == (287, 7) and np.allclose(targets["train"].sum(1), 1, atol=1e-5)

    second = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    output = second.stdout + second.stderr
    assert "is up to date" in output  # the ensemble's predictions are not computed twice
    assert "resumed" in output
    meta = json.loads((out / "resnet50.json").read_text())
    history = json.loads((out / "resnet50.history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1)) and len(history) >= 2
    assert meta["train_seconds"] <= 60 + 30  # the budget held across the kill
    assert history[-1]["lr"] < 0.1 * max(h["lr"] for h in history)  # annealed by the end

    model = keras.saving.load_model(out / "keras" / "resnet50.keras", safe_mode=True)
    converted = json.loads((out / "keras" / "resnet50.json").read_text())
    assert converted["torch_check_max_difference"] < 1e-4
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
