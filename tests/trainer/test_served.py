"""trainer.served: the shipped ensemble's predictions over whole arrays, as the demo serves each face."""

import numpy as np
import pytest
from conftest import ROOT, SAMPLE

from demo.pipeline.classify import ModelStore
from trainer import served
from trainer.data import list_class_folder, load_split

WEIGHTS = ROOT / "weights"


@pytest.mark.skipif(not (WEIGHTS / "ensemble.json").is_file(), reason="no shipped ensemble")
def test_batched_targets_equal_what_the_demo_serves_for_each_face():
    faces = load_split(list_class_folder(SAMPLE / "val"), 48, "grayscale").x[:24]
    store = ModelStore(WEIGHTS)
    members = [p.stem for p in served.members(WEIGHTS)]
    if members != [m.name for m in store.get("ensemble").models]:
        pytest.skip("weights/ensemble.json lists other members than the demo serves")
    demo = store.get("ensemble").predict([np.repeat(f, 3, axis=2) for f in faces])  # RGB crops, as cut by the page
    batched = served.ensemble_probs(WEIGHTS, faces)
    np.testing.assert_allclose(batched, demo, atol=1e-5)
    assert batched.argmax(1).tolist() == demo.argmax(1).tolist()
    mirrored = served.ensemble_probs(WEIGHTS, faces, views="mirror")  # another view set: other numbers
    assert np.abs(mirrored - batched).max() > 1e-4


def test_the_cache_key_changes_with_the_models_and_the_files(tmp_path):
    for f in ("ensemble.json", "cnn_small.keras", "cnn_medium.keras"):
        (tmp_path / f).write_bytes((WEIGHTS / f).read_bytes() if f != "ensemble.json" else
                                   b'{"members": ["cnn_small", "cnn_medium"], "temperature": 1.0}')
    files = [p for p, _ in list_class_folder(SAMPLE / "val")]
    key = served.cache_key(tmp_path, files, None)
    assert key == served.cache_key(tmp_path, files, None)
    assert key != served.cache_key(tmp_path, files[1:], None)
    assert key != served.cache_key(tmp_path, files, "mirror")
    (tmp_path / "cnn_small.keras").write_bytes(b"x" + (WEIGHTS / "cnn_small.keras").read_bytes())
    assert key != served.cache_key(tmp_path, files, None)
