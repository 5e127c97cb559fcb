"""Archives: images and video frames a second through `python -m demo.predict`, batched or not, in one process or on Ray.

    python bench/batch.py [--images 100 475] [--models cnn cnn_small] [--batches 1 64] [--ray-nodes 1 2]
        [--out bench/results] [--readme README.md]

Runs the CLI as a user does (a fresh process: its start, TensorFlow's import and the model's
load included) on the first N files of FER2013 test (--whole-image --json) and on two 10 s,
640 x 480 clips with one face: first in one process with each --batch value, then with
--engine ray on a local cluster (tests/ray_cluster.py: a head and 1 or 2 one-CPU worker nodes,
separate processes; their start is not timed). Reports wall seconds and images (or frames) a
second; for images also the time until the first result line. Writes batch.json and batch.md.
A benchmark, not a test: pause other work meanwhile.
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
sys.path.insert(0, str(ROOT / "tests"))  # the clip maker and the local Ray cluster the tests use

from clips import write_clip  # noqa: E402
from ray_cluster import local_cluster  # noqa: E402

from bench.readme import write_results  # noqa: E402
from demo.predict import IMAGE_SUFFIXES  # noqa: E402

FER_TEST = ROOT.parent / "shared" / "datasets" / "fer2013" / "test"


def sample(n: int, work: Path) -> Path:
    """n FER2013 test images, every class in turn, linked into one folder (the CLI sorts files by name)."""
    folder = work / "faces"
    folder.mkdir(parents=True)
    classes = sorted(p for p in FER_TEST.iterdir() if p.is_dir())
    lists = [sorted(f for f in c.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for c in classes]
    picked = 0
    for i in range(max(map(len, lists))):
        for c, files in zip(classes, lists):
            if i < len(files) and picked < n:
                (folder / f"{picked:05d}_{c.name}{files[i].suffix}").symlink_to(files[i])
                picked += 1
    return folder


def run(folder: Path, model: str, batch: int, extra=(), env=None) -> dict:
    cmd = [sys.executable, "-m", "demo.predict", str(folder), "--whole-image", "--json", "--model", model,
           "--batch", str(batch), *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**(env or os.environ), "TF_CPP_MIN_LOG_LEVEL": "3"})
    first, lines = None, 0
    for _ in proc.stdout:
        lines += 1
        first = first or time.perf_counter()
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    end = time.perf_counter()
    steady = (lines - 1) / (end - first) if lines > 1 and end > first else float("nan")
    return {"files": lines, "seconds": round(end - start, 2), "first_line_seconds": round(first - start, 2),
            "per_second": round(lines / (end - start), 1), "steady_per_second": round(steady, 1)}


def clips(work: Path, n: int = 2, seconds: float = 10) -> Path:
    folder = work / "clips"
    folder.mkdir()
    for i in range(n):
        write_clip(folder / f"clip{i}.mp4", seconds=seconds)
    return folder


def projection(runs: list[dict]) -> list[str]:
    """What 10 machines of this kind would do with 1,000 hours of 30 fps video, from the measured Ray rows."""
    clips = [r for r in runs if r["input"].startswith("2 clips") and r["engine"].startswith("ray")]
    if not clips:
        return []
    best = max(clips, key=lambda r: int(r["engine"].split()[1]))
    nodes = int(best["engine"].split()[1])
    per_worker = best["per_second"] / nodes  # each worker node has one CPU of this 2-core machine
    cluster = per_worker * 2 * 10  # 10 machines of 2 cores: 20 one-CPU workers
    frames = 1000 * 3600 * 30
    days = frames / cluster / 86400
    return ["", f"**1,000 hours of video on 10 machines like this one.** With {best['model']}, {nodes} one-CPU "
                f"worker node{'s' if nodes > 1 else ''} analysed {best['per_second']} frames a second end to end "
                f"(decode, detect, classify, track, draw, encode), {per_worker:.1f} per worker. Ten 2-core machines "
                f"run 20 such workers: about {cluster:.0f} frames a second, so the {frames / 1e6:.0f} million frames "
                f"of 1,000 hours at 30 fps take about {days:.1f} days, against {days * 10:.0f} on one machine; long "
                "clips are cut into 900-frame ranges, so even a single long recording spreads over every worker. "
                "A projection from the measured rate: the network and a shared file system are not in it."]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, nargs="*", default=[100, 475])
    p.add_argument("--models", nargs="*", default=["cnn", "cnn_small"])
    p.add_argument("--batches", nargs="*", type=int, default=[1, 64])
    p.add_argument("--ray-nodes", nargs="*", type=int, default=[1, 2])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "runs": []}

    def record(row):
        result["runs"].append(row)
        print(row, flush=True)

    with tempfile.TemporaryDirectory(prefix="ekspresi-batch-") as tmp:
        work = Path(tmp)
        folders = {n: sample(n, work / f"n{n}") for n in args.images}
        videos = clips(work)
        for model in args.models:
            for n, folder in folders.items():
                for batch in args.batches:
                    record({"model": model, "engine": "local", "input": f"{n} images", "batch": batch,
                            **run(folder, model, batch)})
            r = run(videos, model, 64, ["--out", str(work / "out_local")])
            record({"model": model, "engine": "local", "input": "2 clips, 600 frames", "batch": 64, **r,
                    "per_second": round(600 / r["seconds"], 1)})
        for nodes in args.ray_nodes:
            with local_cluster(nodes) as (address, env, _):
                for model in args.models:
                    ray = ["--engine", "ray", "--address", address]
                    for n, folder in folders.items():
                        out = work / f"ray{nodes}_{model}_{n}"
                        record({"model": model, "engine": f"ray, {nodes} node{'s' if nodes > 1 else ''}",
                                "input": f"{n} images", "batch": 64,
                                **run(folder, model, 64, [*ray, "--out", str(out)], env)})
                    r = run(videos, model, 64, [*ray, "--out", str(work / f"ray{nodes}_{model}_clips")], env)
                    record({"model": model, "engine": f"ray, {nodes} node{'s' if nodes > 1 else ''}",
                            "input": "2 clips, 600 frames", "batch": 64, **r, "per_second": round(600 / r["seconds"], 1)})
    lines = ["| model | engine | input | --batch | wall s | first line after, s | files or frames / s |",
             "|---|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['engine']} | {r['input']} | {r['batch']} | {r['seconds']} | "
              f"{r['first_line_seconds']} | {r['per_second']} |" for r in result["runs"]]
    lines += ["", "`python -m demo.predict FOLDER --whole-image --json --model M --batch N [--engine ray --address A "
                  "--out DIR]`: FER2013 test crops (each model under its served views) or two 10 s, 640 x 480 clips "
                  "with one face (frames a second), a fresh process each run, the wall time including its start "
                  "(TensorFlow, the model; on Ray also the workers'). Ray: a local cluster of one head without CPUs "
                  f"and one-CPU worker nodes, on the same {result['machine']} machine. Written by `python bench/batch.py`."]
    lines += projection(result["runs"])
    write_results(args.out, "batch", result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
