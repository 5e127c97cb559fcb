"""Annotated results go to unique, complete files (Gradio's own array cache writes in place)."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from demo.results import ResultFiles


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


def test_old_results_are_pruned_and_new_ones_kept(tmp_path):
    results = ResultFiles(tmp_path, max_age_s=60)
    rgb = np.zeros((8, 8, 3), np.uint8)
    old, recent = results.save_jpeg(rgb), results.save_jpeg(rgb)
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    newest = results.save_jpeg(rgb)
    assert not os.path.exists(old) and os.path.exists(recent) and os.path.exists(newest)
