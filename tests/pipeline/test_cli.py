"""python -m demo.predict on files and folders, and the benchmark script on a tiny model."""

import json
import os
import re
import subprocess
import sys

from conftest import EXAMPLES, ROOT


def run(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, **kw)


def test_predict_cli_json_for_a_folder_and_a_bad_file(tiny_models, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut.jpg", "four_faces.jpg", "chelsea_cat_no_face.jpg"):
        (folder / name).write_bytes((EXAMPLES / name).read_bytes())
    (folder / "broken.png").write_bytes(b"nope")
    r = run(["-m", "demo.predict", str(folder), "--weights", str(tiny_models), "--model", "cnn", "--json"])
    assert r.returncode == 1  # one file failed
    records = {os.path.basename(rec["file"]): rec for rec in map(json.loads, r.stdout.splitlines())}
    assert len(records["astronaut.jpg"]["faces"]) == 1
    assert len(records["four_faces.jpg"]["faces"]) == 4
    assert records["chelsea_cat_no_face.jpg"]["faces"] == []
    assert "not an image" in records["broken.png"]["error"]
    face = records["astronaut.jpg"]["faces"][0]
    assert set(face) == {"box", "label", "confidence", "top3"}


def test_predict_cli_text_and_missing_model(tiny_models):
    r = run(["-m", "demo.predict", str(EXAMPLES / "astronaut.jpg"), "--weights", str(tiny_models)])
    assert r.returncode == 0 and "astronaut.jpg: box [" in r.stdout and "top 3:" in r.stdout
    r = run(["-m", "demo.predict", str(EXAMPLES / "astronaut.jpg"), "--weights", str(tiny_models),
             "--model", "resnet50"])
    assert r.returncode == 2 and "not available" in r.stderr and "choose one of: cnn, seed_cnn, ensemble" in r.stderr


def test_predict_cli_refuses_an_empty_folder_and_a_missing_path_before_loading_tensorflow(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    r = run(["-m", "demo.predict", str(tmp_path / "empty")])
    assert r.returncode == 2 and "no image or video files" in r.stderr and r.stdout == ""
    r = run(["-X", "importtime", "-m", "demo.predict", str(tmp_path / "missing.jpg"), str(EXAMPLES)])
    assert r.returncode == 2 and "no such file or folder" in r.stderr and "missing.jpg" in r.stderr
    assert "tensorflow" not in r.stderr  # -X importtime lists every module imported: TensorFlow is not


def test_latency_benchmark_writes_json_and_markdown(tiny_models, tmp_path):
    env_run = subprocess.run([sys.executable, "bench/latency.py", "--frames", "3", "--out", str(tmp_path),
                              "--models", "cnn"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "EKSPRESI_WEIGHTS": str(tiny_models)})
    assert env_run.returncode == 0, env_run.stderr[-2000:]
    data = json.loads((tmp_path / "latency.json").read_text())
    assert data["models"]["cnn"]["4 faces"]["faces_found"] == 4
    assert "| cnn | 1 face (1 found) |" in (tmp_path / "latency.md").read_text()


def test_served_benchmark_scores_what_the_cli_labels(tiny_models, sample_root, tmp_path):
    """bench/served.py on the sample's test split: the CLI's labels, scored against the class folders."""
    r = subprocess.run([sys.executable, "bench/served.py", str(sample_root / "test"), "--models", "cnn", "seed_cnn",
                        "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "EKSPRESI_WEIGHTS": str(tiny_models)})
    assert r.returncode == 0, r.stderr[-2000:]
    results = {row["model"]: row for row in json.loads((tmp_path / "served.json").read_text())}
    for row in results.values():
        assert row["files"] == row["labelled"] == 21  # --whole-image: every file is one face
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["ece"] <= 1
    assert "| seed_cnn | 21 |" in (tmp_path / "served.md").read_text()


def test_batched_images_get_what_each_gets_alone(tiny_models, sample_root, tmp_path):
    """Faces of many files share a model call (--batch); the records equal one call per file, in order."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("astronaut.jpg", "four_faces.jpg", "chelsea_cat_no_face.jpg"):
        (folder / name).write_bytes((EXAMPLES / name).read_bytes())
    (folder / "broken.png").write_bytes(b"nope")
    outputs = {}
    for batch in ("1", "3", "64"):
        r = run(["-m", "demo.predict", str(folder), str(sample_root / "test"), "--weights", str(tiny_models),
                 "--model", "ensemble", "--json", "--batch", batch])
        assert r.returncode == 1, r.stderr[-2000:]  # broken.png
        outputs[batch] = [json.loads(line) for line in r.stdout.splitlines()]
    alone = outputs["1"]
    assert len(alone) == 4 + 21 and [rec["file"] for rec in alone] == [rec["file"] for rec in outputs["64"]]
    for batched in (outputs["3"], outputs["64"]):
        for a, b in zip(alone, batched):
            assert a.get("error") == b.get("error") and len(a.get("faces", [])) == len(b.get("faces", []))
            for fa, fb in zip(a.get("faces", []), b.get("faces", [])):
                assert fa["box"] == fb["box"] and fa["label"] == fb["label"]
                assert abs(fa["confidence"] - fb["confidence"]) <= 2e-4
    assert re.search(r"files: 100%.*25/25", r.stderr)
