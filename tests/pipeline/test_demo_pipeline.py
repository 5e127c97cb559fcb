"""Real MediaPipe on real photos, real Keras models, crops, batching, tracking and overlay."""

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import EXAMPLES

from demo.pipeline.analyse import analyse, annotate
from demo.pipeline.classify import ModelStore, ModelUnavailable
from demo.pipeline.faces import FaceDetector, crop_face
from demo.pipeline.images import load_rgb
from demo.pipeline.overlay import COLOURS, draw_faces
from demo.pipeline.tracking import Tracker
from demo.web.live import READOUT_EVERY_S, Viewer, Viewers, process_frame, timeline_image
from trainer.classes import CLASS_NAMES


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


@pytest.mark.parametrize("kind", ["auto", "short", "full"])
def test_four_faces_found_by_every_detector(kind):
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
    model.predict = lambda crops, view_set=None: calls.append(len(crops)) or original(crops, view_set)
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


def test_viewers_arriving_at_once_do_not_each_trace_the_model_again(tiny_models, caplog):
    """A fresh server's first webcam viewers call the model at the same moment; each call traced
    its graph anew (TensorFlow's "excessive retracing" warning in the log)."""
    model = ModelStore(tiny_models).get("cnn")  # a store of its own: loaded now, not by another test
    caplog.clear()  # loading traces once; models loaded by earlier tests may count towards TF's warning
    with caplog.at_level(logging.WARNING, logger="tensorflow"), ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: model.predict([np.zeros((64, 64, 3), np.uint8)], "none"), range(8)))
    assert "retracing" not in caplog.text


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


def test_tracker_smooths_each_face_and_keeps_its_id():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    tracker = Tracker()
    p1, ids1 = tracker.update([[10, 10, 50, 50]], a, t=0.0)
    p2, ids2 = tracker.update([[12, 11, 50, 50]], b, t=0.1)  # same face, moved a little
    assert ids2 == ids1 == [1] and p2[0, 0] > 0.5  # one contrary frame does not flip the label
    p3, ids3 = tracker.update([[300, 300, 50, 50]], b, t=0.2)  # a different face starts fresh
    np.testing.assert_allclose(p3, b)
    assert ids3 == [2]
    p4, ids4 = tracker.update([], np.zeros((0, 2)), t=0.3)  # the person turns away: no face, no crash
    assert p4.shape == (0, 2) and ids4 == [] and tracker.tracks == []


def test_tracker_matches_best_overlaps_first_and_bridges_missed_frames():
    tracker = Tracker(max_missing=2)
    left, right = [0, 0, 100, 100], [150, 0, 100, 100]
    _, ids = tracker.update([left, right], np.eye(2), t=0)
    assert ids == [1, 2]
    _, ids = tracker.update([[160, 0, 100, 100], [5, 0, 100, 100]], np.eye(2), t=1)  # order swapped
    assert ids == [2, 1]
    tracker.update([[5, 0, 100, 100]], np.eye(2)[:1], t=2)  # the right face is missed once ...
    _, ids = tracker.update([[5, 0, 100, 100], [160, 0, 100, 100]], np.eye(2), t=3)
    assert ids == [1, 2]  # ... and keeps its id
    for t in (4, 5, 6):
        tracker.update([], np.zeros((0, 2)), t=t)
    _, ids = tracker.update([[160, 0, 100, 100]], np.eye(2)[:1], t=7)
    assert ids == [3]  # gone for longer than max_missing: a new face


def test_timeline_keeps_the_largest_face_over_the_last_30_seconds():
    tracker = Tracker()
    for i in range(400):  # 40 s at 10 frames a second
        tracker.update([[0, 0, 10, 10], [50, 50, 80, 80]], np.array([[1.0, 0.0], [0.0, 1.0]]), t=i / 10)
    seconds, probs, newest = tracker.timeline()
    assert seconds[0] >= -30.0 and seconds[-1] == 0 and len(seconds) == 301 and newest == 39.9
    np.testing.assert_allclose(probs[-1], [0.0, 1.0])  # the 80 x 80 face, not the 10 x 10 one


def test_timeline_chart_is_drawn_only_when_there_is_something_new():
    """A stopped stream's chart is not drawn and sent again on every tick of the timer."""
    viewer = Viewer()
    assert timeline_image(viewer, CLASS_NAMES) is None  # no face yet
    viewer.tracker.update([[0, 0, 10, 10]], np.eye(7)[[3]], t=1.0)
    assert timeline_image(viewer, CLASS_NAMES).ndim == 3
    assert timeline_image(viewer, CLASS_NAMES) is None  # nothing new since
    viewer.tracker.update([[0, 0, 10, 10]], np.eye(7)[[4]], t=1.1)
    assert timeline_image(viewer, CLASS_NAMES) is not None


