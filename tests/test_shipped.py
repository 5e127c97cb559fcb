"""The files in weights/: the .keras contract, reproducible metrics, and the demo serving them."""

import json

import keras
import pytest
from conftest import CLASSES, EXAMPLES, ROOT
from gradio_client import Client, handle_file
from server import running_app

WEIGHTS = ROOT / "weights"
SHIPPED = sorted(p.stem for p in WEIGHTS.glob("*.keras"))
FER2013_TEST = ROOT.parent / "shared" / "datasets" / "fer2013" / "test"

pytestmark = pytest.mark.skipif(not SHIPPED, reason="no model shipped in weights/ yet")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_file_keeps_the_contract(name):
    model = keras.saving.load_model(WEIGHTS / f"{name}.keras")  # default safe_mode
    meta = json.loads((WEIGHTS / f"{name}.json").read_text())
    assert tuple(meta["class_names"]) == CLASSES
    assert model.output_shape == (None, 7) and list(model.input_shape[1:]) == meta["input_shape"]
    assert getattr(model, "optimizer", None) is None
    assert (WEIGHTS / f"{name}.keras").stat().st_size < 100e6


@pytest.mark.skipif(not FER2013_TEST.is_dir(), reason="FER2013 (../shared/datasets) not beside the checkout")
@pytest.mark.parametrize("name", SHIPPED)
def test_metrics_json_is_what_evaluate_measures(name, tmp_path):
    from trainer.evaluate import evaluate

    recorded = json.loads((WEIGHTS / "metrics.json").read_text())[name]["evaluation"]
    measured = evaluate(WEIGHTS / f"{name}.keras", FER2013_TEST, tmp_path)
    assert measured["n"] == recorded["n"] == 3589
    assert abs(measured["accuracy"] - recorded["accuracy"]) <= 0.002
    assert abs(measured["f1_macro"] - recorded["f1_macro"]) <= 0.002


def test_demo_serves_the_shipped_weights(tmp_path):
    """python app.py on weights/ as a user starts it; the astronaut is found and she is smiling."""
    with running_app(WEIGHTS, tmp_path / "app.log") as server:
        client = Client(server.url, verbose=False)
        _, faces = client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), SHIPPED[0], api_name="/predict")
    assert len(faces) == 1
    x, y, w, h = faces[0]["box"]
    assert 150 < x < 200 and 60 < y < 110
    assert faces[0]["label"] == "happy"
