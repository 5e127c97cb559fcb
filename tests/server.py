"""Start the real app (python app.py) in a subprocess on a free port, and call it over raw HTTP.

Used by the tests and by the benchmarks in bench/ (as tests.server).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def until(condition, timeout: float, why="not within the time allowed", every: float = 0.2) -> None:
    """Wait for a server (another process or thread) to do what comes next: condition() true
    within timeout seconds, or an AssertionError saying why (a string, or a function for one)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, why() if callable(why) else why
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(weights: Path, log_path: Path, timeout: float = 180, tmp: Path | None = None):
    """Yields (url, proc, log, tmp): tmp is the server's TMPDIR, where its private folder lives."""
    port = free_port()
    tmp = Path(tmp or tempfile.mkdtemp(prefix="server-tmp-", dir=log_path.parent))
    env = {**os.environ, "EKSPRESI_WEIGHTS": str(weights), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
           "TMPDIR": str(tmp), "EKSPRESI_EXPORT_AT_START": "0", "EKSPRESI_CACHE": str(log_path.parent / "cache"),
           "GRADIO_SSR_MODE": "true"}  # as Hugging Face Spaces set it: the app must not follow it
    env.pop("GRADIO_TEMP_DIR", None)
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    urllib.request.urlopen(url + "gradio_api/info", timeout=2)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError(f"app.py did not answer within {timeout}s") from None
                    time.sleep(0.5)
            yield SimpleNamespace(url=url, proc=proc, log=log_path, tmp=tmp)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def call_raw(url: str, data: list, api_name: str = "predict", timeout: float = 120,
             session_hash: str | None = None) -> tuple[str, object]:
    """POST /gradio_api/call/NAME with a hand-made payload: ("complete" | "error", data or message)."""
    body = {"data": data, **({"session_hash": session_hash} if session_hash else {})}
    req = urllib.request.Request(f"{url}gradio_api/call/{api_name}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(req, timeout=timeout).read())["event_id"]
    body = urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event_id}", timeout=timeout).read().decode()
    event, payload = None, None
    for line in body.splitlines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            payload = json.loads(line[6:])
    if event == "error" and isinstance(payload, dict):
        payload = payload.get("error")
    return event, payload


def event_id_of(url: str, name: str) -> int:
    """The id of the page's event with this API name ("predict"), or else of its first event
    with this trigger ("tick")."""
    deps = json.loads(urllib.request.urlopen(f"{url}config", timeout=30).read())["dependencies"]
    named = [d for d in deps if d.get("api_name") == name]
    return (named or [d for d in deps if d["targets"] and d["targets"][0][1] == name])[0]["id"]


def queue_join(url: str, fn: int, data: list, session_hash: str) -> tuple[int, str | None]:
    """Put one of the page's events in Gradio's queue, as the browser does; nobody reads its
    answer. Each new session_hash is a new Gradio session. (HTTP status, refusal's detail)."""
    body = {"data": data, "fn_index": fn, "session_hash": session_hash, "event_data": None}
    req = urllib.request.Request(f"{url}gradio_api/queue/join", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=30).read()
        return 200, None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())["detail"]


def vm_kib(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def post_pieces(url: str, pieces, path: str = "/gradio_api/call/predict", content_type: str = "application/json",
                declared: bool = False) -> tuple[int | None, bytes, int, dict]:
    """POST to `path` a body of `pieces`, its length declared or not (chunked):
    (status or None if cut off, body, bytes sent, headers)."""
    pieces = list(pieces)
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=120)
    sent = 0

    def counted():
        nonlocal sent
        for piece in pieces:
            sent += len(piece)
            yield piece

    try:
        headers = {"Content-Type": content_type}
        if declared:
            headers["Content-Length"] = str(sum(len(piece) for piece in pieces))
        conn.request("POST", path, body=counted(), headers=headers, encode_chunked=not declared)
        response = conn.getresponse()
        return response.status, response.read(), sent, {k.lower(): val for k, val in response.getheaders()}
    except (ConnectionResetError, BrokenPipeError):
        return None, b"", sent, {}
    finally:
        conn.close()


BOUNDARY = "ekspresi-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"  # the content type of the bodies below


def multipart_head(index: int) -> bytes:
    """The head of a part as Gradio's upload route reads it: a file in the field "files"."""
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="clip{index}.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n").encode()


def start_upload(url: str, length: int) -> http.client.HTTPConnection:
    """An upload that declares `length` bytes and sends only its first part's head: it stays in flight."""
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=30)
    conn.putrequest("POST", "/gradio_api/upload")
    conn.putheader("Content-Type", MULTIPART)
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    conn.send(multipart_head(0))
    return conn


def upload_when_free(url: str, pieces, timeout: float = 30) -> int:
    """POST an upload, again every 0.5 s while it is told 503 (reservations of uploads that went
    away not yet given back); its final status."""
    deadline = time.time() + timeout
    while (status := post_pieces(url, pieces, "/gradio_api/upload", MULTIPART, declared=True)[0]) == 503:
        assert time.time() < deadline, "reservations were not given back"
        time.sleep(0.5)
    return status


def multipart_files(count: int, megabytes: int) -> list[bytes]:
    """The pieces of a multipart body of `count` files of `megabytes` MB (one 1 MB block, repeated)."""
    block = b"\0" * 2**20
    return ([piece for i in range(count) for piece in [multipart_head(i), *[block] * megabytes, b"\r\n"]]
            + [f"--{BOUNDARY}--\r\n".encode()])
