"""The real server: python app.py in a subprocess, called through gradio_client and raw HTTP.

Every way an image can arrive is tried with good, odd and hostile input; after each bad one
the server must still answer a good image, and its log must hold one line per refusal.
"""

import base64
import http.client
import http.server
import io
import json
import os
import re
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from clips import frames_and_seconds, write_clip
from conftest import EXAMPLES
from gradio_client import Client, handle_file
from PIL import Image
from server import (
    BOUNDARY,
    MULTIPART,
    call_raw,
    event_id_of,
    multipart_files,
    post_pieces,
    queue_join,
    running_app,
    start_upload,
    until,
    upload_when_free,
    vm_kib,
)

from demo.guards.body_limit import MAX_BODY_BYTES, MAX_UPLOAD_BYTES, UPLOADS_IN_FLIGHT_BYTES
from demo.guards.gate import NOT_UPLOADED
from demo.guards.queue_limits import MAX_UNREAD, MAX_WAITING
from demo.web.live import VIEWER_IDLE_S
from demo.web.page import SESSIONS_KEPT, example_images

FILE_META = {"_type": "gradio.FileData"}


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "app.log"
    with running_app(tiny_models, log) as srv:
        srv.client = Client(srv.url, verbose=False)
        yield srv


@pytest.fixture
def app(server):
    return server.client, server.proc


def check_astronaut(client):
    image, faces = client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), "cnn", api_name="/predict")
    assert len(faces) == 1
    x, y, w, h = faces[0]["box"]
    assert 150 < x < 200 and 60 < y < 110 and 80 < w < 130
    assert faces[0]["label"] in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert 0 < faces[0]["confidence"] <= 1 and len(faces[0]["top3"]) == 3
    assert Image.open(image).size == (512, 512)


def test_predict_astronaut_returns_one_face_over_her_face(app):
    check_astronaut(app[0])


def test_predict_api_shape_offers_only_models_that_exist(app):
    api = app[0].view_api(return_format="dict", print_info=False)
    params = api["named_endpoints"]["/predict"]["parameters"]
    assert [p["parameter_name"] for p in params][:2] == ["image", "model_name"]
    assert all(p["parameter_has_default"] for p in params[1:])
    assert params[1]["python_type"]["type"] == "Literal['cnn', 'seed_cnn', 'ensemble']"


def test_no_face_is_an_empty_list_and_whole_image_mode(app, sample_root):
    _, faces = app[0].predict(handle_file(str(EXAMPLES / "chelsea_cat_no_face.jpg")), "cnn", api_name="/predict")
    assert faces == []
    fer = next((sample_root / "test" / "surprise").iterdir())
    _, faces = app[0].predict(handle_file(str(fer)), "seed_cnn", True, "short", api_name="/predict")
    assert len(faces) == 1 and faces[0]["box"] == [0, 0, 48, 48]


