"""The Gradio page: model dropdown, image tab (/predict), video tab (/predict_video), live webcam tab."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.data_classes import ImageData
from gradio.exceptions import InvalidPathError
from gradio_client import utils as client_utils
from pydantic import ValidationError

from demo.guards.garbage import collect_soon
from demo.guards.gate import NOT_UPLOADED, image_from_payload, log_rejection, payload_size, uploaded_file
from demo.guards.queue_limits import MAX_WAITING, Abandoned, SessionQueue
from demo.guards.results import ResultFiles
from demo.guards.server_files import MAX_AGE_S
from demo.pipeline.analyse import analyse, annotate
from demo.pipeline.classify import ModelStore, ModelUnavailable
from demo.pipeline.faces import DEFAULT_DETECTOR, DETECTOR_KINDS, FaceDetector
from demo.pipeline.images import ImageError
from demo.pipeline.video import (
    MAX_SECONDS,
    MAX_VIDEO_BYTES,
    VideoError,
    analyse_video,
    faces_chart,
    write_csv,
    write_json,
)
from demo.pipeline.video import SUPPORTED as VIDEO_SUPPORTED
from demo.web.live import TIMELINE_EVERY_S, Viewers, jpeg_data_url, process_frame, timeline_image
from trainer.views import VIEW_SETS, describe

log = logging.getLogger("ekspresi.ui")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# The browser captures and sends a webcam frame every STREAM_EVERY_S; the server works on the
# newest one it has and drops the rest. Sent faster than the server keeps up (0.01 s: ~43 sent,
# 24 shown a second), the extra captures and uploads cost the same two cores, and each shown
# frame was ~90 ms from capture to screen. At 0.04 s nearly every frame sent is shown: 25 a
# second, 35 ms from capture to screen, lag p95 67 ms against 133-167 (bench/webcam.py; two
# viewers got 12-13 frames a second either way).
STREAM_EVERY_S = 0.04
# What the page asks of the camera: every frame is drawn, JPEG-encoded and sent by the browser,
# then decoded, annotated and encoded again by the server, so its pixel count sets the cost.
LIVE_CAPTURE = (640, 480)
EXPIRY = f"{MAX_AGE_S // 60} minutes"
PRIVACY = (f"The Webcam tab runs in your browser by default: no camera frame leaves it. In its server mode, "
           f"frames are analysed in memory and never written to disk, and the timeline of your faces' emotions "
           f"is forgotten when you close the tab. Images and videos you upload, and "
           f"their results, are deleted from the server within {EXPIRY}, and all of them when the server stops; "
           f"nothing is logged but a one-line reason when a file is refused.")
# The browser sends the camera's frames unmirrored (the server mirrors them: one canvas draw a
# frame fewer in the viewer's browser), so the camera's preview is mirrored here.
CSS = "#live-cam video { transform: scaleX(-1); }"
# Gradio keeps a copy of the page's config for every session, each API call's included, until
# this many newer sessions push it out: about 52 KB a session here (measured: 3,000 sessions
# past 2,000 added 153 MB at Gradio's default of 10,000, nothing at 1,000). Nothing the page
# needs lives there (Page clears the values; live viewers are in demo.web.live.Viewers).
SESSIONS_KEPT = 1000
NO_FACE = ("No face found. For an image that is already a cropped face (a FER2013 image, say), "
           "tick **Treat the whole image as one face**. The auto detector finds faces from about 40 px wide.")


class GatedImage(gr.Image):
    """gr.Image whose input goes through demo.guards.gate instead of Gradio's own decoding.

    Stock gr.Image.preprocess decodes data URLs with Pillow before any limit is checked and
    passes a raw API path ({"path": ...} without "meta") through unchecked. Here every payload,
    upload or webcam frame, becomes an RGB uint8 array by the gate's rules, or a clear gr.Error
    logged as one line. Only files in Gradio's upload folder (this server's private folder)
    and the shipped examples are opened.
    """

    def preprocess(self, payload) -> np.ndarray | None:
        if payload is None:
            return None
        try:
            return image_from_payload(payload, [Path(self.GRADIO_CACHE), EXAMPLES], expiry=EXPIRY)
        except ImageError as err:
            size = payload_size(payload)
            log_rejection(err, "webcam" if self.streaming else "image", size)
            collect_soon(size)  # Gradio keeps the refused request, body and all, until a full collection
            raise gr.Error(str(err), print_exception=False) from None
        except Exception:
            # Our bug: a traceback, but through our logger, so that Gradio's error message
            # (which quotes the start of the payload, image data included) is never printed.
            log.exception("reading an image failed")
            raise gr.Error("the server failed to read this image; please report it", print_exception=False) from None

    @classmethod
    def get_block_name(cls):
        return "image"


class GatedVideo(gr.Video):
    """gr.Video whose input is only ever a file uploaded to this server, handed over untouched.

    Stock gr.Video.preprocess may convert a clip with a system ffmpeg; demo.pipeline.video reads
    every container it supports with PyAV, and refuses the rest with a clear message.
    """

    def preprocess(self, payload) -> str | None:
        if payload is None:
            return None
        try:
            return str(uploaded_file(payload.path, [Path(self.GRADIO_CACHE)], expiry=EXPIRY))
        except ImageError as err:
            log_rejection(err, "video")
            raise gr.Error(str(err), print_exception=False) from None

    @classmethod
    def get_block_name(cls):
        return "video"


class InlineImage(gr.Image):
    """An output image sent as a JPEG data URL: never written to the server's disk, and shown
    without a second request (Gradio's own postprocess saves a file and sends its URL)."""

    def postprocess(self, value):
        return None if value is None else ImageData(url=jpeg_data_url(value))

    @classmethod
    def get_block_name(cls):
        return "image"


class Page(gr.Blocks):
    """gr.Blocks whose input refusals are one log line each instead of a traceback, and which
    keeps no copy of what users send or get back.

    Gradio refuses some inputs before our components see them (a file path that was not
    uploaded, a model name outside the dropdown's choices) and prints a traceback for each.
    They are the user's mistakes, not the server's, so they are logged like the gate's.
    Gradio's own message for a request with too few inputs quotes every input (a whole
    image as base64); this one names counts only.

    Some inputs Gradio acts on before our components see them: a file payload whose path is an
    http(s) URL (what gradio_client's handle_file(url) sends) would be downloaded by the server,
    from any public host and with no size limit (2 GB in 9.5 s, measured). This server opens
    only what was uploaded to it, so such a payload is refused like a server path, before
    anything is fetched. And an Examples gallery's number is checked before Gradio looks it up.

    Its queue refuses events past MAX_WAITING waiting, and from a session that leaves
    MAX_UNREAD messages unread (demo.guards.queue_limits).

    Gradio also keeps each session's last input and output values (for deep links, which
    this page does not offer) until SESSIONS_KEPT newer sessions push them out: every webcam
    viewer's last frame, in and annotated, and every image sent inline as a data URL would
    stay in the server's memory. 30 data URLs of 60 MB held 2.7 GB (measured). They are
    dropped as soon as Gradio has stored them.
    """

    def queue(self, *args, **kwargs):
        """Gradio's queue, bounded for clients that never read their answers (demo.guards.queue_limits).

        Its REST routes (/gradio_api/run/NAME, /gradio_api/api/NAME) run an event at once, outside
        the queue: no concurrency limit, no MAX_WAITING, not the video's one slot. Gradio closes
        them on Spaces only. Elsewhere, 24 maximal images sent to /run/predict at once took the
        server's peak memory to 15.8 GB, against 4.2 GB through the queue (measured). Closed
        everywhere here; gradio_client and the page use the queue.
        """
        kwargs.setdefault("max_size", MAX_WAITING)
        kwargs.setdefault("api_open", False)
        super().queue(*args, **kwargs)
        self._queue.__class__ = SessionQueue  # the same queue; only push() is bounded per session
        return self

    def validate_inputs(self, block_fn, inputs):
        if len(inputs) < len(block_fn.inputs):
            message = (f"{block_fn.name or 'this endpoint'} takes {len(block_fn.inputs)} inputs "
                       f"({', '.join(type(b).__name__.lower() for b in block_fn.inputs)}); the request had {len(inputs)}")
            log_rejection(ValueError(message), "request")
            raise gr.Error(message, print_exception=False)
        super().validate_inputs(block_fn, inputs)

    async def preprocess_data(self, block_fn, inputs, state, *args, **kwargs):
        try:
            if names_a_url(inputs):
                raise InvalidPathError("a file named by URL")
            check_example_numbers(block_fn.inputs, inputs)
            return await super().preprocess_data(block_fn, inputs, state, *args, **kwargs)
        except (InvalidPathError, ValidationError):
            # Gradio's own checks of a file payload: a path that was not uploaded, a {"path"} without
            # "meta" for a component that insists on it. Its messages name the path or quote the input.
            log_rejection(ImageError(NOT_UPLOADED), "file")
            raise gr.Error(NOT_UPLOADED, print_exception=False) from None
        except gr.Error as err:
            if err.print_exception:
                log_rejection(ValueError(err.message), "request")  # str(err) is the message's repr
                err.print_exception = False
            raise
        finally:
            forget_values(state, block_fn.inputs)

    async def postprocess_data(self, block_fn, predictions, state, *args, **kwargs):
        try:
            return await super().postprocess_data(block_fn, predictions, state, *args, **kwargs)
        finally:
            forget_values(state, block_fn.outputs)


def example_images() -> list[Path]:
    """The shipped images of the Upload tab's Examples gallery, in its order."""
    return sorted(p for p in EXAMPLES.glob("*") if p.suffix.lower() in (".jpg", ".png", ".webp"))


def names_a_url(inputs) -> bool:
    """Whether any file payload in these inputs names an http(s) URL for the server to fetch."""
    urls = []
    client_utils.traverse(inputs, lambda file: urls.append(client_utils.is_http_url_like(file["path"])),
                          client_utils.is_file_obj_with_meta)
    return any(urls)


def check_example_numbers(blocks, inputs) -> None:
    """An Examples gallery's input is the number of the example clicked; Gradio looks it up
    unchecked, and any other value was a traceback (a number past the end, None, a string)."""
    for block, value in zip(blocks, inputs):
        if isinstance(block, gr.Dataset) and not (type(value) is int and 0 <= value < len(block.raw_samples)):
            raise gr.Error(f"there is no such example; the examples are numbered 0 to {len(block.raw_samples) - 1}")


def forget_values(state, blocks) -> None:
    """Clear the values Gradio's session state copied from these components (see Page)."""
    for block in blocks if state is not None else ():
        config = state.config_values.get(block._id)
        if config and "props" in config:
            config["props"]["value"] = None


class Engine:
    """What all users share: the model cache and one face detector per kind."""

    def __init__(self, store: ModelStore):
        self.store = store
        self._detectors: dict[str, FaceDetector] = {}
        self._lock = threading.Lock()

    def detector(self, kind: str) -> FaceDetector:
        if not isinstance(kind, str) or kind not in DETECTOR_KINDS:  # an API call may send a list
            raise gr.Error(f"unknown detector {kind!r}; choose one of {', '.join(DETECTOR_KINDS)}",
                           print_exception=False)
        with self._lock:
            if kind not in self._detectors:
                self._detectors[kind] = FaceDetector(kind)
            return self._detectors[kind]

    def model(self, name: str):
        try:
            return self.store.get(name)
        except ModelUnavailable as err:
            raise gr.Error(str(err), print_exception=False) from None


def summary_markdown(faces: list[dict]) -> str:
    if not faces:
        return NO_FACE
    try:
        lines = [f"**{len(faces)} face{'s' if len(faces) > 1 else ''}**", ""]
        for i, f in enumerate(faces, 1):
            top3 = ", ".join(f"{label} {p:.0%}" for label, p in f["top3"])
            lines.append(f"{i}. **{f['label']}** {f['confidence']:.0%} (top 3: {top3})")
    except (KeyError, TypeError, ValueError):
        # The page sends back the faces /predict gave it; an API call may send anything.
        raise gr.Error("the summary is made from the faces /predict returns", print_exception=False) from None
    return "\n".join(lines)


def models_markdown(store: ModelStore) -> str:
    """One line per available model with its measured FER2013 test figures, if recorded."""
    path = store.folder / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    lines = []
    names = store.available()
    for name in names + (["ensemble"] if len(names) > 1 else []):
        ev = metrics.get(name, {}).get("evaluation")
        figures = (f"FER2013 test accuracy {ev['accuracy']:.3f}, macro F1 {ev['f1_macro']:.3f}"
                   if ev else "no recorded test metrics")
        served = (ev or {}).get("by_views", {}).get("served")
        if served:  # what this page computes per face: the served views and temperature
            how = describe(served["views"]) if served["views"] in VIEW_SETS else f"{served['views']} views"
            figures += (f"; as served here, {how}: accuracy {served['accuracy']:.3f}, "
                        f"calibration error {served['calibration']['ece_after']:.3f}")
        lines.append(f"- **{name}**: {figures}")
    return "\n".join(lines) or "No trained model in the weights folder yet."


LIVE_MODES = ("browser", "server")
BROWSER_MOUNT = ("const root = element.querySelector('.ekspresi-live') || element;"
                 "import('/live/app/live.mjs').then((m) => m.mount(root));")
BROWSER_MODEL = "(m) => { if (window.ekspresiLive) window.ekspresiLive.setModel(m); return [m]; }"
BROWSER_MODE = "(mode) => { if (mode !== 'browser' && window.ekspresiLive) window.ekspresiLive.stop(); return [mode]; }"


def show_mode(mode: str):
    """The browser's live block or the server's stream, never both."""
    mode = mode if mode in LIVE_MODES else "browser"
    return gr.update(visible=mode == "browser"), gr.update(visible=mode == "server")


def mode_from_address(request: gr.Request):
    """?live=server or ?live=browser (the default) in the page's address."""
    mode = request.query_params.get("live", "browser") if request else "browser"
    mode = mode if mode in LIVE_MODES else "browser"
    return (mode, *show_mode(mode))


def build_app(results: ResultFiles, store: ModelStore | None = None) -> gr.Blocks:
    """The page. `results` is where annotated images go: the server's private, swept folder (app.py)."""
    engine = Engine(store or ModelStore())
    viewers = Viewers()  # each webcam viewer's tracker and timeline, by session
    choices = engine.store.choices()
    default_model = engine.store.default()

    def predict(image, model_name, whole_image=False, detector=DEFAULT_DETECTOR):
        """Faces and emotions in one image: (annotated image, list of faces)."""
        if image is None:
            raise gr.Error("No image: upload a JPG, PNG or WebP file first.", print_exception=False)
        model = engine.model(model_name)
        rgb = image  # an RGB array: GatedImage has checked and decoded it
        faces = analyse(rgb, model, engine.detector(detector), bool(whole_image))
        return results.save_jpeg(annotate(rgb, faces)), faces

    def stream(frame, model_name, detector, request: gr.Request):
        """One webcam frame: the annotated frame (for the live result beside the camera), and the readout."""
        if frame is None:
            return gr.skip(), gr.skip()
        frame = frame[:, ::-1]  # the selfie view: mirrored here, not by a second draw in the browser
        try:
            model = engine.model(model_name)
        except gr.Error as err:
            return frame, f"⚠️ {err.message}"
        out, readout = process_frame(frame, model, engine.detector(detector), viewers.get(request.session_hash))
        return out, gr.skip() if readout is None else readout

    def predict_video(video, model_name, detector=DEFAULT_DETECTOR, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        """Faces and emotions in a clip: (annotated MP4, per-face chart, [CSV, JSON], summary)."""
        if video is None:
            raise gr.Error(f"No video: upload {VIDEO_SUPPORTED} first.", print_exception=False)
        model = engine.model(model_name)
        folder = results.new_folder()
        try:
            progress(0, desc="Analysing frames")
            info, rows, frames = analyse_video(video, folder / "annotated.mp4", model, engine.detector(detector),
                                               progress=lambda done, total: progress(
                                                   (done, max(total, done) if total else None),  # None: unknown
                                                   unit="frames"))
        except VideoError as err:
            shutil.rmtree(folder, ignore_errors=True)  # nothing partial is left behind
            log_rejection(err, "video")
            raise gr.Error(str(err), print_exception=False) from None
        except Abandoned:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("video analysis stopped: its user left")
            raise gr.Error("Stopped: the page was closed or the request cancelled.", print_exception=False) from None
        write_csv(rows, folder / "faces.csv", model.class_names)
        write_json(rows, folder / "faces.json", info, frames)
        ids = sorted({r.face_id for r in rows})
        summary = (f"**{frames} frames** ({info.seconds:.1f} s at {info.fps:g} fps, analysed at "
                   f"{info.output_size[0]} x {info.output_size[1]}); {len(ids)} face{'s' if len(ids) != 1 else ''} "
                   f"tracked, {len(rows)} face rows in the tables.")
        return (str(folder / "annotated.mp4"), faces_chart(rows, model.class_names, info.seconds),
                [str(folder / "faces.csv"), str(folder / "faces.json")], summary)

    def timeline(model_name, request: gr.Request):
        """The timeline chart, a few times a second, from the viewer's tracker (no model call)."""
        try:
            chart = timeline_image(viewers.peek(request.session_hash), engine.model(model_name).class_names)
        except gr.Error:
            chart = None
        return gr.skip() if chart is None else chart

    def leave(request: gr.Request):
        """The tab closed: their timeline goes now, not when Gradio would drop a State (an hour later)."""
        viewers.drop(request.session_hash)

    with Page(title="Ekspresi: facial emotion recognition") as app:
        gr.Markdown(
            "# Ekspresi\nFacial emotion recognition: MediaPipe finds every face, the selected Keras model "
            "classifies it as angry, disgust, fear, happy, neutral, sad or surprise."
        )
        with gr.Row():
            model_dd = gr.Dropdown(choices, value=default_model, label="Model", scale=2)
            detector_dd = gr.Dropdown([("Auto (faces from 40 px, any photo size)", "auto"),
                                       ("Full range, one pass (faster, faces from about 60 px)", "full"),
                                       ("Short range, one pass (fastest, close-ups only)", "short")],
                                      value=DEFAULT_DETECTOR, label="Face detector", scale=2)
            whole = gr.Checkbox(False, label="Treat the whole image as one face", scale=1)
        with gr.Accordion("About the models", open=False):
            gr.Markdown(models_markdown(engine.store))
        with gr.Tabs():
            with gr.Tab("Upload", id="upload") as upload_tab:
                with gr.Row():
                    with gr.Column():
                        image_in = GatedImage(type="numpy", sources=["upload", "clipboard"],
                                               label="Image (JPG, PNG, WebP)", height=420)
                        run = gr.Button("Analyse", variant="primary")
                    with gr.Column():
                        image_out = gr.Image(label="Result", format="jpeg", height=420, interactive=False)
                        summary = gr.Markdown()
                        faces_json = gr.JSON(label="Faces")
                examples = example_images()
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=[image_in], label="Examples")
            with gr.Tab("Video", id="video") as video_tab:
                with gr.Row():
                    with gr.Column():
                        video_in = GatedVideo(sources=["upload"], label=f"Video ({VIDEO_SUPPORTED}; up to "
                                              f"{MAX_VIDEO_BYTES // 2**20} MB and {MAX_SECONDS // 60} minutes)")
                        run_video = gr.Button("Analyse video", variant="primary")
                    with gr.Column():
                        video_out = gr.Video(label="Annotated video", interactive=False)
                        video_summary = gr.Markdown()
                video_chart = InlineImage(label="Each face's emotions over time", interactive=False, buttons=[])
                video_files = gr.File(label="Every face in every frame (CSV, JSON)", file_count="multiple",
                                      interactive=False)
            with gr.Tab("Webcam", id="webcam") as webcam_tab:
                live_mode = gr.Radio([("In this browser: no frame leaves it", "browser"),
                                      ("On the server: frames are sent to it", "server")],
                                     value="browser", label="Where the live analysis runs", elem_id="live-mode")
                with gr.Column(visible=True) as browser_group:
                    # demo/web/browser/live.mjs: detector, model and overlay in this page
                    # (demo/web/browser_files.py serves its files); the detector there is short range.
                    gr.HTML('<div class="ekspresi-live"></div>', elem_id="live-browser", js_on_load=BROWSER_MOUNT)
                with gr.Row(visible=False) as server_group:
                    # The camera is the stream's input only. Were it an output too (the annotated
                    # frame in place of its preview), Gradio 6.31's page would mount a status tracker
                    # in it for every frame and unmount it with its animation-frame timer still
                    # running: every frame left one more timer, so over 8 minutes of streaming the
                    # page's script time per frame grew from 16 to 44 ms and its frame rate fell
                    # from 24 to about 9 a second (a new tab was back at 22).
                    with gr.Column(scale=1):
                        cam = GatedImage(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                                         elem_id="live-cam",
                                         webcam_options=gr.WebcamOptions(
                                             mirror=False,
                                             constraints={"video": {"width": {"ideal": LIVE_CAPTURE[0]},
                                                                    "height": {"ideal": LIVE_CAPTURE[1]}}},
                                         ))
                        readout = gr.Markdown()
                    with gr.Column(scale=1):
                        live = InlineImage(label="Live result", interactive=False, buttons=[], elem_id="live-result")
                        plot = InlineImage(label="Largest face, last 30 seconds", interactive=False,
                                           buttons=[])
                ticker = gr.Timer(TIMELINE_EVERY_S, active=False)
        gr.Markdown(PRIVACY + " Intended for demonstration and research only; never use it to make decisions "
                    "about people.")

        event = run.click(predict, [image_in, model_dd, whole, detector_dd], [image_out, faces_json],
                          api_name="predict", concurrency_limit=4)
        event.then(summary_markdown, faces_json, summary, api_visibility="private")
        # Gradio keeps only the newest frame a stream has sent (each replaces the event's data):
        # a slow model lowers the frame rate instead of building a queue. A stream holds its
        # concurrency slot while it runs, so the limit is the number of live viewers at once.
        cam.stream(stream, [cam, model_dd, detector_dd], [live, readout], stream_every=STREAM_EVERY_S,
                   time_limit=600, concurrency_limit=8, api_visibility="private", show_progress="hidden")
        ticker.tick(timeline, [model_dd], plot, api_visibility="private", show_progress="hidden")
        app.unload(leave)
        # The server's timeline chart ticks in server mode only: the browser mode draws its own.
        webcam_tab.select(lambda mode: gr.Timer(active=mode == "server"), live_mode, ticker, api_visibility="private")
        # The browser mode follows the model dropdown in the page itself; ?live=server or
        # ?live=browser in the address picks the mode, the radio switches it.
        model_dd.change(None, model_dd, None, js=BROWSER_MODEL)
        live_mode.change(lambda mode: (*show_mode(mode), gr.Timer(active=mode == "server")), live_mode,
                         [browser_group, server_group, ticker], api_visibility="private", js=BROWSER_MODE,
                         show_progress="hidden")
        app.load(mode_from_address, None, [live_mode, browser_group, server_group], api_visibility="private",
                 show_progress="hidden")
        for tab in (upload_tab, video_tab):
            tab.select(lambda: gr.Timer(active=False), None, ticker, api_visibility="private")
        run_video.click(predict_video, [video_in, model_dd, detector_dd], [video_out, video_chart, video_files,
                        video_summary], api_name="predict_video", concurrency_limit=1)
    return app

