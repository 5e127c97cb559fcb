"""Evaluate a saved model on a class-folder split.

    python -m trainer.evaluate --model weights/cnn.keras --data ../shared/datasets/fer2013/test --out runs/eval/cnn

Writes OUT/metrics.json (n, accuracy, macro precision/recall/F1, per-class scores,
confusion matrix with rows = true class in the model's class order), the confusion
matrix as PNG (counts and row-normalised) and, when NAME.history.json lies beside the
model, the loss and accuracy curves. --tta picks the test-time views (trainer.views: none,
mirror, crops, or "served": the set NAME.json says the demo serves); the temperature that
trainer.calibrate stored for that view set is applied, and ECE and NLL are reported before
and after it. --corruptions adds the camera-corruption benchmark (trainer.corruptions: every
kind at five severities, computed on the fly with fixed seeds, single plain view): accuracy
per kind and severity, their mean, and the drop from clean relative to clean.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from trainer.calibration import apply_temperature, calibration_report, serving
from trainer.classes import CLASS_NAMES
from trainer.data import DataError, find_splits, list_class_folder, load_split
from trainer.views import VIEW_SETS, predict_views

log = logging.getLogger("trainer.evaluate")


def model_meta(model_path: Path) -> dict:
    """NAME.json beside NAME.keras (class names, settings), or {} when absent."""
    meta = model_path.with_suffix(".json")
    return json.loads(meta.read_text()) if meta.exists() else {}


def load_eval_split(data: Path, model, class_names):
    """A split folder of class folders, or a data root whose test split is used."""
    data = Path(data)
    if data.is_dir() and all((data / c).is_dir() for c in class_names):
        items = list_class_folder(data, class_names)
    else:
        items = find_splits(data)["test"]
    size, channels = model.input_shape[1], model.input_shape[-1]
    return load_split(items, size, "grayscale" if channels == 1 else "rgb", "eval")


def predict(model, x: np.ndarray, view_set: str = "none", batch_size: int = 256) -> np.ndarray:
    """Probabilities averaged over the test-time views of x (trainer.views)."""
    return predict_views(lambda v: model.predict(v, batch_size=batch_size, verbose=0), x, view_set)


def corruption_scores(model, x: np.ndarray, y: np.ndarray, keep: dict | None = None,
                      temperature: float = 1.0) -> dict:
    """Plain-view accuracy under every corruption kind and severity; `keep` gets the calibrated probabilities."""
    from trainer.corruptions import KINDS, benchmark_views

    clean = float((predict(model, x).argmax(1) == y).mean())
    by_kind = {kind: [] for kind in KINDS}
    for kind, severity, corrupted in benchmark_views(x):
        probs = apply_temperature(predict(model, corrupted), temperature)
        by_kind[kind].append(float((probs.argmax(1) == y).mean()))
        if keep is not None:
            keep[f"{kind}/{severity}"] = probs
    return corruption_summary(clean, by_kind)


def corruption_summary(clean: float, by_kind: dict[str, list[float]]) -> dict:
    mean = float(np.mean([a for accs in by_kind.values() for a in accs]))
    return {"clean": clean, "mean": mean, "relative_drop": (clean - mean) / clean if clean else float("nan"),
            "by_kind": {kind: {"severities": accs, "mean": float(np.mean(accs))} for kind, accs in by_kind.items()}}


def scores(y_true, y_pred, class_names) -> dict:
    """Accuracy, macro and per-class precision/recall/F1 and the confusion matrix (scikit-learn)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    pm, rm, fm, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision_macro": float(pm),
        "recall_macro": float(rm),
        "f1_macro": float(fm),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def plot_confusion(cm, class_names, path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    cm = np.asarray(cm)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    for ax, matrix, fmt, sub in ((axes[0], cm, "d", "counts"), (axes[1], norm, ".2f", "row-normalised")):
        ConfusionMatrixDisplay(matrix, display_labels=class_names).plot(
            ax=ax, cmap="Blues", values_format=fmt, colorbar=False, xticks_rotation=45
        )
        ax.set_title(f"{title}: {sub}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(history: list[dict], path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [h.get(key) for h in history], label="train")
        ax.plot(epochs, [h.get(f"val_{key}") for h in history], label="val")
        ax.set_xlabel("epoch")
        ax.set_title(f"{title}: {key}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate(model_path: Path, data: Path, out: Path, views=("none",), keep: dict | None = None,
             corruptions: bool = False) -> dict:
    """Scores of one model on a split under each view set in `views` (the first is the headline).

    Each view set's probabilities get the temperature stored for it (trainer.calibrate);
    `keep`, when given, receives the labels and those calibrated probabilities per view set
    (and with `corruptions`, the plain probabilities under each corruption, by "kind/severity").
    """
    import keras

    model_path = Path(model_path)
    if not model_path.is_file():
        raise DataError(f"model file not found: {model_path}")
    model = keras.saving.load_model(model_path)  # safe_mode on: no custom code
    meta = model_meta(model_path)
    class_names = meta.get("class_names", list(CLASS_NAMES))
    split = load_eval_split(data, model, class_names)
    name = model_path.stem  # the file's name, as the demo lists it (NAME.json's "name" is the architecture)
    by_views, kept = {}, {}
    for requested in views:
        view_set, temperature = serving(meta, None if requested == "served" else requested)
        raw = predict(model, split.x, view_set)
        kept[requested] = apply_temperature(raw, temperature)
        by_views[requested] = {"views": view_set, **scores(split.y, raw.argmax(1), class_names),
                               "calibration": calibration_report(raw, split.y, temperature)}
    head = by_views[views[0]]
    result = {"model": name, "file": str(model_path), "data": str(data), "skipped_unreadable": split.skipped,
              **head, "by_views": {k: {key: v[key] for key in v if key not in ("per_class", "confusion_matrix")}
                                   for k, v in by_views.items()}}
    corrupted = {}
    if corruptions:
        result["corruptions"] = corruption_scores(model, split.x, split.y, corrupted, serving(meta, "none")[1])
    if keep is not None:
        keep.update(y=split.y, probs=kept, class_names=class_names, corrupted=corrupted)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    plot_confusion(result["confusion_matrix"], class_names, out / "confusion_matrix.png", name)
    history_path = model_path.with_name(f"{model_path.stem}.history.json")
    if history_path.exists():
        plot_history(json.loads(history_path.read_text()), out / "learning_curves.png", name)
    return result


def corruption_table(c: dict) -> str:
    """Markdown: accuracy per corruption kind (rows) and severity (columns)."""
    lines = ["| corruption | " + " | ".join(f"severity {s}" for s in range(1, 6)) + " | mean |",
             "|---|" + "---:|" * 6]
    for kind, v in c["by_kind"].items():
        lines.append(f"| {kind} | " + " | ".join(f"{a:.3f}" for a in v["severities"]) + f" | {v['mean']:.3f} |")
    lines.append(f"| **all** (clean {c['clean']:.3f}) | | | | | | **{c['mean']:.3f}** "
                 f"(drop {100 * c['relative_drop']:.1f} %) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, type=Path, help="a .keras file")
    p.add_argument("--data", required=True, type=Path, help="a split folder of class folders, or a data root")
    p.add_argument("--out", type=Path, help="output folder (default: runs/eval/NAME)")
    p.add_argument("--tta", choices=[*VIEW_SETS, "served"], default="none",
                   help="test-time views: none (default), mirror, crops, or served (what the demo serves)")
    p.add_argument("--corruptions", action="store_true",
                   help="also the camera-corruption benchmark: every kind of trainer.corruptions at 5 severities")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    out = args.out or Path("runs/eval") / args.model.stem
    try:
        r = evaluate(args.model, args.data, out, (args.tta,), corruptions=args.corruptions)
    except DataError as err:
        log.error("%s", err)
        return 2
    cal = r["calibration"]
    print(f"{r['model']} ({r['views']} views): n={r['n']} accuracy={r['accuracy']:.4f} "
          f"precision_macro={r['precision_macro']:.4f} recall_macro={r['recall_macro']:.4f} "
          f"f1_macro={r['f1_macro']:.4f} | T={cal['temperature']:.3f} ECE {cal['ece_before']:.4f} -> "
          f"{cal['ece_after']:.4f}, NLL {cal['nll_before']:.4f} -> {cal['nll_after']:.4f}")
    if args.corruptions:
        print(corruption_table(r["corruptions"]))
    print(f"wrote {out}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
