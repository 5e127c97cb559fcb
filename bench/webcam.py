"""Live webcam in a real browser: delivered frames per second and capture-to-display lag.

    python bench/webcam.py [--seconds 60] [--out bench/results] [--readme README.md]

Headless Chromium (Debian's, set up by Playwright) gets a fake camera that plays a
640 x 480, 30 fps video whose every frame carries its own number as eight black or white
squares in the top-left corner. In the page, a sampler reads the number of the frame the
camera shows now (the <video>) and of the annotated frame on screen (the live result's
<img>, mirrored like the preview, so its squares sit top-right in reverse order); their
difference is the lag. It runs against the real server (python app.py) in both live modes. Server mode (frames sent
to the server, annotated frames back): one, two and four viewers with the default model, and one
viewer with a slower model (the ensemble of two copies of the shipped cnn, which doubles the
model's work). Browser mode (detector and model in the page, demo/web/browser/): one, two and four
viewers; there the sampler reads the overlay canvas, which shows the camera frame the boxes were
computed on, and the page reports how old each face's emotion is. Every case also counts the
server process's CPU seconds per viewer-minute and the page's requests to the server while it is
measured. Writes webcam.json and webcam.md, and with --readme a line between the README's webcam markers.

Playwright only sets the pages up and reads the samples back: it connects to a Chromium
started here over the DevTools protocol, gives each window (two to a browser context, whose
connections to the server they share) a timetable to start, measure and stop by, and
disconnects until the measured seconds are over. Attached, it receives an event for every
request of every stream, and on these two cores, shared by the server and the viewers' pages,
that traffic cost two viewers about 40 % of their frame rate (`--attached` measures it) and
kept a fourth server-mode viewer from starting at all. A viewer's own browser carries no such load.
A benchmark, not a test: nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.readme import write_results  # noqa: E402
from tests.server import running_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("EKSPRESI_CHROMIUM", "/usr/bin/chromium")
FPS, LOOP = 30, 120  # the fake camera: 30 frames a second, 4 seconds, then again from the start
BITS, SQUARE, MARGIN = 8, 20, 10  # frame number: 8 squares of 20 px, 10 px from the top-left corner
SIZE = (640, 480)
IDLE_S = 15

READER = """  // Reads only the strip with the squares (a full-frame copy per sample would slow the page).
  const stripW = margin + bits * square + margin, stripH = margin + square + margin;
  const canvas = document.createElement('canvas'); canvas.width = stripW; canvas.height = stripH;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const read = (el, w, mirrored) => {
    if (!w) return null;
    const s = w / width;  // the page may capture the camera smaller: read its strip scaled back
    ctx.drawImage(el, mirrored ? w - stripW * s : 0, 0, stripW * s, stripH * s, 0, 0, stripW, stripH);
    const data = ctx.getImageData(0, 0, stripW, stripH).data;
    let n = 0;
    for (let i = 0; i < bits; i++) {
      const x = margin + i * square + square / 2, y = margin + square / 2;
      const px = ((y * stripW) + (mirrored ? stripW - x : x)) * 4;
      n = n * 2 + ((data[px] + data[px + 1] + data[px + 2]) / 3 > 128 ? 1 : 0);
    }
    return n < loop ? n : null;
  };