def test_viewers_are_kept_by_session_and_dropped_when_they_leave_or_go_idle(caplog):
    viewers = Viewers(idle_s=30)
    alice = viewers.get("alice", now=0.0)
    assert viewers.get("alice", now=1.0) is alice and viewers.peek("alice", now=2.0) is alice
    assert viewers.get(None, now=2.0) is not viewers.get(None, now=2.0)  # no session: kept nowhere
    bob = viewers.get("bob", now=20.0)
    assert len(viewers) == 2 and viewers.peek("carol", now=20.0) is None
    with caplog.at_level("INFO", logger="ekspresi.live"):
        assert viewers.peek("alice", now=31.5) is None  # 30.5 s since her last frame
        assert viewers.peek("bob", now=31.5) is bob  # looking does not keep a viewer alive ...
        assert viewers.peek("bob", now=50.5) is None  # ... only frames do
        assert viewers.get("bob", now=51.0) is not bob  # back after that: a new timeline
        assert viewers.drop("bob") and not viewers.drop("bob") and len(viewers) == 0
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "webcam viewer gone (no frame for 30 s)", "webcam viewer gone (no frame for 30 s)",
        "webcam viewer gone (tab closed)"]


def test_live_readout_averages_the_frames_since_the_last_one(detector, store):
    """The webcam readout is written a few times a second, with the frame rate and mean costs."""
    rgb = load_rgb(EXAMPLES / "astronaut.jpg")
    model, viewer = store.get("cnn"), Viewer()
    out, first = process_frame(rgb, model, detector, viewer, now=0.0)
    assert out.shape == rgb.shape and first.startswith("cnn · ") and "frames/s" not in first
    assert "1 face ·" in first
    step = READOUT_EVERY_S / 5  # 20 frames a second
    readouts = [process_frame(rgb, model, detector, viewer, now=step * i)[1] for i in range(1, 11)]
    assert readouts[:4] == [None] * 4 and readouts[5:9] == [None] * 4  # nothing between readouts
    for r in (readouts[4], readouts[9]):
        assert " ms per frame (detect " in r and " · 20 frames/s · 1 face · " in r, r
        assert "; 1 view per face, each face classified again at 100 ms old, mirrored every other time) · " in r, r
    assert len(viewer.tracker.history) == 11  # every frame still reaches the tracker and timeline
    assert viewer.classified == 6  # at 0, 0.1, ..., 0.5 s: the face's emotion is never older than 100 ms


def test_live_frames_reuse_a_face_emotion_until_it_is_due_and_not_across_models(detector, store):
    """Between classifications a face keeps its track's probabilities; a new model starts afresh."""
    rgb = load_rgb(EXAMPLES / "astronaut.jpg")
    cnn, small, viewer = store.get("cnn"), store.get("seed_cnn"), Viewer()
    process_frame(rgb, cnn, detector, viewer, now=0.0)
    first = viewer.tracker.tracks[0].probs.copy()
    process_frame(rgb, cnn, detector, viewer, now=0.05)  # too soon: the same numbers
    np.testing.assert_array_equal(viewer.tracker.tracks[0].probs, first)
    process_frame(rgb, cnn, detector, viewer, now=0.1)  # due: the model sees the face again (mirrored)
    assert viewer.classified == 2 and not np.array_equal(viewer.tracker.tracks[0].probs, first)
    process_frame(rgb, small, detector, viewer, now=0.12)  # another model: its own numbers at once
    alone = small.predict([crop_face(rgb, viewer.tracker.tracks[0].box)], small.live_views)[0]
    np.testing.assert_allclose(viewer.tracker.tracks[0].probs, alone, atol=1e-6)
    assert viewer.tracker.tracks[0].id == 1 and viewer.classified == 3


def test_tracker_says_which_faces_are_due_and_keeps_the_others():
    tracker = Tracker()
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    tracker.update([[10, 10, 50, 50]], a, t=0.0)
    boxes = [[12, 10, 50, 50], [200, 200, 40, 40]]  # the same face, and a new one
    assert tracker.stale(boxes, 0.05, 0.1) == [False, True]
    assert tracker.stale(boxes, 0.1, 0.1) == [True, True]
    probs, ids = tracker.update(boxes, np.array([[0.5, 0.5], [0.0, 1.0]]), t=0.05, fresh=[False, True])
    np.testing.assert_allclose(probs, [[1.0, 0.0], [0.0, 1.0]])  # the first row was not computed
    assert ids == [1, 2] and tracker.tracks[0].classified == 0.0
    with pytest.raises(ValueError, match="starts a track"):
        tracker.update([[400, 0, 30, 30]], b, t=0.1, fresh=[False])
