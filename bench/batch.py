"""Archives on one machine: images a second through `python -m demo.predict`, one model call per file or batched.

    python bench/batch.py [--images 475] [--models cnn cnn_small] [--batches 1 64] [--out bench/results]

Runs the CLI as a user does (a fresh process: its start, TensorFlow's import and the model's
load included) on the first --images files of FER2013 test, --whole-image --json, with each
--batch value, and reports wall seconds, images a second over the whole run and over the part
after the first output line (the steady rate). Writes batch.json and batch.md. A benchmark,
not a test: pause other work meanwhile.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.readme import write_results  # noqa: E402
from demo.predict import IMAGE_SUFFIXES  # noqa: E402

FER_TEST = ROOT.parent / "shared" / "datasets" / "fer2013" / "test"


def sample(n: int, work: Path) -> Path:
    """n FER2013 test images, every class in turn, linked into one folder (the CLI sorts files by name)."""
    folder = work / "faces"
    folder.mkdir()
    classes = sorted(p for p in FER_TEST.iterdir() if p.is_dir())
    lists = [sorted(f for f in c.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for c in classes]
    picked = 0
    for i in range(max(map(len, lists))):
        for c, files in zip(classes, lists):
            if i < len(files) and picked < n:
                (folder / f"{picked:05d}_{c.name}{files[i].suffix}").symlink_to(files[i])
                picked += 1
    return folder


def run(folder: Path, model: str, batch: int) -> dict:
    cmd = [sys.executable, "-m", "demo.predict", str(folder), "--whole-image", "--json", "--model", model,
           "--batch", str(batch)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    first, lines = None, 0
    for _ in proc.stdout:
        lines += 1
        first = first or time.perf_counter()
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    end = time.perf_counter()
    steady = (lines - 1) / (end - first) if lines > 1 and end > first else float("nan")
    return {"images": lines, "seconds": round(end - start, 2), "start_seconds": round(first - start, 2),
            "images_per_second": round(lines / (end - start), 1), "steady_images_per_second": round(steady, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=475)
    p.add_argument("--models", nargs="*", default=["cnn", "cnn_small"])
    p.add_argument("--batches", nargs="*", type=int, default=[1, 64])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "images": args.images, "runs": []}
    with tempfile.TemporaryDirectory(prefix="ekspresi-batch-") as tmp:
        folder = sample(args.images, Path(tmp))
        for model in args.models:
            for batch in args.batches:
                row = {"model": model, "batch": batch, **run(folder, model, batch)}
                result["runs"].append(row)
                print(row, flush=True)
    lines = ["| model | --batch | images | wall s | until the first line, s | images / s | after the first line, images / s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['batch']} | {r['images']} | {r['seconds']} | {r['start_seconds']} | "
              f"{r['images_per_second']} | {r['steady_images_per_second']} |" for r in result["runs"]]
    lines += ["", f"`python -m demo.predict FOLDER --whole-image --json --model M --batch N` on {args.images} "
                  f"FER2013 test crops (each model under its served views), a fresh process each run; "
                  f"{result['machine']}. Written by `python bench/batch.py`."]
    write_results(args.out, "batch", result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
