"""What users send or get back stays only while it is served: a real server, stopped with SIGTERM."""

import signal
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
from conftest import EXAMPLES
from gradio_client import Client, handle_file
from server import running_app

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}


def images_under(folder):
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def status(url):
    try:
        return urllib.request.urlopen(url, timeout=30).status
    except urllib.error.HTTPError as err:
        return err.code


def test_nothing_remains_after_sigterm_and_an_old_runs_files_are_not_served(tiny_models, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with running_app(tiny_models, tmp_path / "first.log", tmp=tmp) as srv:
        client = Client(srv.url, verbose=False)
        result, faces = client.predict(handle_file(str(EXAMPLES / "four_faces.jpg")), "cnn", api_name="/predict")
        assert len(faces) == 4
        [private] = list(tmp.glob("ekspresi-*"))
        kept = {p.name for p in images_under(private)}
        assert "four_faces.jpg" in kept and any(n.startswith("annotated-") for n in kept)  # upload and result
        upload = next(p for p in images_under(private) if p.name == "four_faces.jpg" and "results" not in p.parts)
        with open(EXAMPLES / "coffee.jpg", "rb") as f:  # uploaded, never analysed
            [never_analysed] = httpx.post(f"{srv.url}gradio_api/upload", files={"files": f}).json()
        assert Path(never_analysed).is_file() and private in Path(never_analysed).parents
        file_url = f"{srv.url}gradio_api/file={upload}"
        assert status(file_url) == 200  # served while the server runs
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(30) == 0
        assert not private.exists()
        assert images_under(tmp) == [], images_under(tmp)
    with running_app(tiny_models, tmp_path / "second.log", tmp=tmp) as srv:
        assert status(f"{srv.url}gradio_api/file={upload}") in (403, 404)


@pytest.mark.parametrize("signal_name", ["SIGKILL"])
def test_a_killed_servers_folder_is_removed_by_the_next_server(tiny_models, tmp_path, signal_name):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with running_app(tiny_models, tmp_path / "first.log", tmp=tmp) as srv:
        Client(srv.url, verbose=False).predict(handle_file(str(EXAMPLES / "astronaut.jpg")), "cnn",
                                               api_name="/predict")
        srv.proc.send_signal(getattr(signal, signal_name))  # no chance to clean up
        srv.proc.wait(30)
        [left] = list(tmp.glob("ekspresi-*"))
        assert images_under(left)
    with running_app(tiny_models, tmp_path / "second.log", tmp=tmp):
        assert not left.exists()
