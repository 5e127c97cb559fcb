"""Host-side geometric augmentation: the warp itself and the batches model.fit reads."""

import numpy as np
import pytest
from conftest import SAMPLE

from trainer.augment import HostAugmentedBatches, mixup, random_affine
from trainer.data import load_dataset, one_hot_arrays


@pytest.fixture(scope="module")
def faces():
    return load_dataset(SAMPLE, 48, "grayscale", ("train",))[0]["train"]


def test_zero_ranges_leave_images_as_they_are(faces):
    x = faces.x[:8].astype("float32")
    out = random_affine(x, np.random.default_rng(0), rotation=0, zoom=0, translation=0)
    np.testing.assert_allclose(out, x, atol=1e-3)


def test_warp_moves_pixels_but_keeps_shape_range_and_seed(faces):
    x = faces.x[:16].astype("float32")
    a = random_affine(x, np.random.default_rng(7))
    b = random_affine(x, np.random.default_rng(7))
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # same generator state, same warps
    assert a.min() >= 0 and a.max() <= 255  # border replication invents no new values
    changed = np.abs(a - x).mean(axis=(1, 2, 3))
    assert (changed > 1).sum() >= 14  # nearly every image moved (an angle near 0 and no shift is rare)


def test_a_pure_shift_moves_the_face_by_that_many_pixels():
    x = np.zeros((1, 48, 48, 1), np.float32)
    x[0, 20:28, 20:28] = 255
    rng = np.random.default_rng(0)
    out = random_affine(x, rng, rotation=0, zoom=0, translation=0.1)
    replay = np.random.default_rng(0)  # the draws random_affine made: angle, zoom, then shift
    replay.uniform(0, 0, 1), replay.uniform(0, 0, 1)
    dx, dy = replay.uniform(-0.1, 0.1, (1, 2))[0] * 48
    assert max(abs(dx), abs(dy)) > 1  # a shift worth measuring
    ys, xs = np.nonzero(out[0, ..., 0] > 127)
    assert xs.mean() == pytest.approx(23.5 + dx, abs=0.6) and ys.mean() == pytest.approx(23.5 + dy, abs=0.6)


def test_batches_cover_the_data_once_per_epoch_with_class_weights(faces):
    x, y = one_hot_arrays(faces)
    batches = HostAugmentedBatches(x, y, batch_size=10, class_weight={1: 3.0}, seed=1)
    assert len(batches) == -(-len(x) // 10)
    seen, weights = [], []
    for i in range(len(batches)):
        bx, by, bw = batches[i]
        assert bx.shape[1:] == (48, 48, 1) and by.shape[1] == 7
        seen.append(by.argmax(1))
        weights.append(bw)
    labels, w = np.concatenate(seen), np.concatenate(weights)
    assert sorted(labels) == sorted(faces.y)  # every image exactly once
    assert set(w[labels == 1]) == {3.0} and set(w[labels != 1]) == {1.0}
    first = batches[0][0]
    np.testing.assert_array_equal(first, batches[0][0])  # repeatable within an epoch
    batches.on_epoch_end()
    assert not np.array_equal(first, batches[0][0])  # new order and warps next epoch


def test_mixup_blends_images_targets_and_weights_with_the_drawn_partner(faces):
    x, y = one_hot_arrays(faces)
    x, y = x[:32], y[:32]
    w = np.where(y.argmax(1) == 1, 4.0, 1.0).astype(np.float32)
    mx, my, mw = mixup(x, y, w, np.random.default_rng(3), alpha=0.4)
    replay = np.random.default_rng(3)  # the draws mixup made: blend weights, then partners
    lam = replay.beta(0.4, 0.4, 32).astype(np.float32)
    lam, other = np.maximum(lam, 1 - lam), replay.permutation(32)
    assert lam.min() >= 0.5 and (lam < 0.9).sum() >= 4  # alpha 0.4 blends a good share noticeably
    np.testing.assert_allclose(mx, lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[other],
                               rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(my.sum(1), 1, atol=1e-6)  # still a distribution over the 7 classes
    assert (my.argmax(1) == y.argmax(1))[lam > 0.51].all()  # the original image keeps the larger share
    np.testing.assert_allclose(mw, lam * w + (1 - lam) * w[other], rtol=1e-6)
    assert mx.shape == x.shape and mx.dtype == np.float32


def test_host_batches_with_mixup_carry_soft_targets(faces):
    x, y = one_hot_arrays(faces)
    bx, by, bw = HostAugmentedBatches(x, y, batch_size=16, class_weight={1: 3.0}, seed=1, mixup_alpha=0.4)[0]
    assert bx.shape == (16, 48, 48, 1) and (by.max(1) < 1).any()  # some rows are blends now
    np.testing.assert_allclose(by.sum(1), 1, atol=1e-6)
    assert 1.0 <= bw.min() and bw.max() <= 3.0


def test_host_batches_put_the_share_asked_for_under_a_camera_corruption(faces):
    x, y = one_hot_arrays(faces)
    clean = HostAugmentedBatches(x, y, batch_size=len(x), seed=3)[0][0]
    some = HostAugmentedBatches(x, y, batch_size=len(x), seed=3, corruption=0.5)[0][0]
    every = HostAugmentedBatches(x, y, batch_size=len(x), seed=3, corruption=1.0)[0][0]
    changed = lambda b: (np.abs(b - clean) > 0.5).any(axis=(1, 2, 3)).mean()  # noqa: E731
    assert 0.2 < changed(some) < 0.8 and changed(every) > 0.95
    assert some.shape == clean.shape and 0 <= some.min() and some.max() <= 255


def test_corruptions_need_the_host_pipeline(sample_root, tmp_path, caplog):
    from trainer.train import main

    assert main(["--model", "cnn", "--data", str(sample_root), "--out", str(tmp_path),
                 "--geometric-augmentation", "model", "--corruptions", "0.5"]) == 2
    assert "--corruptions needs --geometric-augmentation host" in caplog.text
