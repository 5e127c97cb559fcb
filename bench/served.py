"""What users get: the demo's command line on a labelled split, scored.

    python bench/served.py ../shared/datasets/fer2013/test --models cnn ensemble [--readme README.md]

Runs `python -m demo.predict SPLIT --whole-image --json --model NAME` as a user would (each
face classified under the model's served views and temperature), reads the label from each
file's class folder, and reports accuracy and the expected calibration error of the shown
confidences (15 bins). Writes bench/results/served.{json,md}; with --readme, the section
between <!-- served:start --> and <!-- served:end -->. Rows of models not named in --models
are kept from the last served.json: measure again only what changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.readme import write_results  # noqa: E402
from trainer.calibration import ece_of  # noqa: E402


def score(split: Path, model: str) -> dict:
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "demo.predict", str(split), "--whole-image", "--json",
                          "--model", model], cwd=ROOT, capture_output=True, text=True)
    if run.returncode not in (0, 1):
        raise SystemExit(f"demo.predict --model {model} failed ({run.returncode}): {run.stderr[-2000:]}")
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    faces = [(Path(r["file"]).parent.name, r["faces"][0]) for r in rows if r.get("faces")]
    correct = np.array([face["label"] == truth for truth, face in faces])
    confidence = np.array([face["confidence"] for _, face in faces])
    return {"model": model, "files": len(rows), "labelled": len(faces), "accuracy": float(correct.mean()),
            "ece": ece_of(confidence, correct), "mean_confidence": float(confidence.mean()),
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("split", type=Path, help="a split folder of class folders")
    p.add_argument("--models", nargs="+", default=["cnn"])
    p.add_argument("--readme", type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    fresh = {m: score(args.split, m) for m in args.models}
    previous = args.out / "served.json"
    kept = json.loads(previous.read_text()) if previous.is_file() else []
    results = [fresh.pop(r["model"], r) for r in kept] + list(fresh.values())
    results.sort(key=lambda r: r["model"] == "ensemble")  # the ensemble last, as in the comparison table
    lines = ["| model | files | accuracy | ECE (15 bins) | mean confidence |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['files']} | {r['accuracy']:.4f} | {r['ece']:.4f} | {r['mean_confidence']:.3f} |"
              for r in results]
    lines += ["", f"`python -m demo.predict {args.split} --whole-image --json --model NAME`, scored against "
              "each file's class folder: what a user of the command line gets (served views and temperature). "
              "Written by `python bench/served.py`."]
    table = "\n".join(lines)
    write_results(args.out, "served", results, table, args.readme)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
