"""A real browser: Debian's Chromium driven by Playwright, with a fake webcam playing a face.

Screenshots go to artifacts/ (uploaded as test artefacts in CI).
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT
from PIL import Image
from server import multipart_files, running_app, start_upload, until, upload_when_free

from demo.guards.body_limit import MAX_UPLOAD_BYTES, UPLOADS_IN_FLIGHT_BYTES

CHROMIUM = os.environ.get("EKSPRESI_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"


def y4m_frame(image: Image.Image, size=(640, 480)) -> bytes:
    w, h = size
    ycbcr = np.asarray(image.convert("RGB").resize(size).convert("YCbCr"), dtype=np.float32)
    y = ycbcr[..., 0].astype(np.uint8)
    # 4:2:0 chroma: average each 2x2 block.
    cb, cr = (ycbcr[..., i].reshape(h // 2, 2, w // 2, 2).mean((1, 3)).astype(np.uint8) for i in (1, 2))
    return b"FRAME\n" + y.tobytes() + cb.tobytes() + cr.tobytes()


def write_y4m(path, scenes: list[tuple[Image.Image, int]], size=(640, 480), fps: int = 10):
    """A YUV4MPEG2 video at `fps`, (picture, frames) after each other, for
    --use-file-for-fake-video-capture (Chromium plays it in a loop)."""
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{size[0]} H{size[1]} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image, frames in scenes:
            f.write(y4m_frame(image, size) * frames)


def chromium_args(video) -> list[str]:
    """Headless Chromium, offline, its camera allowed and playing `video`."""
    return ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={video}"]


def need_chromium():
    """Skip where Chromium is missing; fail in CI, where .ci/run installs it."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}; .ci/run installs it")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    need_chromium()
    from playwright.sync_api import sync_playwright

    video = tmp_path_factory.mktemp("cam") / "face.y4m"
    empty_room = Image.new("RGB", (640, 480), (60, 60, 70))
    canvas = empty_room.copy()
    canvas.paste(Image.open(EXAMPLES / "astronaut.jpg").resize((420, 420)), (110, 30))
    # 3 s of a face, then 3 s of the empty room: the person leaves and comes back, over and over.
    write_y4m(video, [(canvas, 30), (empty_room, 30)])
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(video))
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    with running_app(tiny_models, tmp_path_factory.mktemp("server") / "app.log") as server:
        yield server


def open_page(browser, url):
    """The page with its Webcam tab in server mode (frames streamed to the server), which these tests check;
    tests/web/test_live_browser.py checks the browser mode."""
    context = browser.new_context(permissions=["camera"], viewport={"width": 1280, "height": 1100})
    pg = context.new_page()
    pg.goto(url + "?live=server", wait_until="load")
    return pg


@pytest.fixture(scope="module")
def page(browser, server):
    ARTIFACTS.mkdir(exist_ok=True)
    pg = open_page(browser, server.url)
    yield pg
    pg.context.close()


def test_upload_an_example_and_see_the_annotated_result(page):
    page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "four_faces.jpg"))
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("4 faces").wait_for(timeout=60_000)
    result = page.locator("img[alt='Result'], [data-testid='image'] img").last
    result.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "upload.png"), full_page=True)
    assert "top 3" in page.content()


def test_an_example_clicked_in_the_gallery_is_analysed(browser, server):
    """The gallery sends the clicked example's number, which the server now checks."""
    refused = server.log.read_text().count(" rejected ")
    pg = open_page(browser, server.url)
    try:
        pg.locator(".gallery-item:has(img[src*='four_faces'])").click()
        pg.get_by_role("button", name="Analyse").click()
        pg.get_by_text("4 faces").wait_for(timeout=60_000)
    finally:
        pg.context.close()
    assert server.log.read_text().count(" rejected ") == refused


def test_the_browser_keeps_no_history_of_runs(page, server):
    """Gradio 6 saves every run in localStorage by default (file names, each face's emotions) and
    shows them at /gradio_api/runs, long after the visitor has gone: on a shared computer, to the
    next person. Runs after test_upload_an_example_..., so a run has been made in this page."""
    assert "4 faces" in page.content()
    keys = page.evaluate("() => Object.keys(localStorage)")
    assert not [k for k in keys if "run-history" in k], keys
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{server.url}gradio_api/runs", timeout=30)
    assert err.value.code == 404


