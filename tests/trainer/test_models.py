"""The registry's models: shapes, the .keras contract under safe_mode, offline ImageNet."""

import json

import keras
import numpy as np
import pytest

from trainer.classes import NUM_CLASSES
from trainer.models import REGISTRY, BackboneWeightsError, build_model


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registry_model_takes_pixels_and_returns_probabilities(name, tmp_path):
    model = build_model(name, (48, 48, 1), backbone_weights="none")
    x = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 1)).astype("float32")
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (2, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)  # no custom objects, no Lambda
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), probs, rtol=1e-4, atol=1e-6)


def test_cnn_is_small_and_seed_cnn_is_the_literal_baseline():
    cnn = build_model("cnn", (48, 48, 1))
    seed = build_model("seed_cnn", (48, 48, 1))
    assert cnn.count_params() < 2_000_000
    convs = [layer for layer in seed.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64]
    assert [d.units for d in seed.layers if isinstance(d, keras.layers.Dense)] == [128, 7]


def test_resnet50_preprocessing_is_keras_caffe_mode():
    model = build_model("resnet50", (48, 48, 3), backbone_weights="none")
    sub = keras.Model(model.input, model.get_layer("caffe_preprocess").output)
    x = np.random.default_rng(1).uniform(0, 255, (1, 48, 48, 3)).astype("float32")
    resized = keras.Model(model.input, model.get_layer("resize").output)(x, training=False)
    expected = keras.applications.resnet50.preprocess_input(np.asarray(resized).copy())
    np.testing.assert_allclose(np.asarray(sub(x, training=False)), expected, atol=1e-3)


@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2"])
def test_imagenet_offline_stops_at_once_with_what_to_do(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache: a download must be tried
    try:
        build_model(name, (48, 48, 1), backbone_weights="imagenet")
    except BackboneWeightsError as err:
        message = str(err)
        assert "Offline?" in message and "--backbone-weights" in message and "none" in message
    else:
        pytest.skip("ImageNet weights downloaded: this machine is online")


def test_missing_local_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(BackboneWeightsError, match="not found"):
        build_model("mobilenetv2", (48, 48, 1), backbone_weights=str(tmp_path / "nope.weights.h5"))


def test_tiny_models_carry_class_names_and_settings(tiny_models):
    meta = json.loads((tiny_models / "cnn.json").read_text())
    assert meta["class_names"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert meta["input_shape"] == [48, 48, 1] and meta["settings"]["model"] == "cnn"
    model = keras.saving.load_model(tiny_models / "cnn.keras")
    assert getattr(model, "optimizer", None) is None  # shipped files hold no optimizer state


def test_cnn_width_scales_the_filters_and_geometric_layers_can_move_out():
    narrow = build_model("cnn", (48, 48, 1), width=16)
    wide = build_model("cnn", (48, 48, 1), width=48, geometric_aug=False)
    assert narrow.get_layer("conv3_1").filters == 128 and wide.get_layer("conv3_1").filters == 384
    assert narrow.count_params() < build_model("cnn", (48, 48, 1)).count_params() < wide.count_params()
    kinds = {type(layer).__name__ for layer in wide.get_layer("augmentation").layers}
    assert "RandomFlip" in kinds and not kinds & {"RandomRotation", "RandomZoom", "RandomTranslation"}
    assert "RandomRotation" in {type(layer).__name__ for layer in narrow.get_layer("augmentation").layers}