def encode(im, fmt="PNG", **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _gif():
    frames = [Image.new("RGB", (32, 32), (90 * i, 0, 0)) for i in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


BAD = {
    "not_an_image.jpg": (lambda: b"hello, I am text", "not an image"),
    "random.png": (lambda: np.random.default_rng(1).bytes(50_000), "not an image"),
    "zero.png": (lambda: b"", "empty"),
    "truncated.jpg": (lambda: (EXAMPLES / "astronaut.jpg").read_bytes()[:3000], "truncated or corrupt"),
    "huge_20000.png": (lambda: encode(Image.new("L", (20000, 20000))), "too large"),
    "bomb_40000.png": (lambda: encode(Image.new("1", (40000, 40000))), "too large"),
    "sixty_megapixels.jpg": (lambda: encode(Image.new("L", (10000, 6000)), "JPEG"), "too large: 10000 x 6000"),
    "animated.gif": (_gif, "animated"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_upload_is_a_clear_error_and_the_server_keeps_working(app, tmp_path, name):
    client, proc = app
    make, message = BAD[name]
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(str(path)), "cnn", api_name="/predict")
    assert proc.poll() is None
    check_astronaut(client)


def _exif_rotated():
    """The astronaut stored lying on her side, with the EXIF tag that stands her up again."""
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    lying = Image.open(EXAMPLES / "astronaut.jpg").crop((0, 0, 512, 400)).rotate(90, expand=True)
    return encode(lying, "JPEG", exif=exif), (512, 400)


def _mode(mode, fmt="PNG"):
    im = Image.open(EXAMPLES / "astronaut.jpg")
    if mode == "I;16":
        arr = np.asarray(im.convert("L"), np.uint16) * 257
        return encode(Image.fromarray(arr, "I;16"), fmt), im.size
    return encode(im.convert(mode), fmt), im.size


ODD = {
    "cmyk.jpg": lambda: _mode("CMYK", "JPEG"),
    "sixteen_bit.png": lambda: _mode("I;16"),
    "rgba.png": lambda: _mode("RGBA"),
    "one_pixel.png": lambda: (encode(Image.new("RGB", (1, 1))), (1, 1)),
    "strip_10000x10.png": lambda: (encode(Image.new("RGB", (10000, 10))), (10000, 10)),
    "exif_rotated.jpg": _exif_rotated,
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_but_valid_images_are_analysed(app, tmp_path, name):
    data, size = ODD[name]()
    path = tmp_path / name
    path.write_bytes(data)
    image, faces = app[0].predict(handle_file(str(path)), "cnn", api_name="/predict")
    assert Image.open(image).size == size
    if size[0] == 512:  # the astronaut, found in every colour mode and upright where EXIF says so
        assert len(faces) == 1 and 150 < faces[0]["box"][0] < 200 and 60 < faces[0]["box"][1] < 110
    else:
        assert faces == []


def test_upload_size_is_capped(app, tmp_path):
    path = tmp_path / "thirty_mb.png"
    path.write_bytes(np.random.default_rng(0).bytes(30 * 1024 * 1024))
    with pytest.raises(Exception):  # noqa: B017 - the upload itself is refused, before any handler
        app[0].predict(handle_file(str(path)), "cnn", api_name="/predict")
    check_astronaut(app[0])


def test_bogus_model_and_detector_names_are_clear_errors(app):
    image = handle_file(str(EXAMPLES / "astronaut.jpg"))
    with pytest.raises(Exception, match="resnet50 is not in the list of choices"):
        app[0].predict(image, "resnet50", api_name="/predict")
    with pytest.raises(Exception, match="is not in the list of choices"):
        app[0].predict(image, "../../etc/passwd", api_name="/predict")
    with pytest.raises(Exception, match="is not in the list of choices"):
        app[0].predict(image, "cnn", False, "medium", api_name="/predict")
    check_astronaut(app[0])


def test_inputs_of_the_wrong_type_are_clear_errors_without_a_traceback(server):
    """The API takes any JSON for each input: a list passed Gradio's dropdown check and reached
    the model and detector lookups, any example number but 0..n-1 failed in Gradio's lookup, and
    faces not made by /predict failed in the summary; each one was a traceback in the log."""
    face = {"path": str(EXAMPLES / "astronaut.jpg")}
    for data, said in (([face, ["cnn"], False, "short"], "the model is named by a string, one of: cnn"),
                       ([face, None, False, "short"], "the model is named by a string"),
                       ([face, "cnn", False, ["short"]], "unknown detector ['short']")):
        event, message = call_raw(server.url, data)
        assert event == "error" and message.startswith(said), message
    examples = len(example_images())
    for number in (examples, -1, None, "0", 10**30, {"a": 1}, True):
        event, message = call_raw(server.url, [number], api_name="load_example")
        assert (event, message) == ("error", f"there is no such example; the examples are numbered 0 to {examples - 1}")
    for faces in ([1, 2, 3], {"a": 1}, 5, [{"label": "happy"}], [{"label": "x", "confidence": "high", "top3": []}]):
        event, message = call_raw(server.url, [faces], api_name="summary_markdown")
        assert (event, message) == ("error", "the summary is made from the faces /predict returns")
    event, [update] = call_raw(server.url, [0], api_name="load_example")
    assert event == "complete" and update["value"]["orig_name"].endswith(".jpg")
    check_astronaut(server.client)
    log = server.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback"):][:3000]
    assert "rejected request input: there is no such example" in log


def test_server_paths_are_never_opened_and_never_described(server, tmp_path):
    """A raw API path (no "meta") used to be analysed if it was any image the server could read."""
    face = tmp_path / "face.jpg"
    face.write_bytes((EXAMPLES / "astronaut.jpg").read_bytes())
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (29 * 2**20))
    for path in (face, empty, big, tmp_path / "missing.jpg", "/etc/passwd", f"{server.tmp}/../{face.name}"):
        event, message = call_raw(server.url, [{"path": str(path)}, "cnn", False, "short"])
        assert (event, message) == ("error", NOT_UPLOADED)  # the same words whether it exists or not
    event, message = call_raw(server.url, [{"path": str(face), "meta": FILE_META}, "cnn", False, "short"])
    assert (event, message) == ("error", NOT_UPLOADED)  # Gradio's own check, in the same words
    event, (_, faces) = call_raw(server.url, [{"path": str(EXAMPLES / "astronaut.jpg")}, "cnn", False, "short"])
    assert event == "complete" and len(faces) == 1  # the shipped examples are allowed


def test_files_named_by_url_are_refused_before_anything_is_fetched(server):
    """gradio_client's handle_file(url) sends the URL, and Gradio used to download it on the
    server: from any public host, any size (2 GB in 9.5 s, measured with a public address on
    this machine's loopback), analysed as if it had been uploaded."""
    fetched = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            fetched.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write((EXAMPLES / "astronaut.jpg").read_bytes())

    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    try:
        for url in (f"http://127.0.0.1:{listener.server_port}/face.jpg", "https://ekspresi.invalid/face.jpg",
                    "http://93.184.216.34/face.jpg"):
            with pytest.raises(Exception, match=re.escape(NOT_UPLOADED)):
                server.client.predict(handle_file(url), "cnn", api_name="/predict")
            with pytest.raises(Exception, match=re.escape(NOT_UPLOADED)):
                server.client.predict(handle_file(url.replace(".jpg", ".mp4")), "cnn", "short",
                                      api_name="/predict_video")
    finally:
        listener.shutdown()
    assert fetched == []
    check_astronaut(server.client)


def test_data_url_images_go_through_the_same_limits(server):
    def data_url(raw):
        return {"path": None, "url": "data:image/png;base64," + base64.b64encode(raw).decode(), "meta": FILE_META}

    event, (_, faces) = call_raw(server.url, [data_url(encode(Image.open(EXAMPLES / "astronaut.jpg"))), "cnn", False, "short"])
    assert event == "complete" and len(faces) == 1
    bomb = data_url(encode(Image.new("L", (13000, 13000))))
    call_raw(server.url, [bomb, "cnn", False, "short"])  # once first, so that lazily built parts of Gradio count as before
    pid = server.proc.pid
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets the peak resident size (VmHWM) to the current one
    before = vm_kib(pid, "VmRSS")
    start = time.perf_counter()
    event, message = call_raw(server.url, [bomb, "cnn", False, "short"])
    elapsed = time.perf_counter() - start
    extra_mb = (vm_kib(pid, "VmHWM") - before) / 1024
    assert event == "error" and "too large: 13000 x 13000 pixels" in message
    assert elapsed < 1.0 and extra_mb < 100, (elapsed, extra_mb)
    thirty_mb = data_url(np.random.default_rng(2).bytes(30 * 2**20))
    event, message = call_raw(server.url, [thirty_mb, "cnn", False, "short"])
    assert event == "error" and "the limit is 25 MB" in message
    event, message = call_raw(server.url, [thirty_mb, "cnn"])  # inputs missing: said without echoing the image
    assert event == "error" and message == "predict takes 4 inputs (gatedimage, dropdown, checkbox, dropdown); the request had 2"
    event, message = call_raw(server.url, [data_url(b"GIF89a but not really"), "cnn", False, "short"])
    assert event == "error" and "not an image" in message
    check_astronaut(server.client)


def test_routes_the_page_does_not_use_are_closed(server, tmp_path):
    """Gradio's /process_recording re-encodes any uploaded video with the system's ffmpeg (which
    Spaces install), once per "zoom effect" in the request, outside the queue: 16 requests of
    210 KB took /predict from 0.25 s to 3-7 s for about an hour each. /custom_component/ printed
    its path to the log, where a newline in it forged a line (demo/guards/closed_routes.py)."""
    clip = write_clip(tmp_path / "recording.mp4", seconds=0.5, size=(64, 48), face=False, audio=False)
    zoom = [{"boundingBox": {"topLeft": [0.1, 0.1], "bottomRight": [0.2, 0.2]}, "duration": 100}] * 50
    for path in ("gradio_api/process_recording", "gradio_api/process_recording/"):
        answer = httpx.post(f"{server.url}{path}", files={"video": ("recording.mp4", clip.read_bytes(), "video/mp4")},
                            data={"zoom_effects": json.dumps(zoom)}, timeout=60)
        assert answer.status_code == 404, f"answered {answer.status_code}, {answer.headers.get('content-type')}"
        assert answer.json() == {"detail": "not offered by this server"}
    assert server.log.read_text().count("refused a request to /gradio_api/process_recording") == 2
    forged = "2026-01-01 00:00:00,000 ekspresi.gate rejected image input: forged"
    answer = httpx.get(f"{server.url}gradio_api/custom_component/x%0A{forged.replace(' ', '%20')}/client/a/b.js")
    assert answer.status_code == 404
    assert forged not in server.log.read_text()  # Gradio printed the path, newline and all
    assert "refused a request to /gradio_api/custom_component/:" in server.log.read_text()
    check_astronaut(server.client)


def test_every_event_goes_through_the_queue(server):
    """Gradio's REST routes ran an event at once, skipping the queue and its limits, wherever the
    server was not a Space: 24 maximal images sent to /run/predict at once took the server to
    15.8 GB, against 4.2 GB through the queue."""
    with open(EXAMPLES / "astronaut.jpg", "rb") as f:
        [uploaded] = httpx.post(f"{server.url}gradio_api/upload", files={"files": f}, timeout=60).json()
    face = {"path": uploaded, "meta": FILE_META}
    for route in ("run", "api"):
        for name, data in (("predict", [face, "cnn", False, "short"]), ("predict_video", [face, "cnn", "short"])):
            answer = httpx.post(f"{server.url}gradio_api/{route}/{name}", json={"data": data}, timeout=60)
            assert answer.status_code == 404 and "join the queue" in answer.json()["detail"], (route, name, answer.text)
    event, (_, faces) = call_raw(server.url, [face, "cnn", False, "short"])
    assert event == "complete" and len(faces) == 1  # the same upload, through the queue


def test_request_bodies_over_the_cap_are_refused_before_they_are_read(server):
    """Gradio reads a JSON body whole; 1.5 GB of one used to cost the server 5.8 GB of memory."""
    pid = server.proc.pid
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    before = vm_kib(pid, "VmRSS")
    for path in ("/gradio_api/call/predict", "/gradio_api/queue/join", "/gradio_api/run/predict"):
        conn = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=30)
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(2**31))  # declared, never sent: the answer comes first
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413, path
        assert json.loads(response.read())["detail"] == (
            f"the request body is over {MAX_BODY_BYTES // 2**20} MB; send large files to /gradio_api/upload")
        conn.close()
    megabyte = b"A" * 2**20
    status, body, sent, _ = post_pieces(server.url, [b'{"data": ["data:image/png;base64,'] + [megabyte] * 1024)
    assert status in (413, None) and sent < 300 * 2**20, (status, sent)  # cut off near the cap, not at 1 GB
    extra_mb = (vm_kib(pid, "VmHWM") - before) / 1024
    assert extra_mb < 400, extra_mb  # the cap (66 MB) held once, not the gigabyte
    # A body without a declared length that fits reaches the app whole, however it was split.
    payload = json.dumps({"data": [{"path": str(EXAMPLES / "astronaut.jpg")}, "cnn", False, "short"]}).encode()
    status, body, _, _ = post_pieces(server.url, [payload[i:i + 7] for i in range(0, len(payload), 7)])
    assert status == 200
    event_id = json.loads(body)["event_id"]
    result = urllib.request.urlopen(f"{server.url}gradio_api/call/predict/{event_id}", timeout=60).read().decode()
    assert "event: complete" in result and '"label"' in result
    check_astronaut(server.client)


def test_uploads_are_capped_per_request_and_in_flight(server):
    """Gradio caps each uploaded file but takes up to 1,000 per request, and files still being written
    are open, so the sweeper cannot free them: 12 files of 190 MB took 2.2 GB of disk at once."""
    conn = start_upload(server.url, MAX_UPLOAD_BYTES + 1)  # refused from the header, before the body
    response = conn.getresponse()
    assert response.status == 413
    assert response.read().decode() == (  # plain text: Gradio's page shows it as it comes
        f"the request body is over {MAX_UPLOAD_BYTES // 2**20} MB; upload one file at a time")
    conn.close()
    # Undeclared: files of 20 MB, one after another, are cut off once the body passes the cap.
    status, body, sent, _ = post_pieces(server.url, multipart_files(12, 20), "/gradio_api/upload", MULTIPART)
    assert status in (413, None) and sent < MAX_UPLOAD_BYTES + 40 * 2**20, (status, sent)
    # Uploads in flight together reserve what they declare; past the budget the next is told to
    # retry, once its body is in, so that a client still sending gets the answer.
    slow = [start_upload(server.url, MAX_UPLOAD_BYTES) for _ in range(UPLOADS_IN_FLIGHT_BYTES // MAX_UPLOAD_BYTES)]
    time.sleep(1)  # all of them received by the server
    thirty_mb = multipart_files(1, 30)
    status, body, _, headers = post_pieces(server.url, thirty_mb, "/gradio_api/upload", MULTIPART, declared=True)
    assert status == 503 and headers.get("retry-after") == "60", (status, headers)
    assert body.decode().startswith("the server is receiving too many uploads at once")
    for c in slow:  # clients that go away give their reservation back
        c.close()
    assert upload_when_free(server.url, thirty_mb) == 200
    check_astronaut(server.client)  # uploads through gradio_client still work


def listening_pids(port: int) -> set[int]:
    """The processes holding a listening TCP socket on `port` (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    pids = set()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in inodes:
                pids.add(int(fd.parts[2]))
        except OSError:
            continue  # a process or descriptor that went away, or not ours to read
    return pids


def test_python_answers_the_page_even_where_spaces_turn_on_ssr(server):
    """Spaces set GRADIO_SSR_MODE=true (so does running_app); Gradio would then put a Node proxy on
    the public port, in front of the body cap and the gate. app.py itself must hold that port."""
    assert listening_pids(urlsplit(server.url).port) == {server.proc.pid}
    assert "with SSR" not in server.log.read_text()


def test_sessions_keep_no_copy_of_what_users_sent_or_got_back(server):
    """Gradio keeps each session's last inputs and outputs (for deep links) until SESSIONS_KEPT newer
    sessions push them out: 30 data URLs of 60 MB held 2.7 GB. The page drops them."""
    def kept(session_hash):  # what Gradio holds for the session, as its deep-link route writes it out
        link = json.loads(urllib.request.urlopen(f"{server.url}gradio_api/deep_link?session_hash={session_hash}",
                                                 timeout=30).read())
        state = json.loads(next(server.tmp.glob(f"ekspresi-*/deep_links/{link}/state.json")).read_text())
        return {c["props"]["label"]: c["props"].get("value") for c in state if c["type"] in ("image", "json")}

    client = Client(server.url, verbose=False)
    client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), "cnn", api_name="/predict")  # an upload
    astronaut = encode(Image.open(EXAMPLES / "astronaut.jpg"))
    inline = {"path": None, "url": "data:image/png;base64," + base64.b64encode(astronaut).decode(), "meta": FILE_META}
    event, (_, faces) = call_raw(server.url, [inline, "cnn", False, "short"], session_hash="inline-analysed")
    assert event == "complete" and len(faces) == 1
    too_big = {**inline, "url": "data:image/png;base64," + "A" * (40 << 20)}
    event, message = call_raw(server.url, [too_big, "cnn", False, "short"], session_hash="inline-refused")
    assert event == "error" and "the limit is 25 MB" in message
    for session in (client.session_hash, "inline-analysed", "inline-refused"):
        values = kept(session)
        assert {"Image (JPG, PNG, WebP)", "Result", "Faces"} <= set(values)  # the session's components...
        assert all(v is None for v in values.values()), (session, str(values)[:300])  # ...without their values


def test_what_users_sent_or_got_back_is_not_kept_in_their_browsers_cache(server):
    """Gradio serves files with Last-Modified and no Cache-Control: a browser may keep faces in its
    disk cache after the visitor has gone. Uploads and results are served with no-store."""
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="portrait.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode()
    pieces = [head, (EXAMPLES / "astronaut.jpg").read_bytes(), f"\r\n--{BOUNDARY}--\r\n".encode()]
    status, body, _, _ = post_pieces(server.url, pieces, "/gradio_api/upload", MULTIPART, declared=True)
    assert status == 200, body
    [uploaded] = json.loads(body)
    event, (result, faces) = call_raw(server.url, [{"path": uploaded, "meta": FILE_META}, "cnn", False, "short"])
    assert event == "complete" and len(faces) == 1
    for url in (f"{server.url}gradio_api/file={uploaded}", result["url"]):
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.headers["Cache-Control"] == "no-store", url
            assert response.read(3) == b"\xff\xd8\xff"  # the JPEG itself
    assert "no-store" not in (urllib.request.urlopen(server.url, timeout=30).headers["Cache-Control"] or "")


def test_gradio_keeps_the_newest_sessions_only(server):
    """Gradio keeps a copy of the page's config for each session (an API call's included) until
    SESSIONS_KEPT newer ones push it out: about 52 KB each, 0.5 GB at Gradio's default of 10,000."""
    def known(session_hash):  # the deep-link route answers "" for a session Gradio no longer holds
        return json.loads(urllib.request.urlopen(f"{server.url}gradio_api/deep_link?session_hash={session_hash}",
                                                 timeout=30).read()) != ""

    client = Client(server.url, verbose=False)
    check_astronaut(client)
    assert known(client.session_hash)
    tick = event_id_of(server.url, "tick")  # the cheapest event: a timeline tick of a viewer who has none

    def new_session(i):
        while queue_join(server.url, tick, ["cnn"], f"session-{i}")[0] == 503:  # the queue is full: wait
            time.sleep(0.05)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(new_session, range(SESSIONS_KEPT)))
    assert not known(client.session_hash) and known(f"session-{SESSIONS_KEPT - 1}")
    check_astronaut(client)  # a user whose session was pushed out is served as before


def test_a_session_that_never_reads_its_answers_is_refused_until_it_does(server):
    """Gradio keeps every message for a client that never reads them: one session could fill the
    server's memory with cheap events. Past MAX_UNREAD unread messages its events are refused."""
    tick, answers = event_id_of(server.url, "tick"), []

    def waiting() -> int:
        return json.loads(urllib.request.urlopen(f"{server.url}gradio_api/queue/status", timeout=30).read())["queue_size"]

    for _ in range(MAX_UNREAD):  # each event leaves a few: its place in the line, its start, its result
        answers.append(queue_join(server.url, tick, ["cnn"], "never-reads"))
        if answers[-1][0] != 200:
            break
        while waiting():  # one at a time: this session's answers, not the line's length, are the limit
            time.sleep(0.01)
    status, detail = answers[-1]
    assert status == 503 and "answers nobody has read" in detail, answers[-3:]
    assert len(answers) > 20  # a few events are fine: a browser has several under way
    lines = server.log.read_text().count("ekspresi.queue refused")
    refused = [queue_join(server.url, tick, ["cnn"], "never-reads")[0] for _ in range(50)]
    assert refused == [503] * 50
    assert server.log.read_text().count("ekspresi.queue refused") <= lines + 1  # a flood does not flood the log
    # Reading them, as a browser does over the queue's event stream, lets the session go on.
    stream = urllib.request.urlopen(f"{server.url}gradio_api/queue/data?session_hash=never-reads", timeout=60)
    assert b"process_completed" in stream.read()
    assert queue_join(server.url, tick, ["cnn"], "never-reads") == (200, None)


def test_past_max_waiting_events_the_queue_says_it_is_full(server):
    """Each job start sends every waiting event its new place in the line: without a bound, a
    flood's messages grow with the square of its backlog (+1.2 GB for 5,000 sessions, soak)."""
    predict = event_id_of(server.url, "predict")
    jpeg = (EXAMPLES / "four_faces.jpg").read_bytes()
    four_faces = {"path": None, "url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode(), "meta": FILE_META}
    with ThreadPoolExecutor(8) as pool:  # joins take ~5 ms; each analysis of four faces far longer
        answers = list(pool.map(lambda i: queue_join(server.url, predict, [four_faces, "cnn", False, "short"],
                                                      f"crowd-{i % 40}"), range(3 * MAX_WAITING)))
    full = [detail for status, detail in answers if status == 503]
    assert full and all(d.startswith(f"Queue is full. Max size is {MAX_WAITING}") for d in full), answers[:5]
    assert sum(status == 200 for status, _ in answers) >= MAX_WAITING
    check_astronaut(server.client)  # served once the line is through


def test_refused_images_do_not_stay_in_memory(server):
    """Gradio keeps a refused request, its body included, in a reference cycle until Python's next
    full collection: 20 refused 40 MB data URLs held +296 MB. demo.guards.garbage collects soon after.
    What may stay is the last event handled, body and parsed JSON (2 x 40 MB here), which Gradio's
    queue loops keep until the next one; a loop of demo.guards.queue_limits kept another one too
    (6 refusals left +121 to +160 MB; now +1 to +82 MB)."""
    pid = server.proc.pid
    too_big = {"path": None, "url": "data:image/png;base64," + "A" * (40 << 20), "meta": FILE_META}
    call_raw(server.url, [too_big, "cnn", False, "short"])  # lazily built parts of Gradio first
    time.sleep(2)
    before = vm_kib(pid, "VmRSS")
    for i in range(6):
        event, message = call_raw(server.url, [too_big, "cnn", False, "short"], session_hash=f"refused-{i}")
        assert event == "error" and "the limit is 25 MB" in message
    deadline = time.time() + 25  # at most one collection every 10 s
    while (extra_mb := (vm_kib(pid, "VmRSS") - before) / 1024) > 100:
        assert time.time() < deadline, f"{extra_mb:.0f} MB more than before, still"
        time.sleep(0.5)


def test_several_requests_at_once(app):
    client = app[0]
    jobs = [(EXAMPLES / "four_faces.jpg", "cnn", 4), (EXAMPLES / "astronaut.jpg", "seed_cnn", 1),
            (EXAMPLES / "four_faces.jpg", "ensemble", 4), (EXAMPLES / "astronaut.jpg", "cnn", 1)] * 2
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda j: client.predict(handle_file(str(j[0])), j[1], api_name="/predict"), jobs))
    assert [len(faces) for _, faces in results] == [n for _, _, n in jobs]


