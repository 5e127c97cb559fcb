"""trainer.evaluate and trainer.compare on a real (tiny) model and real FER2013 images."""

import json
import shutil

import numpy as np

from trainer.compare import main as compare_main
from trainer.evaluate import main as evaluate_main
from trainer.evaluate import scores


def test_evaluate_writes_metrics_and_plots(tiny_models, sample_root, tmp_path, capsys):
    out = tmp_path / "eval"
    assert evaluate_main(["--model", str(tiny_models / "cnn.keras"), "--data", str(sample_root / "test"),
                          "--out", str(out), "--tta", "mirror"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 21
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro"):
        assert 0 <= m[key] <= 1
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == 21 and (cm.sum(1) == 3).all()  # rows = true class
    assert m["accuracy"] == np.trace(cm) / 21
    assert list(m["per_class"]) == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert m["views"] == "mirror" and set(m["by_views"]) == {"mirror"}
    assert {"ece_before", "ece_after", "nll_before", "nll_after"} <= set(m["calibration"])
    for png in ("confusion_matrix.png", "learning_curves.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accuracy=" in capsys.readouterr().out


def test_evaluate_accepts_a_data_root_and_reports_a_missing_model(tiny_models, sample_root, tmp_path):
    assert evaluate_main(["--model", str(tiny_models / "cnn.keras"), "--data", str(sample_root),
                          "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["n"] == 21
    assert evaluate_main(["--model", str(tmp_path / "none.keras"), "--data", str(sample_root)]) == 2


def test_scores_match_hand_counts():
    s = scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["a", "b"])
    assert s["accuracy"] == 0.75 and s["confusion_matrix"] == [[1, 1], [0, 2]]
    assert s["per_class"]["b"]["precision"] == 2 / 3 and s["per_class"]["a"]["recall"] == 0.5


def test_compare_builds_table_metrics_and_readme_section(tiny_models, sample_root, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- comparison:start -->\nold\n<!-- comparison:end -->\ntail\n")
    card = tmp_path / "card.md"
    card.write_text("<!-- per-class:start -->\n<!-- per-class:end -->\n")
    assert compare_main(["--data", str(sample_root / "test"), "--models", str(tiny_models / "cnn.keras"),
                         str(tiny_models / "seed_cnn.keras"), "--out", str(tmp_path / "w"),
                         "--assets", str(tmp_path / "assets"), "--readme", str(readme),
                         "--card", str(card)]) == 0
    rows = json.loads((tmp_path / "w" / "comparison.json").read_text())
    assert [r["model"] for r in rows] == ["cnn (not shipped)", "seed_cnn (not shipped)"]
    assert all(r["ms_per_face"] > 0 and r["parameters"] > 0 for r in rows)
    metrics = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert metrics["cnn"]["training"]["epochs_trained"] == 1
    text = readme.read_text()
    assert "\nold\n" not in text and "| cnn (not shipped) |" in text and text.endswith("tail\n")
    assert (tmp_path / "assets" / "seed_cnn" / "confusion_matrix.png").exists()
    assert "**seed_cnn** (accuracy" in card.read_text() and "| disgust |" in card.read_text()


def test_compare_adds_the_demos_ensemble_for_shipped_models(tiny_models, sample_root, tmp_path):
    """Two models in --out are shipped: the table gains the mean of their probabilities."""
    import keras

    from trainer.evaluate import load_eval_split

    out = tmp_path / "w"
    shutil.copytree(tiny_models, out)
    assert compare_main(["--data", str(sample_root / "test"), "--models", str(out / "cnn.keras"),
                         str(out / "seed_cnn.keras"), "--out", str(out),
                         "--assets", str(tmp_path / "assets")]) == 0
    rows = {r["model"]: r for r in json.loads((out / "comparison.json").read_text())}
    ens = rows["ensemble (cnn + seed_cnn)"]
    assert ens["parameters"] == rows["cnn"]["parameters"] + rows["seed_cnn"]["parameters"]
    # Recompute it from the two models directly.
    models = [keras.saving.load_model(out / f"{n}.keras") for n in ("cnn", "seed_cnn")]
    split = load_eval_split(sample_root / "test", models[0], ["angry", "disgust", "fear", "happy", "neutral",
                                                              "sad", "surprise"])
    probs = np.mean([m.predict(split.x.astype("float32"), verbose=0) for m in models], axis=0)
    assert ens["accuracy"] == float((probs.argmax(1) == split.y).mean())
    assert {"mirror_accuracy", "served_accuracy", "served_ece"} <= set(ens)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["ensemble"]["members"] == ["cnn", "seed_cnn"] and not metrics["ensemble"]["shipped"]