def test_bad_file_shows_a_message_in_the_page(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not a picture at all")
    page.locator("input[type=file]").first.set_input_files(str(bad))
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("not an image").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "bad_file.png"), full_page=True)


def test_an_upload_refused_while_the_server_is_busy_says_why(page, server):
    """Past the uploads-in-flight budget the next upload gets 503: the page shows the sentence."""
    budget = [start_upload(server.url, MAX_UPLOAD_BYTES) for _ in range(UPLOADS_IN_FLIGHT_BYTES // MAX_UPLOAD_BYTES)]
    budget.append(start_upload(server.url, UPLOADS_IN_FLIGHT_BYTES - len(budget) * MAX_UPLOAD_BYTES))
    try:
        page.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "astronaut.jpg"))
        page.get_by_text("HTTP 503: the server is receiving too many uploads at once; try again in a minute"
                         ).wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "upload_busy.png"), full_page=True)
    finally:
        for conn in budget:
            conn.close()
    assert upload_when_free(server.url, multipart_files(1, 1)) == 200  # budget back for the tests after


def test_video_tab_returns_a_clip_that_plays_in_the_browser(page, tmp_path):
    from clips import write_clip

    clip = write_clip(tmp_path / "clip.mp4", seconds=2)
    page.get_by_role("tab", name="Video").click()
    page.locator("input[type=file]").last.set_input_files(str(clip))
    page.get_by_role("button", name="Analyse video").click()
    page.get_by_text("1 face tracked").wait_for(timeout=120_000)
    played = page.evaluate("""async () => {
        // The result is the last <video> with a file behind it (the upload's preview comes first).
        const v = [...document.querySelectorAll('video')].filter(v => v.src && !v.srcObject).pop();
        if (!v) return 'no annotated video element';
        v.muted = true;
        if (v.readyState < 1) await new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}));
        await v.play();
        await new Promise(r => setTimeout(r, 700));
        return {duration: v.duration, advanced: v.currentTime > 0.2, w: v.videoWidth, src: v.src.slice(-40)};
    }""")
    page.screenshot(path=str(ARTIFACTS / "video.png"), full_page=True)
    assert isinstance(played, dict), played
    assert played["advanced"] and played["w"] == 640 and played["src"].endswith("annotated.mp4"), played
    assert abs(played["duration"] - 2.0) < 0.15, played  # the AAC track's padding may add a few ms


MIRRORED_PREVIEW = """() => { const v = document.querySelector('video[data-testid="webcam-video"]');
    return v && v.videoWidth > 0 && getComputedStyle(v).transform === 'matrix(-1, 0, 0, 1, 0, 0)'; }"""


def start_webcam(pg):
    """Open the Webcam tab, allow the camera, see its mirrored preview, and start streaming."""
    pg.get_by_role("tab", name="Webcam").click()
    pg.get_by_text("Click to Access Webcam").click()
    pg.wait_for_function(MIRRORED_PREVIEW, timeout=30_000)
    pg.get_by_label("capture photo").first.click()


def test_webcam_tab_streams_annotated_frames(page):
    # The preview is a mirror, as people expect of their own camera (the server mirrors the frames).
    start_webcam(page)
    page.wait_for_function("() => /cnn · \\d+ ms per frame.*1 face ·/.test(document.body.innerText)", timeout=60_000)
    # The annotated frame is the live result beside the camera, whose (mirrored) preview stays.
    # Waited for: a check at one instant can catch the <img> before a frame is decoded (naturalWidth 0, seen in CI).
    page.wait_for_function("""() => { const img = document.querySelector('#live-result img');
        return img && img.src.startsWith('data:image/jpeg;base64') && img.naturalWidth === 640; }""",
                           timeout=30_000)
    preview = page.evaluate("""() => { const v = document.querySelector('#live-cam video[data-testid="webcam-video"]');
        return getComputedStyle(v).display !== 'none' && v.videoWidth; }""")
    assert preview == 640, preview
    page.screenshot(path=str(ARTIFACTS / "webcam.png"), full_page=True)
    # No face in view: the stream goes on (a frame without a face used to end it with an error) ...
    page.wait_for_function("() => /ms per frame.*· 0 faces/.test(document.body.innerText)", timeout=30_000)
    # ... and picks the face up again when it comes back.
    page.wait_for_function("() => /ms per frame.*1 face ·/.test(document.body.innerText)", timeout=30_000)
    # The timeline of the largest face is drawn beside it.
    page.wait_for_function("""() => [...document.querySelectorAll('img')].filter(
        im => im.src.startsWith('data:image/jpeg') && im.naturalWidth === 480).length === 1""", timeout=30_000)
    # Switching the model mid-stream: the next frames come from the other model.
    page.get_by_label("Model").first.click()
    page.get_by_role("option", name="seed_cnn").click()
    page.wait_for_function("() => /seed_cnn · \\d+ ms per frame/.test(document.body.innerText)", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "webcam_switched.png"), full_page=True)
    # Stop: no new frames come back.
    page.get_by_label("capture photo").first.click()
    page.wait_for_timeout(1500)
    before = page.evaluate("document.body.innerText.match(/seed_cnn · .* ms per frame[^\\n]*/)[0]")
    page.wait_for_timeout(1500)
    assert page.evaluate("document.body.innerText.match(/seed_cnn · .* ms per frame[^\\n]*/)[0]") == before


