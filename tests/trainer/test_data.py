"""trainer.data on real FER2013 files and on generated broken folders."""

import shutil

import numpy as np
import pytest
from conftest import CLASSES, write_image

from trainer.classes import CLASS_NAMES, balanced_class_weights
from trainer.data import DataError, find_splits, load_dataset, make_tf_dataset


def test_class_order_is_canonical_not_alphabetical():
    assert CLASS_NAMES == CLASSES  # neutral before sad, as the project defines it


def test_three_split_layout_labels_follow_folders(sample_root):
    splits = find_splits(sample_root)
    assert set(splits) == {"train", "val", "test"}
    assert len(splits["train"]) == 6 * 7 and len(splits["val"]) == 2 * 7
    for path, label in splits["train"]:
        assert path.parent.name == CLASS_NAMES[label]


def test_train_and_test_only_carves_stratified_val(copy_sample):
    root = copy_sample()
    shutil.rmtree(root / "val")
    splits = find_splits(root)
    val_labels = sorted(label for _, label in splits["val"])
    assert val_labels == list(range(7))  # one image of each class set aside
    train_files = {p for p, _ in splits["train"]}
    assert not train_files & {p for p, _ in splits["val"]}
    assert len(train_files) + len(val_labels) == 42
    assert find_splits(root)["val"] == splits["val"]  # fixed seed


def test_validation_folder_name_is_accepted(copy_sample):
    root = copy_sample()
    (root / "val").rename(root / "validation")
    assert len(find_splits(root)["val"]) == 14


def test_single_folder_of_classes_is_split_80_10_10(copy_sample):
    root = copy_sample("train")
    splits = find_splits(root)
    n = {k: len(v) for k, v in splits.items()}
    assert sum(n.values()) == 42 and n["test"] == 7 and n["val"] == 7
    assert {label for _, label in splits["test"]} == set(range(7))


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda r: (r / "train" / "happy").rename(r / "train" / "joy"), "unknown class folder"),
        (lambda r: shutil.rmtree(r / "train" / "fear"), "missing class folder"),
        (lambda r: [p.unlink() for p in (r / "test" / "sad").iterdir()], "empty class folder"),
        (lambda r: shutil.rmtree(r / "test"), "no test/ split"),
        (lambda r: shutil.rmtree(r / "train"), "no train/ split"),
    ],
)
def test_bad_folders_are_clear_errors_naming_the_path(copy_sample, breakage, message):
    root = copy_sample()
    breakage(root)
    with pytest.raises(DataError, match=message) as err:
        find_splits(root)
    assert str(root) in str(err.value)


def test_missing_and_empty_roots(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        find_splits(tmp_path / "nope")
    with pytest.raises(DataError, match="no class folders"):
        find_splits(tmp_path)


def test_corrupt_files_are_skipped_and_counted(copy_sample):
    root = copy_sample()
    (root / "train" / "happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "train" / "sad" / "empty.png").write_bytes(b"")
    data, mode = load_dataset(root, 48, "auto", ("train",))
    assert mode == "grayscale"
    assert data["train"].skipped == 2 and len(data["train"]) == 42


def test_colour_images_of_any_size_are_resized_and_kept_in_colour(copy_sample):
    root = copy_sample()
    for i, c in enumerate(CLASSES):
        for split in ("train", "val", "test"):
            for p in (root / split / c).iterdir():
                p.unlink()
            for j in range(3):
                write_image(root / split / c / f"{j}.png", size=(64 + j, 80), mode="RGB", seed=i * 10 + j)
    data, mode = load_dataset(root, 32, "auto", ("train", "test"))
    assert mode == "rgb"
    assert data["train"].x.shape == (21, 32, 32, 3) and data["train"].x.dtype == np.uint8


def test_balanced_class_weights_favour_rare_classes():
    y = np.array([0] * 90 + [1] * 10)
    w = balanced_class_weights(y)
    assert w[1] == pytest.approx(5.0) and w[0] == pytest.approx(100 / 180)


def test_class_weight_power_softens_the_balance():
    y = np.array([0] * 90 + [1] * 10)
    full, soft, none = (balanced_class_weights(y, p) for p in (1.0, 0.5, 0.0))
    assert soft[1] == pytest.approx(full[1] ** 0.5) and soft[0] == pytest.approx(full[0] ** 0.5)
    assert none == {0: 1.0, 1: 1.0}


def test_tf_dataset_carries_class_weights_and_blends_them_under_mixup(sample_root):
    train = load_dataset(sample_root, 48, "grayscale", ("train",))[0]["train"]
    plain = next(iter(make_tf_dataset(train, 16, shuffle=False)))
    assert len(plain) == 2 and set(plain[1].numpy().max(1)) == {1.0}  # (pixels, one-hot)

    weighted = next(iter(make_tf_dataset(train, 16, shuffle=False, class_weight={1: 3.0})))
    x, y, w = (t.numpy() for t in weighted)
    np.testing.assert_array_equal(w, np.where(y.argmax(1) == 1, 3.0, 1.0))

    def first_mixed(seed):
        return [t.numpy() for t in next(iter(make_tf_dataset(train, 16, shuffle=True, seed=seed,
                                                              class_weight={1: 3.0}, mixup_alpha=0.4)))]

    mx, my, mw = first_mixed(5)
    assert mx.shape == (16, 48, 48, 1) and (my.max(1) < 1).any()
    np.testing.assert_allclose(my.sum(1), 1, atol=1e-6)
    assert 1.0 <= mw.min() and mw.max() <= 3.0
    np.testing.assert_array_equal(mx, first_mixed(5)[0])  # a seeded run repeats its blends
