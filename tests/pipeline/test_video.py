"""Video files: a generated clip through the CLI and the library, and every kind of bad clip."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest
from clips import frames_and_seconds, write_clip, write_size_switch
from conftest import ROOT

from demo.pipeline.classify import ModelStore
from demo.pipeline.faces import FaceDetector
from demo.pipeline.video import VideoError, analyse_video, probe


def run(args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "demo.predict", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cli_annotates_a_ten_second_clip_with_one_row_per_face_per_frame(tiny_models, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", seconds=10)
    out, table = tmp_path / "out" / "annotated.mp4", tmp_path / "faces.csv"
    r = run([str(clip), "--out", str(out), "--csv", str(table), "--weights", str(tiny_models), "--model", "cnn",
             "--json"])
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    assert summary["frames"] == 300 and summary["face_ids"] == [1]  # one face, one id all along
    assert "300/300" in r.stderr.split("clip.mp4")[-1]  # tqdm's bar for the clip's frames
    frames, seconds, kinds = frames_and_seconds(out)
    assert frames == 300 and abs(seconds - 10.0) < 0.05 and kinds == ["video", "audio"]
    rows = list(csv.DictReader(open(table)))
    assert len(rows) == 300 and {row["face_id"] for row in rows} == {"1"}
    assert [int(r["frame"]) for r in rows] == list(range(300))
    assert abs(float(rows[-1]["time"]) - 299 / 30) < 1e-3
    assert abs(sum(float(rows[0][c]) for c in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"))
               - 1) < 1e-3


def test_cli_takes_a_folder_of_clips_and_reports_a_bad_one(tiny_models, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_clip(folder / "a.mp4", seconds=1, audio=False)
    write_clip(folder / "b.mkv", seconds=1, face=False, live=True)  # no length in its header
    (folder / "c.mp4").write_text("not a video at all")
    r = run([str(folder), "--out", str(tmp_path / "out"), "--csv", str(tmp_path / "tables"),
             "--weights", str(tiny_models)])
    assert r.returncode == 1  # c.mp4 failed
    assert "a.mp4: 30 frames, 1 face tracked" in r.stdout and "b.mkv: 30 frames, 0 faces tracked" in r.stdout
    assert "c.mp4: error: not a video file" in r.stdout
    assert re.search(r"a\.mp4: 100%.*30/30", r.stderr)  # tqdm: a bar of the clip's frames
    b_part = r.stderr.split("b.mkv", 1)[1].split("c.mp4")[0]
    assert "b.mkv: 30frame" in r.stderr and "/30" not in b_part  # no length in the header: a count, no bar
    assert re.search(r"files: 100%.*3/3", r.stderr)  # and one bar for the files
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.annotated.mp4", "b.annotated.mp4"]
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["a.csv", "b.csv"]


def _audio_only(path):
    return write_clip(path, video=False)


def _huge_frames(path):
    return write_clip(path, seconds=1 / 30, size=(8200, 8200), audio=False, face=False)


def _too_fast(path):
    return write_clip(path, seconds=0.5, fps=1000, size=(64, 48), audio=False, face=False)


def _too_long(path):
    return write_clip(path, seconds=610, fps=1, size=(64, 48), audio=False, face=False)


def _too_long_without_a_length(path):
    """Eleven minutes of frames in a file whose header gives no length: found while decoding."""
    return write_clip(path, seconds=610, fps=1, size=(64, 48), audio=False, face=False, live=True)


def _sound_too_long(path):
    """A second of pictures and eleven minutes of sound: the sound is re-encoded too, so it counts."""
    return write_clip(path, seconds=1, size=(64, 48), face=False, audio_seconds=660, audio_rate=8000, silent=True)


def _sound_too_long_without_a_length(path):
    return write_clip(path, seconds=1, size=(64, 48), face=False, audio_seconds=660, audio_rate=8000, silent=True,
                      live=True)


def _too_large(path):
    with open(path, "wb") as f:
        f.truncate(201 * 2**20)  # sparse: takes no disk
    return path


def _truncated(path):
    full = write_clip(path.with_name("full.mp4"), seconds=2)
    path.write_bytes(full.read_bytes()[:5000])
    return path


def _zero_frames(path):
    """A video stream that holds no frame, beside a second of sound."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        tone = container.add_stream("aac", rate=44100)
        for _ in range(0, 44100, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
            frame.sample_rate = 44100
            for packet in tone.encode(frame):
                container.mux(packet)
        for packet in tone.encode(None):
            container.mux(packet)
    return path


BAD = {
    "zero_frames.mp4": (_zero_frames, "no pictures|no frames"),
    "zero.mp4": (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    "text.mp4": (lambda p: (p.write_text("hello, I am a text file"), p)[1], "not a video file"),
    "truncated.mp4": (_truncated, "truncated or corrupt|no frames"),
    "audio_only.mp4": (_audio_only, "no pictures .audio only"),
    "huge_frames.mp4": (_huge_frames, "too large"),
    "too_fast.mp4": (_too_fast, "frame rate of 1000"),
    # the header says 64 x 48; FFmpeg refuses the large frames before allocating them
    "huge_frames_partway.mkv": (write_size_switch, "frames of 8200 x 8200 pixels are too large"),
    "too_long.mp4": (_too_long, "10.2 minutes long; the limit is 10 minutes"),
    "too_long_without_a_length.mkv": (_too_long_without_a_length, "runs past 10 minutes; the limit is 10 minutes"),
    "sound_too_long.mp4": (_sound_too_long, "11.0 minutes long; the limit is 10 minutes"),
    "sound_too_long_without_a_length.mkv": (_sound_too_long_without_a_length, "runs past 10 minutes"),
    "too_large.mp4": (_too_large, "201 MB; the limit is 200 MB"),
}


@pytest.fixture(scope="module")
def cnn(tiny_models):
    return ModelStore(tiny_models).get("cnn")


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_clips_get_clear_messages_and_leave_nothing_behind(cnn, tmp_path, name):
    make, message = BAD[name]
    clip = make(tmp_path / name)
    out = tmp_path / "out.mp4"
    with FaceDetector() as detector, pytest.raises(VideoError, match=message):
        analyse_video(clip, out, cnn, detector)
    assert not out.exists()


def test_a_clip_without_a_length_in_its_header_is_analysed_whole(cnn, tmp_path):
    """As browsers record: the header has no length, so the limits are kept while decoding."""
    clip = write_clip(tmp_path / "recording.mkv", seconds=1, size=(320, 240), live=True)
    assert probe(clip).seconds == 0.0
    with FaceDetector() as detector:
        info, rows, frames = analyse_video(clip, tmp_path / "out.mp4", cnn, detector)
    assert frames == 30 and len(rows) == 30
    assert frames_and_seconds(tmp_path / "out.mp4")[2] == ["video", "audio"]


def test_frames_are_counted_while_decoding(cnn, tmp_path, monkeypatch):
    """However a clip's timestamps are spaced, no more than MAX_FRAMES frames are decoded (here 40 of 60)."""
    import demo.pipeline.video

    monkeypatch.setattr(demo.pipeline.video, "MAX_FRAMES", 40)
    clip = write_clip(tmp_path / "clip.mkv", seconds=2, size=(64, 48), audio=False, face=False, live=True)
    seen = []
    with FaceDetector() as detector, pytest.raises(VideoError, match="more than 40 frames"):
        analyse_video(clip, tmp_path / "out.mp4", cnn, detector, progress=lambda done, total: seen.append(done))
    assert seen[-1] == 40 and not (tmp_path / "out.mp4").exists()


def test_variable_frame_rate_keeps_every_frame_and_its_time(cnn, tmp_path):
    clip = write_clip(tmp_path / "vfr.mp4", seconds=2, pts_step=[1, 1, 3, 2], audio=False)
    with FaceDetector() as detector:
        info, rows, frames = analyse_video(clip, tmp_path / "out.mp4", cnn, detector)
    source_frames, source_seconds, _ = frames_and_seconds(clip)
    out_frames, out_seconds, _ = frames_and_seconds(tmp_path / "out.mp4")
    assert frames == out_frames == source_frames == 60
    assert abs(out_seconds - source_seconds) < 0.1
    steps = sorted({round(b.time - a.time, 3) for a, b in zip(rows, rows[1:])})
    assert steps == [round(1 / 30, 3), round(2 / 30, 3), round(3 / 30, 3)]  # the gaps survive


def test_probe_reads_the_header(tmp_path):
    info = probe(write_clip(tmp_path / "c.mp4", seconds=1, size=(1920, 1080), face=False))
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == (1920, 1080, 30.0, 30, True)
    assert info.output_size == (1280, 720)  # analysed and written at a bounded size


def test_video_benchmark_reports_frames_per_second(tiny_models, tmp_path):
    env = {**os.environ, "EKSPRESI_WEIGHTS": str(tiny_models)}
    r = subprocess.run([sys.executable, "bench/video.py", "--seconds", "1", "--runs", "1", "--models", "cnn",
                        "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads((tmp_path / "video.json").read_text())["models"]["cnn"]
    assert row["frames"] == 30 and row["face_rows"] == 30 and row["fps_median"] > 0
