"""Annotated results go to unique, complete files (Gradio's own array cache writes in place)."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from demo.guards.results import ResultFiles


def test_the_same_image_saved_at_once_gives_separate_complete_files(tmp_path):
    results = ResultFiles(tmp_path)
    rgb = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: results.save_jpeg(rgb), range(16)))
    assert len(set(paths)) == 16
    sizes = {os.path.getsize(p) for p in paths}
    assert len(sizes) == 1 and sizes.pop() > 1000  # identical, complete JPEGs
    with Image.open(paths[0]) as im:
        assert im.format == "JPEG" and im.size == (160, 120)
    assert not list(tmp_path.glob("*.part"))
