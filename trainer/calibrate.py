"""Choose each model's test-time views and fit its temperatures on val; the same for the ensemble.

    python -m trainer.calibrate --weights weights --data ../shared/datasets/fer2013/val [--assets assets]

For every NAME.keras (with NAME.json) in the folder: val probabilities under each view set of
trainer.views, one temperature per view set (trainer.calibration, minimum NLL), and as the one
served the view set with the best val accuracy among those whose ECE after their temperature is
at most 0.03 (--max-ece). All of it goes into NAME.json's "serving" entry, which
trainer.evaluate and the demo read. With two or more models, the demo's ensemble (the mean of
the members' calibrated, served probabilities) gets its own temperature in
FOLDER/ensemble.json, valid for that list of members: every model, less any whose leaving raises
the ensemble's val accuracy (choose_members). A reliability diagram of each
served model and of the ensemble, before and after, goes to ASSETS/reliability.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from trainer.calibration import (
    ENSEMBLE_FILE,
    apply_temperature,
    calibration_report,
    fit_temperature,
    plot_reliability,
)
from trainer.data import DataError
from trainer.evaluate import load_eval_split, model_meta, predict
from trainer.views import VIEW_SETS

log = logging.getLogger("trainer.calibrate")
MAX_ECE = 0.03  # expected calibration error (15 bins) a served view set may keep after its temperature


def choose_views(report: dict, max_ece: float = MAX_ECE) -> str:
    """The view set served: the best val accuracy among those whose calibrated val ECE is at most
    max_ece (the percentages shown must mean what they say), or among all if none is.

    A model trained on one-hot labels with label smoothing (the GPU's width-64 cnn) can stay
    miscalibrated under one temperature on its crops views (val ECE 0.034) and not on its
    mirror views (0.024). Ties go to the first of VIEW_SETS, the fewest views.
    """
    calibrated = [v for v in VIEW_SETS if report[v]["ece_after"] <= max_ece]
    return max(calibrated or VIEW_SETS, key=lambda v: report[v]["accuracy"])


def calibrate_model(path: Path, data: Path, max_ece: float = MAX_ECE) -> tuple[dict, np.ndarray, np.ndarray]:
    """NAME.json's new "serving" entry, and the served views' raw val probabilities with their labels."""
    import keras

    model = keras.saving.load_model(path)
    meta = model_meta(path)
    split = load_eval_split(data, model, meta.get("class_names"))
    report, temperatures, raws = {}, {}, {}
    for view_set in VIEW_SETS:
        raws[view_set] = raw = predict(model, split.x, view_set)
        temperatures[view_set] = fit_temperature(raw, split.y)
        report[view_set] = {"accuracy": float((raw.argmax(1) == split.y).mean()),
                            **calibration_report(raw, split.y, temperatures[view_set])}
        log.info("%s %s views: val %.4f, T %.3f, ECE %.4f -> %.4f", path.stem, view_set, report[view_set]["accuracy"],
                 temperatures[view_set], report[view_set]["ece_before"], report[view_set]["ece_after"])
    served = choose_views(report, max_ece)
    entry = {"views": served, "live_views": "none", "temperature": temperatures, "chosen_on": str(data),
             "max_ece": max_ece, "val": report}
    return entry, raws[served], split.y


def choose_members(served: dict[str, np.ndarray], labels: np.ndarray) -> tuple[list[str], dict]:
    """The ensemble's members, chosen on val: every model, less those whose leaving raises the
    ensemble's val accuracy (the one whose leaving raises it most first, while two or more remain).
    Returns the members and, for each model left out, the val accuracy with and without it."""
    def accuracy(names):
        return float((np.mean([served[n] for n in names], axis=0).argmax(1) == labels).mean())

    members, left_out = sorted(served), {}
    while len(members) > 2:
        current = accuracy(members)
        best, gain = None, 0.0
        for name in members:
            without = accuracy([m for m in members if m != name])
            if without - current > gain:
                best, gain = name, without - current
        if best is None:
            break
        left_out[best] = {"val_accuracy_with": current, "val_accuracy_without": current + gain}
        members.remove(best)
    return members, left_out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.calibrate", description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=Path("weights"), help="folder of NAME.keras + NAME.json")
    p.add_argument("--data", required=True, type=Path, help="the val split (class folders)")
    p.add_argument("--assets", type=Path, default=Path("assets"), help="where reliability.png goes")
    p.add_argument("--max-ece", type=float, default=MAX_ECE,
                   help="serve the most accurate view set whose calibrated val ECE is at most this (default 0.03)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    models = sorted(m for m in args.weights.glob("*.keras") if m.with_suffix(".json").is_file())
    if not models:
        log.error("no NAME.keras with NAME.json in %s", args.weights)
        return 2
    served, curves = {}, {}
    for path in models:
        try:
            entry, raw, labels = calibrate_model(path, args.data, args.max_ece)
        except DataError as err:
            log.error("%s", err)
            return 2
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text())
        meta["serving"] = entry
        meta_path.write_text(json.dumps(meta, indent=2))
        t = entry["temperature"][entry["views"]]
        served[path.stem] = apply_temperature(raw, t)
        curves[f"{path.stem} ({entry['views']} views)"] = (raw, labels, t)
        print(f"{path.stem}: serves {entry['views']} views, val {entry['val'][entry['views']]['accuracy']:.4f}, "
              f"T {t:.3f}, ECE {entry['val'][entry['views']]['ece_before']:.4f} -> "
              f"{entry['val'][entry['views']]['ece_after']:.4f}")
    ensemble_path = args.weights / ENSEMBLE_FILE
    if len(served) >= 2:
        members, left_out = choose_members(served, labels)
        mean = np.mean([served[m] for m in members], axis=0)
        t = fit_temperature(mean, labels)
        record = {"members": members, "left_out": left_out, "views": "served", "temperature": t,
                  "chosen_on": str(args.data),
                  "val": {"accuracy": float((mean.argmax(1) == labels).mean()), **calibration_report(mean, labels, t)}}
        ensemble_path.write_text(json.dumps(record, indent=2))
        curves["ensemble"] = (mean, labels, t)
        print(f"ensemble of {', '.join(members)} (left out: {left_out or 'none'}): val {record['val']['accuracy']:.4f}, T {t:.3f}, "
              f"ECE {record['val']['ece_before']:.4f} -> {record['val']['ece_after']:.4f}")
    elif ensemble_path.exists():
        ensemble_path.unlink()  # one model: no ensemble to calibrate
    args.assets.mkdir(parents=True, exist_ok=True)
    plot_reliability(curves, args.assets / "reliability.png")
    print(f"wrote {args.assets / 'reliability.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