def test_a_long_webcam_stream_does_not_pile_up_in_the_page(browser, server):
    """A viewer may leave the webcam on for an hour: the page must not keep something of every
    frame. (With the camera as the stream's output too, Gradio's page left a status tracker
    and its animation-frame timer behind for each frame: ~240 DOM nodes a second, and the
    script time per frame grew until the frame rate halved in 8 minutes.)"""
    pg = open_page(browser, server.url)
    cdp = pg.context.new_cdp_session(pg)
    cdp.send("Performance.enable")

    def nodes_and_changes():
        cdp.send("HeapProfiler.collectGarbage")  # what is left is what the page still holds
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return metrics["Nodes"], pg.evaluate("window.__changes")

    start_webcam(pg)
    pg.wait_for_function("() => /ms per frame/.test(document.body.innerText)", timeout=60_000)
    pg.evaluate("""() => { window.__changes = 0; new MutationObserver(() => window.__changes++).observe(
        document.querySelector('#live-result'), {attributes: true, childList: true, subtree: true}); }""")
    pg.wait_for_timeout(3000)
    nodes_before, changes_before = nodes_and_changes()
    pg.wait_for_timeout(20_000)
    nodes_after, changes_after = nodes_and_changes()
    pg.context.close()
    assert changes_after - changes_before > 20, "the live result stopped changing: this measures nothing"
    assert nodes_after - nodes_before < 300, (nodes_before, nodes_after, changes_after - changes_before)


def test_closing_the_tab_drops_the_viewers_timeline_at_once(browser, server):
    """What the server knows of a webcam viewer (where their face was, what it showed, for the
    last 30 s) goes when their tab closes, not an hour later as a gr.State would."""
    gone = "webcam viewer gone (tab closed)"
    pg = open_page(browser, server.url)
    start_webcam(pg)
    pg.wait_for_function("() => /ms per frame.*1 face ·/.test(document.body.innerText)", timeout=60_000)
    before = server.log.read_text().count(gone)
    pg.close()  # mid-stream, as people do
    until(lambda: server.log.read_text().count(gone) > before, 20, lambda: server.log.read_text()[-2000:])
    assert server.log.read_text().count(gone) == before + 1, server.log.read_text()[-2000:]
    pg.context.close()


def test_webcam_benchmark_reads_frame_numbers_back_from_the_screen(tiny_models, tmp_path):
    """bench/webcam.py end to end, briefly: frames are shown and their lag is measured."""
    need_chromium()
    r = subprocess.run([sys.executable, "bench/webcam.py", "--seconds", "4", "--idle-seconds", "1", "--warm-seconds", "6",
                        "--cases", "0", "3", "--weights", str(tiny_models), "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    browser_case, server_case = json.loads((tmp_path / "webcam.json").read_text())["cases"]
    [viewer] = browser_case["viewers"]  # browser mode: the overlay drawn in the page, nothing sent
    assert viewer["fps"] > 1 and viewer["requests_to_server"] == 0 and viewer["emotion_age_p95_ms"] is not None
    [viewer] = server_case["viewers"]
    assert viewer["fps"] > 1 and 0 <= viewer["lag_p50_ms"] < 2000 and viewer["requests_to_server"] > 0
    assert len(viewer["lag_p50_by_10s_ms"]) == 1  # 4 seconds: one window of the backlog series
    assert viewer["last_readout"].startswith("cnn · ")
