"""The default detector finds the faces users film: small faces in frames, stills and big photos."""

import csv
import json

import numpy as np
import pytest
from clips import write_clip
from conftest import EXAMPLES
from PIL import Image
from test_cli import run

from bench.faces import FACE_FREE, face_patches, iou, paste
from demo.pipeline.faces import DEFAULT_DETECTOR, FaceDetector, StreamSearch, suppress, tiles
from demo.pipeline.images import load_rgb


@pytest.fixture(scope="module")
def auto():
    with FaceDetector() as d:
        assert d.kind == DEFAULT_DETECTOR == "auto"
        yield d


def astronaut_px(face_px: int) -> int:
    """The astronaut photo's side at which her face box is face_px wide."""
    with FaceDetector("full") as d:
        return round(512 * face_px / d.detect(load_rgb(EXAMPLES / "astronaut.jpg"))[0].box[2])


def test_a_58_px_face_in_a_still_and_in_a_clip_is_found_by_default(tiny_models, tmp_path):
    side = astronaut_px(58)
    frame = Image.new("RGB", (640, 480), (60, 60, 70))
    frame.paste(Image.open(EXAMPLES / "astronaut.jpg").resize((side, side)), (200, 100))
    frame.save(tmp_path / "still.png")
    with FaceDetector("short") as short:
        assert short.detect(np.asarray(frame)) == []  # what the default used to be finds nobody
    clip = write_clip(tmp_path / "clip.mp4", seconds=2, astronaut_px=side, audio=False)

    r = run(["-m", "demo.predict", str(tmp_path / "still.png"), "--weights", str(tiny_models), "--model", "cnn",
             "--json"])
    assert r.returncode == 0, r.stderr
    (face,) = json.loads(r.stdout)["faces"]
    assert 45 <= face["box"][2] <= 75

    r = run(["-m", "demo.predict", str(clip), "--weights", str(tiny_models), "--model", "cnn",
             "--out", str(tmp_path / "out.mp4"), "--csv", str(tmp_path / "out.csv")])
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    frames = {int(row["frame"]) for row in rows}
    assert frames == set(range(60)) and len(rows) == 60  # her face in every frame, and nothing else


def test_no_face_in_the_face_free_images(auto):
    for path in FACE_FREE:
        rgb = load_rgb(path)
        assert auto.detect(rgb) == [], path.name
        big = np.asarray(Image.fromarray(rgb).resize((1920, 1080)))
        assert auto.detect(big) == [], f"{path.name} at 1920 x 1080"


def test_tiles_find_the_small_faces_of_a_4000_x_3000_group_photo(auto):
    patches = face_patches()
    photo = np.asarray(Image.open(FACE_FREE[0]).convert("RGB").resize((4000, 3000)))
    truths = []
    for i, width in enumerate([60, 70, 80, 100, 120, 160, 60, 90, 140, 300]):
        patch, box = patches[i % len(patches)]
        photo, truth = paste(photo, patch, box, width, ((i % 5) * 0.2 + 0.1, (i // 5) * 0.5 + 0.25))
        truths.append(truth)
    found = auto.detect(photo)
    assert all(any(iou(f.box, t) >= 0.3 for f in found) for t in truths)
    assert len(found) == len(truths)
    with FaceDetector("full") as one_pass:  # one pass sees the photo at 192 x 192: only the biggest
        assert len(one_pass.detect(photo)) < 3


def test_tiles_cover_the_frame_and_overlap():
    for w, h in [(640, 480), (1280, 720), (1920, 1080), (4000, 3000), (300, 5000)]:
        covered = np.zeros((h, w), bool)
        for x, y, side in tiles(w, h)[1:]:
            assert 0 <= x and 0 <= y and x + min(side, w) <= w and y + min(side, h) <= h
            covered[y : y + side, x : x + side] = True
        assert covered.all() or len(tiles(w, h)) == 1


def test_suppression_keeps_the_most_confident_of_overlapping_faces():
    from demo.pipeline.faces import Face

    faces = [Face((0, 0, 100, 100), 0.7), Face((10, 10, 100, 100), 0.9), Face((30, 30, 40, 40), 0.95),
             Face((300, 0, 50, 50), 0.6)]
    assert suppress(faces) == [Face((30, 30, 40, 40), 0.95), Face((300, 0, 50, 50), 0.6)]


def test_a_stream_follows_a_small_face_between_full_searches(auto):
    side = astronaut_px(50)
    search = StreamSearch(auto)
    seen = []
    for i in range(20):
        frame = Image.new("RGB", (640, 480), (60, 60, 70))
        frame.paste(Image.open(EXAMPLES / "astronaut.jpg").resize((side, side)), (100 + 5 * i, 100))
        seen.append(len(search.detect(np.asarray(frame))))
    assert seen == [1] * 20
