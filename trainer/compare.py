"""Evaluate every model in a folder and write the comparison table (Markdown and JSON).

    python -m trainer.compare --data ../shared/datasets/fer2013/test [--models weights/*.keras]
        [--out weights] [--assets assets] [--readme README.md]

For each model: accuracy, macro precision/recall/F1 (trainer.evaluate) on single plain views,
accuracy with the mirror averaged in, accuracy, macro F1 and calibration error (ECE, after the
stored temperature) under the views the demo serves (trainer.calibrate chose them on val),
the mean accuracy over the camera-corruption benchmark (trainer.corruptions, single plain
views), size on disk, parameters and CPU latency per face (batch 1, median, one view). With two or
more shipped models (in --out) it adds the demo's ensemble: the mean of their calibrated
probabilities, then the ensemble's own temperature (OUT/ensemble.json). Writes OUT/metrics.json (every
evaluation plus how the model was trained), OUT/comparison.md and .json, the confusion
matrix and learning-curve PNGs under ASSETS/NAME/, and with --readme replaces the table
between <!-- comparison:start --> and <!-- comparison:end --> in that file (with --card, the
per-class tables between <!-- per-class:start --> and <!-- per-class:end -->, and the
corruption tables between <!-- corruptions:start --> and <!-- corruptions:end -->).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

from trainer.calibration import ENSEMBLE_FILE, calibration_report
from trainer.corruptions import KINDS
from trainer.evaluate import corruption_summary, corruption_table, evaluate, model_meta, scores
from trainer.train import git_commit

START, END = "<!-- comparison:start -->", "<!-- comparison:end -->"
CARD_START, CARD_END = "<!-- per-class:start -->", "<!-- per-class:end -->"
CORRUPTIONS_START, CORRUPTIONS_END = "<!-- corruptions:start -->", "<!-- corruptions:end -->"
VIEW_COLUMNS = ("none", "mirror", "served")  # what each model is evaluated under


def latency_ms(model_path: Path, runs: int = 100) -> float:
    """Median time of one batch-1 call, through tf.function as the demo calls it."""
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(model_path)
    shape = tuple(model.input_shape[1:])
    fn = tf.function(lambda x: model(x, training=False),  # augmentation layers off
                     input_signature=[tf.TensorSpec((None, *shape), tf.float32)])
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, *shape)).astype("float32"))
    for _ in range(10):
        fn(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(x).numpy()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def score_columns(result: dict) -> dict:
    """The table's score columns of one evaluate() result run with VIEW_COLUMNS."""
    cols = {k: result[k] for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro")}
    cols["disgust_recall"] = result["per_class"].get("disgust", {}).get("recall", float("nan"))
    served = result["by_views"]["served"]
    cols.update(mirror_accuracy=result["by_views"]["mirror"]["accuracy"], served_views=served["views"],
                served_accuracy=served["accuracy"], served_f1_macro=served["f1_macro"],
                served_ece=served["calibration"]["ece_after"], corrupted_mean=result["corruptions"]["mean"])
    return cols


def ensemble_row(kept: dict, rows: list[dict], metrics: dict, folder: Path) -> tuple[dict, dict]:
    """The demo's "ensemble" entry: the mean of its members' calibrated probabilities.

    Each column averages the members' probabilities under that column's views; the served
    column then applies the ensemble's temperature from FOLDER/ensemble.json when that file
    was fitted for these members (the demo does the same).
    """
    first = next(iter(kept.values()))
    if any(k["class_names"] != first["class_names"] or not np.array_equal(k["y"], first["y"])
           for k in kept.values()):
        raise SystemExit("shipped models disagree on class names or test images; no ensemble row")
    stored = json.loads((folder / ENSEMBLE_FILE).read_text()) if (folder / ENSEMBLE_FILE).exists() else {}
    listed = stored.get("members") or []
    # The members trainer.calibrate chose on val, as the demo serves them; without them, every model.
    names = sorted(listed) if len(listed) >= 2 and set(listed) <= set(kept) else sorted(kept)
    y, class_names = first["y"], first["class_names"]
    mean = {v: np.mean([kept[n]["probs"][v] for n in names], axis=0) for v in VIEW_COLUMNS}
    temperature = stored.get("temperature", 1.0) if stored.get("members") == names else 1.0
    result = scores(y, mean["none"].argmax(1), class_names)
    result["model"] = f"ensemble of {', '.join(names)}"
    result["by_views"] = {v: {"views": v, **{k: val for k, val in scores(y, mean[v].argmax(1), class_names).items()
                                             if k not in ("per_class", "confusion_matrix")}}
                          for v in VIEW_COLUMNS}
    result["by_views"]["served"]["calibration"] = calibration_report(mean["served"], y, temperature)
    by_kind: dict[str, list[float]] = {}
    for key in first["corrupted"]:  # "kind/severity", in the benchmark's order
        probs = np.mean([kept[n]["corrupted"][key] for n in names], axis=0)
        by_kind.setdefault(key.split("/")[0], []).append(float((probs.argmax(1) == y).mean()))
    result["corruptions"] = corruption_summary(result["accuracy"], by_kind)
    result["by_views"]["served"]["views"] = "members' own"
    parts = [r for r in rows if r["model"] in names]
    row = {
        "model": f"ensemble ({' + '.join(names)})",
        **score_columns(result),
        "size_mb": sum(r["size_mb"] for r in parts),
        "parameters": sum(r["parameters"] for r in parts),
        "ms_per_face": sum(r["ms_per_face"] for r in parts),
    }
    row["served_views"] = "members'"
    entry = {"evaluation": result, "members": names, "shipped": False, "temperature": temperature,
             "size_bytes": sum(metrics[n]["size_bytes"] for n in names),
             "ms_per_face_batch1": row["ms_per_face"]}
    return row, entry


def markdown_table(rows: list[dict]) -> str:
    head = ("| model | accuracy | macro P | macro R | macro F1 | disgust recall | mirror accuracy |"
            " served views | served accuracy | served macro F1 | served ECE | corrupted mean | size (MB) | parameters |"
            " ms / face |")
    lines = [head, "|---|" + "---:|" * 6 + "---|" + "---:|" * 7]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['accuracy']:.4f} | {r['precision_macro']:.4f} | {r['recall_macro']:.4f} | "
            f"{r['f1_macro']:.4f} | {r['disgust_recall']:.3f} | {r['mirror_accuracy']:.4f} | {r['served_views']} | "
            f"{r['served_accuracy']:.4f} | {r['served_f1_macro']:.4f} | {r['served_ece']:.4f} | {r['corrupted_mean']:.4f} | "
            f"{r['size_mb']:.1f} | {r['parameters']:,} | {r['ms_per_face']:.1f} |")
    return "\n".join(lines)