"""

SAMPLER = """({bits, square, margin, loop, fps, width}) => {
""" + READER + """  // Reads each annotated frame once, when the browser has decoded it (a capturing listener on
  // the document sees every <img>'s load event): polling the page would cost the renderer
  // CPU that a real viewer's browser does not spend, and two viewers share two cores here.
  window.__samples = []; let last = null;
  document.addEventListener('load', (event) => {
    const img = event.target;
    if (img.tagName !== 'IMG') return;
    const video = document.querySelector('video[data-testid="webcam-video"]');
    const live = document.getElementById('live-result');
    if (!video || !live || !live.contains(img) || !img.src.startsWith('data:')) return;
    if (window.__until && Date.now() > window.__until) return;  // the measured seconds are over
    const shown = read(img, img.naturalWidth, true);
    if (shown === null || shown === last) return;
    last = shown;
    const now = read(video, video.videoWidth, false);
    if (now === null) return;
    window.__samples.push([performance.now(), shown, ((now - shown) % loop + loop) % loop * 1000 / fps]);
  }, true);
}"""


BROWSER_SAMPLER = """({bits, square, margin, loop, fps, width}) => {
""" + READER + """  // Each overlay frame once, as it is drawn: the canvas holds the camera frame its boxes were
  // computed on, the <video> the frame the camera shows now.
  window.__samples = []; let last = null;
  const live = window.ekspresiLive, draw = live.draw.bind(live);
  live.draw = (tracks) => {
    draw(tracks);
    if (window.__until && Date.now() > window.__until) return;
    const shown = read(live.canvas, live.canvas.width, true);
    if (shown === null || shown === last) return;
    last = shown;
    const now = read(live.video, live.video.videoWidth, false);
    if (now === null) return;
    window.__samples.push([performance.now(), shown, ((now - shown) % loop + loop) % loop * 1000 / fps]);
  };
}"""


# Each window's own timetable, on the wall clock all windows share: start its live overlay, begin
# and end the measured seconds, and in server mode stop the stream. Nothing drives the pages
# from outside while streams run (Playwright is disconnected).
TIMETABLE = """({mode, start, from, until, stop}) => {
  const at = (t, f) => setTimeout(f, Math.max(0, t - Date.now()));
  const button = () => document.querySelector(
    mode === 'browser' ? '.ekspresi-live-start' : '#live-cam button.capture-button');
  window.__until = until;
  at(start, () => button().click());
  at(from, () => {
    window.__samples = [];
    window.__requestsBefore = performance.getEntriesByType('resource').length;
    if (window.ekspresiLive) window.ekspresiLive.resetStats();
  });
  if (stop) at(stop, () => button().click());
}"""
STAGGER_S = 3  # between two windows' starts
WINDOWS_PER_CONTEXT = 2
WARM_S = 15  # default: from the last start to the measured seconds, models loaded, streams steady
LEAD_S = 5  # from the timetable's installation to the first start: Playwright disconnects meanwhile
STOP_AFTER_S = 10  # server mode: streams stop this long after the measured seconds, the screenshot taken


def frame_with_number(base: Image.Image, n: int) -> Image.Image:
    im = base.copy()
    for i in range(BITS):
        bit = (n >> (BITS - 1 - i)) & 1
        x = MARGIN + i * SQUARE
        im.paste((255, 255, 255) if bit else (0, 0, 0), (x, MARGIN, x + SQUARE, MARGIN + SQUARE))
    return im


def write_numbered_y4m(path: Path) -> None:
    base = Image.new("RGB", SIZE, (60, 60, 70))
    base.paste(Image.open(ROOT / "examples" / "astronaut.jpg").resize((420, 420)), (110, 40))
    w, h = SIZE
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for n in range(LOOP):
            ycc = np.asarray(frame_with_number(base, n).convert("YCbCr"), dtype=np.float32)
            cb, cr = (ycc[..., i].reshape(h // 2, 2, w // 2, 2).mean((1, 3)).astype(np.uint8) for i in (1, 2))
            f.write(b"FRAME\n" + ycc[..., 0].astype(np.uint8).tobytes() + cb.tobytes() + cr.tobytes())


def open_viewer(browser, url: str, model_label: str | None, mode: str = "server", context_id: str | None = None):
    """A new window on the Webcam tab in `mode`, ready to start (the camera is allowed by flag).

    A window each, not a tab each: of two tabs in one window only the front one is visible
    and gets animation frames, and a click in the other waited for one that never came (3
    setups in 7 failed so). The window opens in the browser context `context_id` (default: the
    browser's own), made over CDP, so it outlives Playwright's disconnect (a context Playwright
    creates closes with it); Playwright lists every such window in its default context.
    """
    target = {"url": "about:blank", "newWindow": True}
    if context_id:
        target["browserContextId"] = context_id
    with browser.contexts[0].expect_page() as opened:
        browser.new_browser_cdp_session().send("Target.createTarget", target)
    page = opened.value
    page.set_default_timeout(180_000)  # four windows and the server share two cores
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"{url}?live={mode}", wait_until="load")
    page.evaluate("performance.setResourceTimingBufferSize(1000000)")  # count every request while measured
    if model_label:
        page.get_by_label("Model").first.click()
        page.get_by_role("option", name=model_label).click()
    page.get_by_role("tab", name="Webcam").click()
    if mode == "browser":
        page.wait_for_function("window.ekspresiLive && / in this browser$/.test(window.ekspresiLive.status.textContent)")
    else:
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#live-cam button.capture-button").wait_for()
    page.evaluate(BROWSER_SAMPLER if mode == "browser" else SAMPLER,
                  {"bits": BITS, "square": SQUARE, "margin": MARGIN, "loop": LOOP, "fps": FPS, "width": SIZE[0]})
    return page


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_chromium(video: Path, work: Path):
    """Headless Chromium with the numbered fake camera, listening for DevTools: (process, endpoint)."""
    profile = work / f"profile-{time.monotonic_ns()}"
    flags = ["--headless=new", "--remote-debugging-port=0", f"--user-data-dir={profile}", "--no-sandbox",
             "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--disable-dev-shm-usage", "--use-fake-device-for-media-stream",
             "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={video}",
             "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
             "--disable-backgrounding-occluded-windows"]
    proc = subprocess.Popen([CHROMIUM, *flags, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"  # Chromium writes the port it picked here
    deadline = time.time() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise SystemExit(f"{CHROMIUM} did not start")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port_file.read_text().split()[0]}"


def summarise(samples: list, seconds: float) -> dict:
    t = np.array([s[0] for s in samples]) / 1000
    lag = np.array([s[2] for s in samples])
    if len(t) < 2:
        return {"frames_shown": int(len(t)), "fps": 0.0}
    span = t[-1] - t[0]
    first, last = lag[t < t[0] + 10], lag[t > t[-1] - 10]
    window = ((t - t[0]) // 10).astype(int)  # which 10 s of the run each sample fell in
    return {"seconds": round(float(span), 1), "frames_shown": int(len(t)), "fps": round(float(len(t) / span), 1),
            "frames_dropped": int(round(span * FPS)) - int(len(t)),
            "lag_p50_ms": round(float(np.percentile(lag, 50)), 1), "lag_p95_ms": round(float(np.percentile(lag, 95)), 1),
            "lag_first_10s_p50_ms": round(float(np.median(first)), 1),
            "lag_last_10s_p50_ms": round(float(np.median(last)), 1),
            # A backlog would show as a rising series (the server keeps only the newest frame).
            "lag_p50_by_10s_ms": [round(float(np.median(lag[window == w])), 1) for w in np.unique(window)]}


def run_case(pw, video: Path, work: Path, server, viewers: int, model_label: str | None, seconds: float,
             attached: bool = False, mode: str = "server", screenshot: Path | None = None,
             warm_s: float = WARM_S) -> tuple[list[dict], dict]:
    """Each viewer's figures over `seconds`, one window each in a fresh Chromium; and the server's.

    Every window is set up first, then each runs its own timetable (TIMETABLE) with Playwright
    disconnected: attached, Playwright receives an event for every request of every stream, and
    with three server-mode streams it fell so far behind that a fourth window's start click was
    never acknowledged (3 minutes).
    """
    url = server.url
    chromium, endpoint = start_chromium(video, work)
    try:
        browser = pw.chromium.connect_over_cdp(endpoint)
        # One browser context holds at most 6 connections to a host, and a server-mode viewer keeps
        # two open (the stream's events and Gradio's heartbeat): four windows of one context left
        # two streams waiting. So each pair of windows shares a context: the first pair the
        # browser's own, each further pair a new one (one window in a new context drew 26.7 frames
        # a second in browser mode, against 29.7 in the browser's own: new contexts are off the record).
        cdp = browser.new_browser_cdp_session()
        contexts = [None] + [cdp.send("Target.createBrowserContext")["browserContextId"]
                             for _ in range(1, -(-viewers // WINDOWS_PER_CONTEXT))]
        pages = [open_viewer(browser, url, model_label, mode, contexts[i // WINDOWS_PER_CONTEXT])
                 for i in range(viewers)]
        start = time.time() + LEAD_S
        measured_from = start + (viewers - 1) * STAGGER_S + warm_s
        until = measured_from + seconds
        stop = until + STOP_AFTER_S if mode == "server" else None
        for i, page in enumerate(pages):
            page.evaluate(TIMETABLE, {"mode": mode, "start": (start + i * STAGGER_S) * 1000,
                                      "from": measured_from * 1000, "until": until * 1000,
                                      "stop": stop and stop * 1000})
        if not attached:
            browser.close()  # over CDP this only disconnects: the pages go on, unobserved
        sleep_until(measured_from)
        cpu_before = cpu_seconds(server.proc.pid)
        sleep_until(until)
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        if not attached:  # a new connection has new page objects for the same windows
            browser = pw.chromium.connect_over_cdp(endpoint)
            pages = [page for page in browser.contexts[0].pages if page.url.startswith(url)]
        if screenshot:  # the live tab as its viewer sees it, overlay on the face (server mode: still streaming)
            pages[0].screenshot(path=str(screenshot), full_page=True)
        if stop:
            sleep_until(stop + 2)  # read back once the streams have stopped, their events with them
        results = []
        for page in pages:
            result = summarise(page.evaluate("window.__samples"), seconds)
            # Requests the page made to the server while measured (a stream's frames among them).
            result["requests_to_server"] = page.evaluate(
                "performance.getEntriesByType('resource').slice(window.__requestsBefore)"
                ".filter((e) => e.name.includes('/gradio_api/')).length")
            if mode == "browser":
                live = page.evaluate("window.ekspresiLive.summary()")
                result["emotion_age_p95_ms"] = round(live["age_p95"], 1) if live["age_p95"] is not None else None
                result["emotion_age_max_ms"] = round(live["age_max"], 1) if live["age_max"] is not None else None
                result["classify_ms_p50"] = live["classify_ms_p50"] and round(live["classify_ms_p50"], 1)
                result["overlay_fps"] = round(live["fps"], 1)
                # The page's own clock, finer than one camera frame: from the frame's capture time
                # to its overlay drawn.
                result["page_lag_p50_ms"] = round(live["lag_p50"], 1)
                result["page_lag_p95_ms"] = round(live["lag_p95"], 1)
                result["last_readout"] = page.locator(".ekspresi-live-readout").text_content()
            else:
                readout = re.findall(r"\S+ · \d+ ms per frame[^\n]*", page.evaluate("document.body.innerText"))
                result["last_readout"] = readout[0] if readout else ""
            results.append(result)
        browser.close()
        idle = server.idle_cpu_s_per_minute * seconds / 60  # what the server spends with nobody watching
        return results, {"cpu_s_per_viewer_minute": round(cpu / viewers / (seconds / 60), 2),
                         "cpu_s_per_viewer_minute_above_idle": round((cpu - idle) / viewers / (seconds / 60), 2),
                         "idle_cpu_s_per_minute": round(server.idle_cpu_s_per_minute, 2)}
    finally:
        chromium.terminate()
        chromium.wait(30)


def page_lag(viewer: dict) -> str:
    """The browser mode's lag on the page's own clock, finer than one camera frame."""
    return f" ({viewer['page_lag_p95_ms']:.0f})" if "page_lag_p95_ms" in viewer else ""


def cpu(figures: dict) -> str:
    if "cpu_s_per_viewer_minute" not in figures:
        return "-"
    return f"{figures['cpu_s_per_viewer_minute']:.2f} ({figures['cpu_s_per_viewer_minute_above_idle']:.2f})"


def markdown(result: dict) -> str:
    lines = ["| case | viewer | fps shown | frames dropped | lag p50 ms | lag p95 ms | lag p50 ms, each 10 s | "
             "emotion age p95 / max ms | requests to the server | server CPU s per viewer-minute (above idle) |",
             "|---|---:|---:|---:|---:|---:|---|---|---:|---:|"]
    for case in result["cases"]:
        if case.get("error"):
            lines.append(f"| {case['name']} | - | failed: {case['error']} | | | | | | | |")
        for i, v in enumerate(case["viewers"], 1):
            age = (f"{v['emotion_age_p95_ms']:.0f} / {v['emotion_age_max_ms']:.0f}"
                   if v.get("emotion_age_p95_ms") is not None else "-")
            lines.append(f"| {case['name']} | {i} | {v['fps']} | {v.get('frames_dropped', '-')} | "
                         f"{v.get('lag_p50_ms', '-')} | {v.get('lag_p95_ms', '-')}{page_lag(v)} | "
                         f"{' '.join(f'{x:.0f}' for x in v.get('lag_p50_by_10s_ms', []))} | {age} | "
                         f"{v.get('requests_to_server', '-')} | {cpu(case.get('server', {}))} |")
    lines += ["", f"Headless Chromium with a 640 x 480, {FPS} fps fake camera, the server on the same machine "
                  f"({result['machine']}), {result['seconds']:.0f} s per case. Lag: from the camera showing a "
                  f"frame to the annotated frame on screen (browser mode: to the overlay drawn with the boxes computed on "
                  f"it), read from numbers drawn into the frames "
                  f"(resolution one camera frame, {1000 / FPS:.0f} ms; 0 means the overlay was drawn on the frame the camera "
                  f"still showed). In brackets, browser mode: the same lag p95 on the page's own clock, from the "
                  f"frame's capture time to its overlay drawn. Emotion age: how long ago the emotion shown on a face was "
                  f"computed. "
                  + ("Playwright stayed connected while measuring. " if result.get("playwright_attached") else
                     "Playwright sets the tabs up, then disconnects while they are measured. ")
                  + "Server CPU: the app process's user and system seconds while measured, per viewer and minute; "
                  + "in brackets less what the same server spent idle, with no page open, over "
                  + f"{result['idle_seconds']:.0f} s before the case (Gradio's own loops). Written by `python bench/webcam.py`."]
    return "\n".join(lines) + "\n"


def run_cases(args, work: Path) -> dict:
    """Serve the shipped weights and a slow pair of models in turn; measure each case in Chromium."""
    from playwright.sync_api import sync_playwright

    video = work / "numbered.y4m"
    write_numbered_y4m(video)
    keras_files = sorted(args.weights.glob("*.keras"))
    default = keras_files[0].stem
    # The slow case: the ensemble of the shipped model and a copy of it, twice the model's work.
    slow = work / "weights-slow"
    slow.mkdir()
    for suffix in (".keras", ".json"):
        shutil.copy(keras_files[0].with_suffix(suffix), slow / f"{default}{suffix}")
        shutil.copy(keras_files[0].with_suffix(suffix), slow / f"{default}_copy{suffix}")
    cases = [(f"browser mode, {default}, {n} viewer{'s' if n > 1 else ''}", args.weights, n, None, "browser")
             for n in (1, 2, 4)]
    cases += [(f"server mode, {default}, {n} viewer{'s' if n > 1 else ''}", args.weights, n, None, "server")
              for n in (1, 2, 4)]
    cases.append(("server mode, ensemble of 2 (slow), 1 viewer", slow, 1, "Ensemble of 2 models", "server"))
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "seconds": args.seconds, "idle_seconds": args.idle_seconds, "warm_seconds": args.warm_seconds, "camera_fps": FPS, "playwright_attached": args.attached, "model": default, "cases": []}
    with sync_playwright() as pw:
        # Two viewers are two windows of one browser: a second browser process on the same two
        # cores measured slower still (4 frames a second each against 6).
        for i, (name, weights, viewers, label, mode) in enumerate(cases):
            if args.cases is not None and i not in args.cases:
                continue
            with running_app(weights, work / f"app-{i}.log", tmp=work) as server:
                # As it starts the app exports each model to ONNX for browser mode (a child process,
                # tens of seconds of CPU): wait for them, so that no case measures them.
                for model in sorted(weights.glob("*.keras")):
                    urllib.request.urlopen(f"{server.url}live/models/{model.stem}.onnx", timeout=600).read()
                before = cpu_seconds(server.proc.pid)
                time.sleep(args.idle_seconds)  # the server's own cost with no viewer, the CPU column's baseline
                server.idle_cpu_s_per_minute = (cpu_seconds(server.proc.pid) - before) / args.idle_seconds * 60
                print(f"{name} ...", flush=True)
                shot = args.out / f"webcam_{mode}.png" if viewers == 1 and label is None else None
                try:
                    viewers_result, figures = run_case(pw, video, work, server, viewers, label, args.seconds,
                                                       args.attached, mode, shot, args.warm_seconds)
                except Exception as e:  # one case failing keeps the others' figures
                    print(f"{name} failed: {e}", flush=True)
                    result["cases"].append({"name": name, "mode": mode, "viewers": [],
                                            "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"})
                    continue
                print(viewers_result, figures, flush=True)
                result["cases"].append({"name": name, "mode": mode, "viewers": viewers_result, "server": figures})
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=40)
    p.add_argument("--idle-seconds", type=float, default=IDLE_S,
                   help="how long the server is watched with no viewer before each case (its idle CPU)")
    p.add_argument("--warm-seconds", type=float, default=WARM_S,
                   help="from the last viewer's start to the measured seconds (models loaded, streams steady)")
    p.add_argument("--weights", type=Path, default=ROOT / "weights")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--readme", type=Path, help="rewrite the line between <!-- webcam:start/end --> here")
    p.add_argument("--cases", type=int, nargs="*", help="run only these cases (0-2: browser mode, 1, 2, 4 viewers; 3-5: server mode, the same; "
                        "6: server mode, slow model)")
    p.add_argument("--attached", action="store_true",
                   help="keep Playwright connected while measuring (its own cost then counts against the page)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ekspresi-webcam-"))
    try:
        result = run_cases(args, work)
    finally:  # the Chromium profiles in `work` take hundreds of MB, even after a failure
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(result)
    def viewers_line(mode):
        cases = [c for c in result["cases"] if c.get("mode") == mode and "slow" not in c["name"] and c["viewers"]]
        return "; ".join(f"{len(c['viewers'])} viewer{'s' if len(c['viewers']) > 1 else ''} "
                         f"{' / '.join(str(v['fps']) for v in c['viewers'])} fps (lag p95 "
                         f"{max(v.get('lag_p95_ms', 0) for v in c['viewers']):.0f} ms)" for c in cases)
    line = (f"Live webcam, measured by `bench/webcam.py` in headless Chromium on this 2-core machine with the "
            f"{result['model']} model: in browser mode (the default) {viewers_line('browser')}; in server mode "
            f"{viewers_line('server')} ([all cases](bench/results/webcam.md)).")
    write_results(args.out, "webcam", result, table, args.readme, line)
    print(table)
    return 1 if any(case.get("error") for case in result["cases"]) else 0  # figures kept, failure shown


if __name__ == "__main__":
    sys.exit(main())
