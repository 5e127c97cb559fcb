"""The live webcam's browser mode: every file its page loads, served by this app from pinned copies.

    GET /live/config.json          classes, colours, crop and tracking constants, each model's views and temperature
    GET /live/app/NAME.mjs         the page's own ES modules (demo/web/browser/)
    GET /live/vendor/PKG/FILE      @mediapipe/tasks-vision and onnxruntime-web, as SHA256SUMS lists them
    GET /live/detector/FILE        the server's own BlazeFace file (weights/)
    GET /live/models/NAME.onnx     the model's ONNX export, made from NAME.keras on first request

Nothing is fetched from elsewhere: a page on a machine without internet, or behind a CDN block,
works. The ONNX files are not committed: `trainer.export` writes them in a child process (it
imports TensorFlow's converter, which the serving process has no need to hold) into
.cache/browser_models/ under the .keras file's hash, so a retrained model is exported again.
No frame reaches these routes: they only send files out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import anyio

from demo.guards.answers import send_answer
from demo.pipeline.classify import ENSEMBLE, ModelStore
from demo.pipeline.faces import CROP_SCALE, CROP_SHIFT_UP, WEIGHTS
from demo.pipeline.overlay import colour_for
from demo.pipeline.tracking import ALPHA, HISTORY_S, MIN_IOU
from trainer.calibration import serving
from trainer.views import VIEW_SETS

log = logging.getLogger("ekspresi.browser")

ROOT = Path(__file__).resolve().parents[2]
APP_FILES = Path(__file__).resolve().parent / "browser"
VENDOR = APP_FILES / "vendor"
PREFIX = "/live/"
# The browser detects with the short-range BlazeFace: webcam faces are near, and it is the
# detector MediaPipe Tasks for the Web runs as it is (the full-range file needs other anchors).
DETECTOR = "face_detection_short_range.tflite"
MIN_DETECTION_CONFIDENCE = 0.5  # demo.pipeline.faces.FaceDetector's default
CACHE = Path(os.environ.get("EKSPRESI_CACHE") or ROOT / ".cache") / "browser_models"
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".json": "application/json", ".onnx": "application/octet-stream", ".tflite": "application/octet-stream"}


def vendored() -> dict[str, str]:
    """{path under vendor/: sha256} of the pinned library files (tools/vendor_browser.sh)."""
    sums = VENDOR / "SHA256SUMS"
    if not sums.is_file():
        return {}
    return {name: digest for digest, name in (line.split() for line in sums.read_text().splitlines() if line.strip())}


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


class OnnxExports:
    """NAME.onnx for each NAME.keras of the store's folder, exported once per file version."""

    def __init__(self, store: ModelStore, cache: Path = CACHE):
        self.store, self.cache = store, cache
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, name: str) -> Path:
        """The ONNX file of model `name` (a file of the store, never the ensemble), exported if missing."""
        if name not in self.store.available():
            raise FileNotFoundError(f"no model {name!r}")
        source = self.store.folder / f"{name}.keras"
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:  # two viewers asking at once: one export
            target = self.cache / f"{name}-{file_hash(source)}.onnx"
            if target.is_file():
                return target
            self.cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
                log.info("exporting %s to ONNX for the browser", name)
                done = subprocess.run([sys.executable, "-m", "trainer.export", str(source), "--format", "onnx",
                                       "--out", tmp], cwd=ROOT, capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"ONNX export of {name} failed: {done.stderr.strip().splitlines()[-1:]}")
                os.replace(Path(tmp) / f"{name}.onnx", target)
            return target

    def prepare_all(self) -> threading.Thread:
        """Export every model in the background (at start), so the first viewer does not wait."""
        def run():
            for name in self.store.available():
                try:
                    self.path(name)
                except Exception as err:  # noqa: BLE001 - logged; the page says the model is unavailable
                    log.warning("%s", err)
        thread = threading.Thread(target=run, name="onnx-exports", daemon=True)
        thread.start()
        return thread


def browser_config(store: ModelStore) -> dict:
    """What the page needs to do what the server does: one source, the server's own constants."""
    models = {}
    for name in store.available():
        meta = json.loads((store.folder / f"{name}.json").read_text())
        live_views, live_t = serving(meta, meta.get("serving", {}).get("live_views", "none"))
        served_views, served_t = serving(meta)
        models[name] = {"file": f"{PREFIX}models/{name}.onnx", "input_shape": meta["input_shape"],
                        "class_names": list(meta["class_names"]),
                        "live": {"views": live_views, "temperature": live_t},
                        "served": {"views": served_views, "temperature": served_t},
                        "temperatures": {v: serving(meta, v)[1] for v in VIEW_SETS}}
    members, temperature = store.ensemble_members()
    class_names = next(iter(models.values()))["class_names"] if models else []
    return {"models": models, "default": store.default(),
            "ensemble": {"name": ENSEMBLE, "members": members, "temperature": temperature} if len(members) > 1 else None,
            "colours": {c: "rgb({},{},{})".format(*colour_for(c)) for c in class_names},
            "crop": {"scale": CROP_SCALE, "shift_up": CROP_SHIFT_UP},
            "tracking": {"alpha": ALPHA, "min_iou": MIN_IOU, "history_s": HISTORY_S},
            "detector": {"file": f"{PREFIX}detector/{DETECTOR}", "min_confidence": MIN_DETECTION_CONFIDENCE},
            "vendor": {"tasks_vision": f"{PREFIX}vendor/tasks-vision", "onnxruntime": f"{PREFIX}vendor/onnxruntime-web/"}}


class BrowserFiles:
    """ASGI middleware answering GET and HEAD under /live/ from the files above; 404 for the rest."""

    def __init__(self, app, exports: OnnxExports | None = None):
        self.app = app
        self.exports = exports or OnnxExports(ModelStore())
        self.store = self.exports.store
        self.vendor = vendored()
        self._config: bytes | None = None

    def config(self) -> bytes:
        if self._config is None:
            self._config = json.dumps(browser_config(self.store)).encode()
        return self._config

    def resolve(self, rest: str) -> Path | bytes | None:
        """The file (or the bytes) that /live/REST names, or None: only names on these lists."""
        if rest == "config.json":
            return self.config()
        folder, _, name = rest.partition("/")
        if folder == "app" and name.endswith(".mjs") and "/" not in name:
            path = APP_FILES / name
            return path if path.is_file() else None
        if folder == "vendor" and name in self.vendor:
            return VENDOR / name
        if folder == "detector" and name == DETECTOR:
            return WEIGHTS / DETECTOR
        if folder == "models" and name.endswith(".onnx") and "/" not in name:
            return self.exports.path(name[: -len(".onnx")])
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            return await self.app(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD"):
            return await send_answer(send, 405, "only GET here")
        rest = scope["path"][len(PREFIX):]
        try:
            found = await anyio.to_thread.run_sync(self.resolve, rest)
        except FileNotFoundError:
            found = None
        except RuntimeError as err:
            log.warning("%s", err)
            return await send_answer(send, 503, str(err))
        if found is None:
            return await send_answer(send, 404, "not offered by this server")
        body = found if isinstance(found, bytes) else await anyio.to_thread.run_sync(found.read_bytes)
        suffix = Path(rest).suffix
        kind = TYPES.get(suffix) or mimetypes.guess_type(rest)[0] or "application/octet-stream"
        # Versioned library files may be kept by the browser; the rest change with the weights.
        cache = b"public, max-age=31536000, immutable" if rest.startswith("vendor/") else b"no-cache"
        headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", cache), (b"cross-origin-resource-policy", b"same-origin")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
