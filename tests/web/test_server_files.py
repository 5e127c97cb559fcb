"""demo.guards.server_files: the server's private folder is swept by age and size, and removed at the end."""

import os
import subprocess
import sys
import time

from demo.guards.server_files import ServerFiles, remove_stale


def write(path, size=1000, age_s=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_create_makes_a_private_folder_for_gradio(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    files = ServerFiles.create(tmp_path)
    assert files.root.parent == tmp_path and files.root.name.startswith(f"ekspresi-{os.getpid()}-")
    assert os.environ["GRADIO_TEMP_DIR"] == str(files.root) and files.results.is_dir()
    assert files.root.stat().st_mode & 0o077 == 0  # nobody else on the machine can list it
    files.close()
    assert not files.root.exists()


def test_sweep_deletes_expired_files_and_keeps_examples_and_recent_ones(tmp_path):
    files = ServerFiles(tmp_path, max_age_s=120, max_bytes=10**9)
    example = write(tmp_path / "hash1" / "astronaut.jpg", age_s=3600)
    files.keep_existing()
    old_upload = write(tmp_path / "hash2" / "face.jpg", age_s=121)  # never analysed: removed too
    old_result = write(tmp_path / "results" / "annotated-1.jpg", age_s=500)
    recent = write(tmp_path / "hash3" / "face.png", age_s=30)
    assert files.sweep() == 2
    assert example.exists() and recent.exists() and not old_upload.exists() and not old_result.exists()
    assert (tmp_path / "hash2").is_dir()  # just emptied: Gradio may be about to write into such a folder
    assert files.sweep(now=time.time() + 11) == 0
    assert not (tmp_path / "hash2").exists() and (tmp_path / "results").is_dir() and recent.exists()


def test_sweep_keeps_the_folder_under_its_byte_limit_oldest_first(tmp_path):
    files = ServerFiles(tmp_path, max_age_s=120, max_bytes=5000)
    paths = [write(tmp_path / f"h{i}" / "f.jpg", size=2000, age_s=10 - i) for i in range(5)]
    assert files.usage() == 10_000
    files.sweep()
    assert [p.exists() for p in paths] == [False, False, False, True, True]
    assert files.usage() == 4000


def test_the_sweeper_thread_runs_until_closed(tmp_path):
    files = ServerFiles(tmp_path / "root", max_age_s=0.2, every_s=0.05)
    (tmp_path / "root").mkdir()
    files.start()
    upload = write(tmp_path / "root" / "h" / "face.jpg")
    deadline = time.time() + 10
    while upload.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert not upload.exists()
    files.close()
    assert not (tmp_path / "root").exists()


def test_folders_of_servers_that_died_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = write(tmp_path / f"ekspresi-{int(dead.stdout)}-abc" / "h" / "face.jpg").parent.parent
    alive = write(tmp_path / f"ekspresi-{os.getppid()}-def" / "h" / "face.jpg").parent.parent
    other = write(tmp_path / "someone-else" / "file").parent
    assert remove_stale(tmp_path) == 1
    assert not gone.exists() and alive.exists() and other.exists()


def test_videos_wait_for_their_user_under_the_image_limit_but_not_past_the_hard_one(tmp_path):
    files = ServerFiles(tmp_path, max_age_s=120, max_bytes=5000, hard_max_bytes=50_000)
    clip = write(tmp_path / "h1" / "clip.mp4", size=30_000, age_s=60)  # older than the images, bigger than the limit
    images = [write(tmp_path / f"i{i}" / "f.jpg", size=2000, age_s=10 - i) for i in range(4)]
    files.sweep()
    assert clip.exists() and [p.exists() for p in images] == [False, False, True, True]
    late = write(tmp_path / "h2" / "late.webm", size=30_000)
    files.sweep()  # 64 kB in all: past the hard limit, the oldest file goes whatever it is
    assert not clip.exists() and late.exists()
