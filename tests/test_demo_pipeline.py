"""Real MediaPipe on real photos, real Keras models, crops, batching, smoothing and overlay."""

import numpy as np
import pytest
from conftest import EXAMPLES

from demo.classify import ModelStore, ModelUnavailable
from demo.faces import FaceDetector, crop_face
from demo.images import load_rgb
from demo.overlay import COLOURS, draw_faces
from demo.pipeline import analyse, annotate
from demo.smoothing import smooth


@pytest.fixture(scope="module")
def detector():
    with FaceDetector("short") as d:
        yield d


@pytest.fixture(scope="module")
def store(tiny_models):
    return ModelStore(tiny_models)


def test_astronaut_has_one_face_where_her_face_is(detector):
    faces = detector.detect(load_rgb(EXAMPLES / "astronaut.jpg"))
    assert len(faces) == 1 and faces[0].score > 0.8
    x, y, w, h = faces[0].box
    # Eileen Collins' face in skimage's 512x512 astronaut: roughly x 175-275, y 80-180.
    assert 150 < x < 200 and 60 < y < 110 and 80 < w < 130 and 80 < h < 130


def test_no_face_in_a_cat_or_a_blank_image(detector):
    assert detector.detect(load_rgb(EXAMPLES / "chelsea_cat_no_face.jpg")) == []
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []


@pytest.mark.parametrize("kind", ["short", "full"])
def test_four_faces_found_by_both_detectors(kind):
    with FaceDetector(kind) as d:
        assert len(d.detect(load_rgb(EXAMPLES / "four_faces.jpg"))) == 4


def test_crop_is_square_with_margin_and_padded_at_edges():
    rgb = np.arange(100 * 120 * 3, dtype=np.uint32).reshape(100, 120, 3).astype(np.uint8)
    crop = crop_face(rgb, (40, 30, 20, 20))
    assert crop.shape == (25, 25, 3)
    edge = crop_face(rgb, (0, 0, 40, 40))
    assert edge.shape == (50, 50, 3)


def test_all_faces_classified_in_one_batch(detector, store):
    model = store.get("cnn")
    calls = []
    original = model.predict
    model.predict = lambda crops: calls.append(len(crops)) or original(crops)
    try:
        faces = analyse(load_rgb(EXAMPLES / "four_faces.jpg"), model, detector)
    finally:
        model.predict = original
    assert calls == [4] and len(faces) == 4
    for f in faces:
        assert f["label"] in COLOURS and f["top3"][0] == [f["label"], f["confidence"]]
        assert [p for _, p in f["top3"]] == sorted((p for _, p in f["top3"]), reverse=True)


def test_whole_image_mode_classifies_a_fer_crop(store, sample_root):
    rgb = load_rgb(next((sample_root / "test" / "happy").iterdir()))
    faces = analyse(rgb, store.get("cnn"), None, whole_image=True)
    assert len(faces) == 1 and faces[0]["box"] == [0, 0, 48, 48]


def test_grey_model_sees_the_same_pixels_as_training(store, sample_root):
    """A FER2013 file through the demo's preparation equals the trainer's loading of it."""
    from trainer.data import load_image

    path = next((sample_root / "test" / "sad").iterdir())
    model = store.get("cnn")
    batch = model.prepare([load_rgb(path)])
    np.testing.assert_array_equal(batch[0], load_image(path, 48, "grayscale").astype(np.float32))


def test_ensemble_averages_available_models(store):
    crops = [load_rgb(EXAMPLES / "astronaut.jpg")[80:180, 170:280]]
    ens = store.get("ensemble")
    expected = np.mean([store.get(n).predict(crops) for n in ("cnn", "seed_cnn")], axis=0)
    np.testing.assert_allclose(ens.predict(crops), expected, rtol=1e-5)


def test_only_models_that_exist_are_offered_and_the_ensemble_needs_two(store, tiny_models, tmp_path):
    with pytest.raises(ModelUnavailable, match="'ResNet50' is not available .choose one of: cnn, seed_cnn, ensemble"):
        store.get("resnet50")
    with pytest.raises(ModelUnavailable, match="not available"):
        store.get("../weights/cnn")  # a name never becomes a path outside the folder
    assert store.choices() == [("CNN", "cnn"), ("seed_cnn", "seed_cnn"), ("Ensemble of 2 models", "ensemble")]
    for suffix in (".keras", ".json"):
        (tmp_path / f"cnn{suffix}").write_bytes((tiny_models / f"cnn{suffix}").read_bytes())
    one = ModelStore(tmp_path)
    assert one.names() == ["cnn"] and one.default() == "cnn"
    with pytest.raises(ModelUnavailable, match="the ensemble needs two or more models"):
        one.get("ensemble")


def test_overlay_draws_boxes_in_the_emotion_colour():
    rgb = np.zeros((200, 300, 3), np.uint8)
    out = draw_faces(rgb, [{"box": [50, 60, 80, 80], "label": "happy", "confidence": 0.9}])
    assert out.shape == rgb.shape and (rgb == 0).all()  # the input is not drawn on
    assert tuple(out[100, 50]) == COLOURS["happy"]  # left edge of the box
    assert annotate(rgb, []).sum() == 0


def test_smoothing_follows_faces_and_damps_flicker():
    a = np.array([[1.0, 0.0]])
    b = np.array([[0.0, 1.0]])
    p1, tracks = smooth([], [[10, 10, 50, 50]], a)
    p2, tracks = smooth(tracks, [[12, 11, 50, 50]], b)  # same face, moved a little
    assert p2[0, 0] > 0.5  # one contrary frame does not flip the label
    p3, tracks = smooth(tracks, [[300, 300, 50, 50]], b)  # a different face starts fresh
    np.testing.assert_allclose(p3, b)
    p4, tracks = smooth(tracks, [], np.zeros((0, 2)))  # the person turns away: no face, no crash
    assert p4.shape == (0, 2) and tracks == []
    p5, _ = smooth(tracks, [[300, 300, 50, 50]], a)  # and back: a fresh track
    np.testing.assert_allclose(p5, a)