def per_class_tables(metrics: dict) -> str:
    """Per-class precision/recall/F1/support of every model, for the model card."""
    parts = []
    for name, m in metrics.items():
        ev = m["evaluation"]
        lines = [f"**{name}** (accuracy {ev['accuracy']:.4f}, macro F1 {ev['f1_macro']:.4f}, n = {ev['n']})", "",
                 "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for cls, c in ev["per_class"].items():
            lines.append(f"| {cls} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def corruption_tables(metrics: dict) -> str:
    """Accuracy per corruption kind and severity of every model, for the model card."""
    return "\n\n".join(f"**{name}**\n\n{corruption_table(m['evaluation']['corruptions'])}"
                       for name, m in metrics.items())


def replace_between_markers(path: Path, content: str, start: str = START, end: str = END):
    text = path.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{path} has no {start} ... {end} markers")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    path.write_text(pattern.sub(lambda _: f"{start}\n{content}\n{end}", text))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.compare", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path, help="test split folder (class folders)")
    p.add_argument("--models", nargs="*", type=Path, help="model files (default: weights/*.keras)")
    p.add_argument("--out", type=Path, default=Path("weights"), help="where metrics.json and comparison.* go")
    p.add_argument("--assets", type=Path, default=Path("assets"), help="where the PNGs go")
    p.add_argument("--readme", type=Path, help="Markdown file whose comparison table to replace")
    p.add_argument("--card", type=Path, help="model card whose per-class tables to replace")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    models = args.models or sorted(Path("weights").glob("*.keras"))
    if not models:
        raise SystemExit("no .keras models found")

    rows, metrics, kept = [], {}, {}
    for path in models:
        keep = {}
        result = evaluate(path, args.data, args.assets / path.stem, VIEW_COLUMNS, keep, corruptions=True)
        meta = model_meta(path)
        shipped = path.resolve().parent == args.out.resolve()
        row = {
            "model": result["model"] if shipped else f"{result['model']} (not shipped)",
            **score_columns(result),
            "size_mb": path.stat().st_size / 1e6,
            "parameters": meta.get("parameters", 0),
            "ms_per_face": latency_ms(path),
        }
        rows.append(row)
        if shipped:
            kept[result["model"]] = keep
        metrics[result["model"]] = {
            "evaluation": result,
            "training": {k: meta.get(k) for k in ("epochs_trained", "best_epoch", "best_val_accuracy",
                                                  "train_seconds", "train_images", "machine", "commit",
                                                  "command", "settings", "input_shape", "color_mode")},
            "shipped": shipped,
            "size_bytes": path.stat().st_size,
            "ms_per_face_batch1": row["ms_per_face"],
        }
        print(f"{row['model']}: accuracy {row['accuracy']:.4f} f1_macro {row['f1_macro']:.4f}, served "
              f"({row['served_views']}) {row['served_accuracy']:.4f}, {row['ms_per_face']:.1f} ms/face")
    if len(kept) >= 2:
        row, metrics["ensemble"] = ensemble_row(kept, rows, metrics, args.out)
        rows.append(row)
    machine = f"{platform.machine()}, {__import__('os').cpu_count()} cores"
    table = markdown_table(rows)
    n = next(iter(metrics.values()))["evaluation"]["n"]
    note = (f"Test split: `{args.data}` (n = {n}). Corrupted mean: plain accuracy averaged over the "
            f"{len(KINDS)} corruption kinds x 5 severities of trainer.corruptions (`python -m trainer.evaluate "
            f"--corruptions`). "
            f"Latency: batch 1, median of 100 calls, {machine}. Produced by `python -m trainer.compare` "
            f"at commit {git_commit()}.")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=2))
    (args.out / "comparison.md").write_text(table + "\n\n" + note + "\n")
    if args.readme:
        replace_between_markers(args.readme, table + "\n\n" + note)
    if args.card:
        replace_between_markers(args.card, per_class_tables(metrics), CARD_START, CARD_END)
        if CORRUPTIONS_START in args.card.read_text():
            replace_between_markers(args.card, corruption_tables(metrics), CORRUPTIONS_START, CORRUPTIONS_END)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