def test_fifty_clients_five_requests_each_are_all_answered(app):
    def client_session(i):
        client = Client(app[0].src, verbose=False)
        image = EXAMPLES / ("four_faces.jpg" if i % 2 else "astronaut.jpg")
        return [len(client.predict(handle_file(str(image)), "cnn", api_name="/predict")[1]) for _ in range(5)]

    with ThreadPoolExecutor(50) as pool:
        counts = list(pool.map(client_session, range(50)))
    assert counts == [[4 if i % 2 else 1] * 5 for i in range(50)]


def test_the_same_upload_from_many_users_at_once_always_comes_back_whole(app):
    """Identical results at once: Gradio's in-place array cache used to hand some clients an
    emptied file (7 of 128 requests failed before demo/guards/results.py, 0 after)."""
    client = app[0]
    with ThreadPoolExecutor(16) as pool:
        for _ in range(4):
            jobs = [pool.submit(client.predict, handle_file(str(EXAMPLES / "four_faces.jpg")), "cnn",
                                api_name="/predict") for _ in range(16)]
            for job in jobs:
                path, faces = job.result()
                assert len(faces) == 4
                with Image.open(path) as im:
                    im.load()  # a truncated download fails here


def test_predict_video_returns_the_annotated_clip_chart_and_tables(server, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", seconds=2)
    video, chart, files, summary = server.client.predict(handle_file(str(clip)), "cnn", "short",
                                                         api_name="/predict_video")
    frames, seconds, kinds = frames_and_seconds(video["video"] if isinstance(video, dict) else video)
    assert frames == 60 and abs(seconds - 2.0) < 0.05 and kinds == ["video", "audio"]
    assert chart["url"].startswith("data:image/jpeg;base64,")  # drawn in memory, never a file on the server
    assert Image.open(io.BytesIO(base64.b64decode(chart["url"].split(",", 1)[1]))).size[0] == 640
    tables = {Path(f).name: Path(f) for f in files}
    assert sorted(tables) == ["faces.csv", "faces.json"]
    assert len(tables["faces.csv"].read_text().splitlines()) == 61  # a header and one row per frame
    assert json.loads(tables["faces.json"].read_text())["video"]["frames_written"] == 60
    assert "**60 frames**" in summary and "1 face tracked" in summary


def test_bad_clips_and_server_paths_are_refused_by_predict_video(server, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(Exception, match="not a video file"):
        server.client.predict(handle_file(str(text)), "cnn", "short", api_name="/predict_video")
    clip = write_clip(tmp_path / "elsewhere.mp4", seconds=0.5)
    event, message = call_raw(server.url, [{"path": str(clip)}, "cnn", "short"], api_name="predict_video")
    assert (event, message) == ("error", NOT_UPLOADED)
    check_astronaut(server.client)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """Five minutes of small still frames, recorded as browsers do (no length in the header):
    about half a minute of work, with nobody to see it."""
    return write_clip(tmp_path_factory.mktemp("clips") / "long.mkv", seconds=300, size=(64, 48), face=False,
                      audio=False, live=True)


@pytest.mark.parametrize("how", ["cancelled", "tab closed"])
def test_a_video_whose_user_left_is_stopped_at_once(server, long_clip, how):
    """Gradio marks the event of a client that has gone, but lets a plain function's thread run
    on: an abandoned video held the one video slot (and a core) to its last frame."""
    stopped = server.log.read_text().count("video analysis stopped: its user left")
    if how == "cancelled":
        job = server.client.submit(handle_file(str(long_clip)), "cnn", "short", api_name="/predict_video")
        until(lambda: job.status().code.name == "PROGRESS", 60, job.status)  # frames are being analysed
        job.cancel()
    else:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            path = http.post("gradio_api/upload", files={"files": (long_clip.name, long_clip.read_bytes())}).json()[0]
            session = f"leaves-{time.time()}"
            status, _ = queue_join(server.url, event_id_of(server.url, "predict_video"),
                                   [{"path": path, "meta": FILE_META}, "cnn", "short"], session)
            assert status == 200
            with http.stream("GET", f"gradio_api/queue/data?session_hash={session}") as sse:
                for line in sse.iter_lines():
                    message = json.loads(line[5:]) if line.startswith("data:") else {}
                    if message.get("msg") == "progress" and message["progress_data"][0]["index"]:
                        break  # frames are being analysed; the connection closes, as a closed tab's does
            counted = message["progress_data"][0]
            assert counted["unit"] == "frames" and counted["length"] is None  # a count, not a bar at 100 %
    until(lambda: server.log.read_text().count("video analysis stopped: its user left") > stopped, 10,
          "the abandoned video is still being analysed")
    started = time.time()
    clip = write_clip(long_clip.with_name("next.mp4"), seconds=0.5)
    video, _, _, summary = server.client.predict(handle_file(str(clip)), "cnn", "short", api_name="/predict_video")
    assert "**15 frames**" in summary and time.time() - started < 20  # the video slot is free again


class WebcamViewer:
    """A webcam viewer as the browser is one: the first frame joins the queue, later ones go to
    /gradio_api/stream/ID, and the annotated frames come back over the session's event stream,
    read here in a thread. drop=True closes that connection after the first annotated frame."""

    def __init__(self, url: str, name: str, frame: dict, drop: bool = False):
        self.url, self.drop = url, drop
        self.body = {"data": [frame, "cnn", "short"], "fn_index": event_id_of(url, "stream"),
                     "session_hash": f"{name}-{time.time()}", "event_data": None}
        self.streamed, self.completed = [], None  # when each annotated frame came; when the stream ended
        reply = httpx.post(f"{url}gradio_api/queue/join", json=self.body, timeout=30)
        self.event_id = reply.raise_for_status().json()["event_id"]
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with httpx.stream("GET", f"{self.url}gradio_api/queue/data?session_hash={self.body['session_hash']}",
                          timeout=120) as sse:
            for line in sse.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_streaming":
                    self.streamed.append(time.monotonic())
                    if self.drop:
                        return  # the connection closes: a phone locked, a laptop shut, a network lost
                elif message.get("msg") == "process_completed":
                    self.completed = time.monotonic()
                    return

    def send_frame(self):
        httpx.post(f"{self.url}gradio_api/stream/{self.event_id}", json=self.body, timeout=30).raise_for_status()


def test_webcam_streams_nobody_sends_to_give_their_slot_up(server):
    """A webcam stream holds one of the webcam's 8 concurrency slots while Gradio waits for its
    next frame, and Gradio waited up to the 600 s time limit even for a client that had gone:
    eight dropped connections kept a ninth viewer waiting 594 s."""
    buf = io.BytesIO()
    Image.open(EXAMPLES / "astronaut.jpg").resize((160, 160)).save(buf, "JPEG")
    frame = {"path": None, "url": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(), "meta": FILE_META}

    def ended(why):
        return len(re.findall(f"ended webcam stream [0-9a-f]+: {why}", server.log.read_text()))

    gone_before = ended("its client has gone")
    dropped = [WebcamViewer(server.url, f"drops-{i}", frame, drop=True) for i in range(8)]
    for viewer in dropped:
        viewer.reader.join(60)
        assert viewer.streamed, "a viewer's first frame was not analysed"
    ninth = WebcamViewer(server.url, "ninth", frame)
    until(lambda: ninth.streamed, 20, "the ninth viewer is still waiting for a slot")
    until(lambda: ended("its client has gone") >= gone_before + 8, 10,
          "the dropped streams were not ended")

    # The ninth stays connected and sends nothing more; another viewer sends a frame every 0.5 s.
    sending = WebcamViewer(server.url, "sending", frame)
    until(lambda: sending.streamed, 20, "the sending viewer's first frame was not analysed")
    while time.monotonic() - ninth.streamed[0] < VIEWER_IDLE_S + 4:
        sending.send_frame()
        time.sleep(0.5)
    assert ninth.completed and VIEWER_IDLE_S <= ninth.completed - ninth.streamed[0] < VIEWER_IDLE_S + 3
    assert sending.completed is None and sending.streamed[-1] > ninth.completed  # still being served
    assert ended(f"no frame for {VIEWER_IDLE_S:.0f} s") == 1
    httpx.post(f"{server.url}gradio_api/stream/{sending.event_id}/close", timeout=30).raise_for_status()
    until(lambda: sending.completed, 10, "the sending viewer's stream did not close")


def test_every_refusal_was_one_log_line_and_no_traceback(server):
    """Runs last in this module: the log now holds every bad input above."""
    log = server.log.read_text()
    rejected = [line for line in log.splitlines() if " rejected " in line]
    assert "Traceback" not in log, log[log.index("Traceback") - 500:][:3000]
    assert len(rejected) >= len(BAD) + 10
    assert "iVBOR" not in log and "base64" not in log  # never image content
    assert "face.jpg" not in log and "thirty_mb" not in log and "ekspresi.invalid" not in log  # never a file name or URL
