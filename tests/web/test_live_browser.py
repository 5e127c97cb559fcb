"""The Webcam tab's browser mode in a real Chromium, on the shipped weights: the page detects and
classifies in itself (MediaPipe Tasks Vision, ONNX Runtime Web on the models' ONNX exports), sends
no frame anywhere, and gives what /predict gives for the same faces.
"""

import base64
import io
import json
import time

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT
from gradio_client import Client, handle_file
from PIL import Image
from server import running_app
from test_browser import CHROMIUM, chromium_args, need_chromium, write_y4m

TOLERANCE = 0.01  # the bar for the browser's probabilities against /predict's


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(ROOT / "weights", tmp_path_factory.mktemp("live") / "app.log") as srv:
        srv.client = Client(srv.url, verbose=False)
        yield srv


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    need_chromium()
    from playwright.sync_api import sync_playwright

    video = tmp_path_factory.mktemp("cam") / "face30.y4m"
    frame = Image.new("RGB", (640, 480), (60, 60, 70))
    frame.paste(Image.open(EXAMPLES / "astronaut.jpg").resize((420, 420)), (110, 30))
    write_y4m(video, [(frame, 30)], fps=30)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(video))
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(chromium, server):
    """The page in browser mode (the default), its detector and the cnn loaded; every request's URL kept."""
    context = chromium.new_context(permissions=["camera"], viewport={"width": 1280, "height": 1100})
    pg = context.new_page()
    pg.requests = []
    pg.on("request", lambda r: pg.requests.append((r.method, r.url)))
    pg.goto(server.url, wait_until="load")
    pg.get_by_role("tab", name="Webcam").click()
    pg.wait_for_function("window.ekspresiLive && window.ekspresiLive.status.textContent.includes('in this browser')",
                         timeout=180_000)
    yield pg
    context.close()


def data_url(path, size=None) -> str:
    """The image as a PNG data URL: the same pixels for the browser and for /predict."""
    image = Image.open(path).convert("RGB")
    if size:
        image = image.resize(size)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def as_png(path, tmp_path) -> str:
    out = tmp_path / (path.stem + ".png")
    Image.open(path).convert("RGB").save(out)
    return str(out)


def iou(a, b) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


@pytest.mark.parametrize("image, model", [("astronaut.jpg", "cnn"), ("four_faces.jpg", "cnn_small"),
                                          ("astronaut.jpg", "ensemble"), ("coffee.jpg", "cnn")])
def test_the_browser_gives_what_predict_gives(page, server, tmp_path, image, model):
    png = as_png(EXAMPLES / image, tmp_path)
    _, faces = server.client.predict(handle_file(png), model, api_name="/predict")
    boxes = [f["box"] for f in faces]
    got = page.evaluate("([url, model, boxes]) => window.ekspresiLive.analyseStill(url, model, boxes)",
                        [data_url(png), model, boxes])
    assert len(got["probs"]) == len(faces)
    for face, probs in zip(faces, got["probs"]):
        browser = dict(zip(got["class_names"], probs))
        assert max(browser, key=browser.get) == face["label"]
        for name, p in face["top3"]:
            assert abs(browser[name] - p) <= TOLERANCE, (name, browser[name], p)
    # The browser's own detector (short range) finds the same faces, a few pixels apart.
    assert len(got["boxes"]) == len(boxes)
    for box in boxes:
        own = max(got["boxes"], key=lambda b: iou(box, b))
        assert iou(box, own) >= 0.6
        print(f"{image}: server box {box}, browser box {own}: IoU {iou(box, own):.2f}, "
              f"x, y, w, h at most {max(abs(a - b) for a, b in zip(box, own))} px apart")


def test_the_live_overlay_runs_in_the_page_and_sends_no_frame(page, server):
    page.locator(".ekspresi-live-start").click()
    page.wait_for_function("window.ekspresiLive.summary().classified >= 5", timeout=60_000)
    page.evaluate("window.ekspresiLive.resetStats()")
    sent_before = len(page.requests)
    time.sleep(4)
    summary = page.evaluate("window.ekspresiLive.summary()")
    assert summary["drawn"] > 20 and summary["classified"] > 5
    (face,) = summary["faces"]
    assert np.argmax(face["probs"]) == 3  # happy, as the server says of this photo
    # Nothing at all went to the server while the camera ran: no frame, no stream event.
    assert page.requests[sent_before:] == []
    hosts = {url.split("/")[2] for _, url in page.requests if url.startswith("http")}
    assert hosts == {server.url.split("/")[2]}
    page.screenshot(path=str(ROOT / "artifacts" / "live_browser_mode.png"))

    # The model dropdown switches the browser's model, and the faces are classified again.
    page.get_by_label("Model").first.click()
    page.get_by_role("option", name="CNN, small (ensemble member)").click()
    page.wait_for_function("window.ekspresiLive.model === 'cnn_small' && "
                           "window.ekspresiLive.status.textContent.includes('cnn_small, in this browser')",
                           timeout=60_000)
    page.evaluate("window.ekspresiLive.resetStats()")
    page.wait_for_function("window.ekspresiLive.summary().classified >= 3", timeout=30_000)
    assert page.evaluate("window.ekspresiLive.summary().model") == "cnn_small"

    # The server mode is one click away, and the browser's camera stops.
    page.get_by_label("On the server: frames are sent to it").check()
    page.wait_for_function("!window.ekspresiLive.running", timeout=10_000)
    page.locator("#live-cam").wait_for(state="visible", timeout=30_000)


def test_live_files_are_only_what_the_page_needs(server):
    import urllib.error
    import urllib.request

    config = json.loads(urllib.request.urlopen(server.url + "live/config.json").read())
    assert config["crop"]["scale"] > 1 and set(config["models"]) >= {"cnn", "cnn_small"}
    wasm = urllib.request.urlopen(server.url + "live/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm")
    assert wasm.headers["content-type"] == "application/wasm"
    for path in ("live/../app.py", "live/vendor/../../page.py", "live/models/..%2Fcnn.onnx", "live/app/x.js",
                 "live/detector/face_detection_full_range_sparse.tflite", "live/models/nothing.onnx"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + path)
        assert err.value.code == 404
