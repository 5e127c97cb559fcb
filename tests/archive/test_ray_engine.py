"""--engine ray on a real local Ray cluster (a head and two one-CPU worker nodes, separate processes).

The same files through the single process and through Ray give the same records, videos and
CSVs, with the clips cut into frame ranges and stitched again; a worker node killed mid-job
loses nothing that the manifest marked done, and a rerun of the same command completes the
job without writing a half file.
"""

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clips import frames_and_seconds, write_clip
from conftest import ROOT
from ray_cluster import cluster_env, kill_node, local_cluster

FER_TEST = ROOT.parent / "shared" / "datasets" / "fer2013" / "test"
MODEL = ["--model", "cnn_small"]  # the cheapest shipped model: the test is about the engine
RANGES = ["--range-frames", "25"]  # both clips cut: 60 frames in 3 ranges, 45 in 2
ENV = cluster_env()  # every process of the cluster and the driver share its token


@pytest.fixture(scope="module")
def cluster():
    if not FER_TEST.is_dir():
        pytest.skip(f"needs FER2013 at {FER_TEST}")
    with local_cluster(2, ENV) as (address, _, nodes):
        yield address, nodes


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    classes = sorted(p for p in FER_TEST.iterdir() if p.is_dir())
    files = [sorted(c.iterdir()) for c in classes]
    for i in range(200):  # every class in turn
        src = files[i % len(files)][i // len(files)]
        shutil.copy(src, folder / f"{i:03d}_{src.parent.name}.jpg")
    write_clip(folder / "clip_a.mp4", seconds=2)
    write_clip(folder / "clip_b.mp4", seconds=1.5, size=(320, 240))
    return folder


def predict(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "demo.predict", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def single(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    r = predict(str(archive), "--json", "--whole-image", "--out", str(out), "--csv", str(out), *MODEL)
    assert r.returncode == 0, r.stderr[-2000:]
    return out, {rec["file"]: rec for rec in map(json.loads, r.stdout.splitlines())}


def same_records(ray_records: dict, single_records: dict):
    assert ray_records.keys() == single_records.keys() and len(ray_records) == 202
    for name, a in single_records.items():
        b = ray_records[name]
        if "frames" in a:
            assert (a["frames"], a["face_ids"], a["rows"]) == (b["frames"], b["face_ids"], b["rows"])
            continue
        assert len(a["faces"]) == len(b["faces"]) == 1  # --whole-image: each crop is one face
        fa, fb = a["faces"][0], b["faces"][0]
        assert fa["label"] == fb["label"] and [t[0] for t in fa["top3"]] == [t[0] for t in fb["top3"]]
        # The JSON keeps 4 decimals: equal computations round alike, a last-digit step at most.
        assert all(abs(x[1] - y[1]) <= 1e-4 + 1e-9 for x, y in zip(fa["top3"], fb["top3"]))


def same_videos(ray_out: Path, single_out: Path):
    for clip, frames in (("clip_a", 60), ("clip_b", 45)):
        assert frames_and_seconds(ray_out / f"{clip}.annotated.mp4")[0] == frames
        rows_a = list(csv.reader(open(single_out / f"{clip}.csv")))
        rows_b = list(csv.reader(open(ray_out / f"{clip}.csv")))
        assert len(rows_a) == len(rows_b) == frames + 1  # a header, one face a frame
        for ra, rb in zip(rows_a, rows_b):
            assert len(ra) == len(rb)
            for x, y in zip(ra, rb):
                try:
                    assert abs(float(x) - float(y)) <= 1e-4 + 1e-9
                except ValueError:
                    assert x == y
    assert not list(ray_out.glob(".*partial*")), "a temporary file was left behind"


def test_ray_gives_what_the_single_process_gives(cluster, archive, single, tmp_path):
    address, _ = cluster
    out = tmp_path / "ray"
    r = predict(str(archive), "--json", "--whole-image", "--out", str(out), "--csv", str(out), *MODEL,
                "--engine", "ray", "--address", address, *RANGES)
    assert r.returncode == 0, r.stderr[-3000:]
    records = {rec["file"]: rec for rec in map(json.loads, r.stdout.splitlines())}
    same_records(records, single[1])
    same_videos(out, single[0])
    assert (out / "results.jsonl").read_text().splitlines() == r.stdout.splitlines()
    assert "files: 100%" in r.stderr  # tqdm's bar over the whole job


def test_a_lost_node_and_a_rerun_finish_the_job_without_doing_done_work_twice(cluster, archive, single, tmp_path):
    address, nodes = cluster
    out = tmp_path / "ray"
    cmd = [sys.executable, "-m", "demo.predict", str(archive), "--json", "--whole-image", "--out", str(out),
           "--csv", str(out), *MODEL, "--engine", "ray", "--address", address, "--batch", "8", *RANGES]
    job = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 300
    while not (manifest.exists() and manifest.read_text().count('"done"') >= 3):
        assert job.poll() is None, job.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no unit finished"
        time.sleep(0.2)
    kill_node(nodes[0])  # one worker node, with the tasks it was running
    try:
        job.communicate(timeout=400)  # Ray retries the lost node's tasks on the other one
    except subprocess.TimeoutExpired:
        job.kill()
        job.communicate()
    done_before = [json.loads(line)["unit"] for line in manifest.read_text().splitlines() if '"done"' in line]
    assert len(done_before) >= 3

    r = predict(*cmd[3:])  # the same command again
    assert r.returncode == 0, r.stderr[-3000:]
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    done = [e["unit"] for e in entries if e["status"] == "done"]
    assert len(done) == len(set(done)), "a unit the manifest marked done was done again"
    # 200 images by 8; each clip's ranges (3 + 2), their renders and a join
    assert set(done_before) <= set(done) and len(set(done)) == 25 + 2 * (3 + 2) + 2
    records = {rec["file"]: rec for rec in map(json.loads, r.stdout.splitlines())}
    same_records(records, single[1])
    same_videos(out, single[0])


def test_ray_refuses_without_an_output_folder_or_a_reachable_cluster(archive, tmp_path):
    r = predict(str(archive / "000_angry.jpg"), "--engine", "ray")
    assert r.returncode == 2 and "--engine ray needs --out FOLDER" in r.stderr
    r = predict(str(archive / "000_angry.jpg"), "--engine", "ray", "--out", str(tmp_path), "--model", "nope")
    assert r.returncode == 2 and "not available" in r.stderr
