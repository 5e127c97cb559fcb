"""trainer.export: ONNX and LiteRT copies that give the Keras probabilities, and the runtimes that use them."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import CLASSES, EXAMPLES, ROOT
from PIL import Image

from demo.pipeline.classify import EmotionModel, ModelStore
from demo.pipeline.faces import FaceDetector, crop_face
from demo.pipeline.images import load_rgb
from trainer.export import export

WEIGHTS = ROOT / "weights"
SHIPPED = sorted(p.stem for p in WEIGHTS.glob("*.keras"))
FER2013_TEST = ROOT.parent / "shared" / "datasets" / "fer2013" / "test"
SUFFIX = {"onnx": ".onnx", "litert": ".tflite"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every shipped model in both formats, written by the project's own command."""
    out = tmp_path_factory.mktemp("export")
    for name in SHIPPED:
        for fmt in SUFFIX:
            export(WEIGHTS / f"{name}.keras", fmt, out)
    return out


def fer_crops(n=512):
    """n FER2013 test faces, evenly spread over the split's sorted file list (every class)."""
    files = sorted(FER2013_TEST.rglob("*.*"))
    return [load_rgb(files[i]) for i in np.linspace(0, len(files) - 1, n).astype(int)]


@pytest.mark.skipif(not FER2013_TEST.is_dir(), reason="FER2013 (../shared/datasets) not beside the checkout")
@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@pytest.mark.parametrize("name", SHIPPED)
def test_exports_match_keras_on_512_fer2013_faces(exported, name, fmt):
    crops = fer_crops()
    reference = EmotionModel.load(WEIGHTS / f"{name}.keras").predict(crops, "none")
    model = EmotionModel.load(exported / f"{name}{SUFFIX[fmt]}")
    assert model.class_names == list(CLASSES) and model.input_shape == (48, 48, 1)
    for batch in (crops, crops[:1]):  # the batch dimension stays dynamic in both formats
        probs = model.predict(batch, "none")
        assert probs.shape == (len(batch), 7)
        np.testing.assert_array_equal(probs.argmax(1), reference[: len(batch)].argmax(1))
        assert np.abs(probs - reference[: len(batch)]).max() <= 1e-4
    assert json.loads((exported / f"{name}.json").read_text())["class_names"] == list(CLASSES)


def test_a_users_own_model_exports_too_and_the_cli_reports_bad_input(tiny_models, tmp_path):
    path = export(tiny_models / "seed_cnn.keras", "onnx", tmp_path)
    crops = [load_rgb(EXAMPLES / "astronaut.jpg")]
    np.testing.assert_allclose(EmotionModel.load(path).predict(crops),
                               EmotionModel.load(tiny_models / "seed_cnn.keras").predict(crops), atol=1e-4)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "trainer.export", str(tmp_path / "nope.keras"), "--format", "onnx"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "not a .keras file" in r.stderr


def test_readme_onnx_example_gives_the_demos_probabilities(exported, tmp_path):
    """docs/RUNTIMES.md's TensorFlow-free snippet, run as written, on the astronaut's face as the demo crops it."""
    if "cnn" not in SHIPPED:
        pytest.skip("weights/cnn.keras is not shipped")
    readme = (ROOT / "docs" / "RUNTIMES.md").read_text()
    code = re.search(r"<!-- onnx-example:start -->\n```python\n(.*?)```", readme, re.S).group(1)
    rgb = load_rgb(EXAMPLES / "astronaut.jpg")
    with FaceDetector("short") as detector:
        [face] = detector.detect(rgb)
    crop = crop_face(rgb, face.box)
    (tmp_path / "weights").mkdir()
    for f in ("cnn.onnx", "cnn.json"):
        (tmp_path / "weights" / f).write_bytes((exported / f).read_bytes())
    Image.fromarray(crop).save(tmp_path / "face.png")
    (tmp_path / "example.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the snippet imports trainer.views from the checkout
    r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    label, probs = r.stdout.strip().split(" ", 1)
    demo = ModelStore(WEIGHTS).get("cnn").predict([crop])[0]  # what the demo serves: its views and temperature, Keras
    assert label == CLASSES[int(demo.argmax())] == "happy"
    assert np.abs(np.array(json.loads(probs)) - demo).max() <= 1e-4


def test_the_cli_runs_each_runtime_with_the_same_answer(exported):
    if "cnn" not in SHIPPED:
        pytest.skip("weights/cnn.keras is not shipped")
    (exported / "cnn.keras").symlink_to(WEIGHTS / "cnn.keras")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    answers = {}
    for runtime in ("keras", "onnx", "litert"):
        r = subprocess.run([sys.executable, "-m", "demo.predict", str(EXAMPLES / "four_faces.jpg"), "--json",
                            "--weights", str(exported), "--runtime", runtime],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        answers[runtime] = json.loads(r.stdout)["faces"]
    assert len(answers["keras"]) == 4
    for runtime in ("onnx", "litert"):
        assert [f["label"] for f in answers[runtime]] == [f["label"] for f in answers["keras"]]
        assert [f["box"] for f in answers[runtime]] == [f["box"] for f in answers["keras"]]
        assert all(abs(a["confidence"] - b["confidence"]) <= 1e-4 for a, b in zip(answers[runtime], answers["keras"]))


def test_runtime_benchmark_times_every_runtime(tiny_models, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    for f in ("seed_cnn.keras", "seed_cnn.json"):
        (weights / f).write_bytes((tiny_models / f).read_bytes())
    for fmt in SUFFIX:
        export(weights / "seed_cnn.keras", fmt, weights)
    r = subprocess.run([sys.executable, "bench/runtimes.py", "--weights", str(weights), "--calls", "3",
                        "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "runtimes.json").read_text())["models"]["seed_cnn"]
    assert sorted(rows) == ["keras", "litert", "onnx"] and all(row["batch_8"] > 0 for row in rows.values())
    assert "| seed_cnn | onnx |" in (tmp_path / "runtimes.md").read_text()
