"""Ekspresi demo: `python app.py` (or Hugging Face Spaces) serves the Gradio page.

Honours GRADIO_SERVER_NAME and GRADIO_SERVER_PORT (Gradio reads them in launch()).
Everything users send or get back lives in one private folder that is swept while the
server runs and deleted when it stops (demo/guards/server_files.py).
"""

import atexit
import logging
import os
import signal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no analytics calls
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from starlette.middleware import Middleware  # noqa: E402

from demo.guards.body_limit import BodyLimit  # noqa: E402
from demo.guards.closed_routes import ClosedRoutes  # noqa: E402
from demo.guards.no_store import NoStore  # noqa: E402
from demo.guards.results import ResultFiles  # noqa: E402
from demo.guards.server_files import ServerFiles  # noqa: E402
from demo.pipeline.classify import ModelStore  # noqa: E402
from demo.pipeline.video import MAX_VIDEO_BYTES  # noqa: E402
from demo.web.browser_files import BrowserFiles, OnnxExports  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
for noisy in ("httpx", "urllib3"):  # one line per request otherwise
    logging.getLogger(noisy).setLevel(logging.WARNING)

# Before any gr.Blocks exists: each reads GRADIO_TEMP_DIR when it is built.
files = ServerFiles.create()
atexit.register(files.close)

from demo.web.page import CSS, SESSIONS_KEPT, build_app  # noqa: E402

store = ModelStore()
demo = build_app(results=ResultFiles(files.results), store=store)
exports = OnnxExports(store)  # the live tab's browser mode loads each model's ONNX export
files.keep_existing()  # Gradio's copies of the shipped examples
files.start()


def _stop(signum, frame):
    raise KeyboardInterrupt  # Gradio's launch() closes the server on it; atexit then removes the folder


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    if os.environ.get("EKSPRESI_EXPORT_AT_START", "1") == "1":  # tests export on demand instead
        exports.prepare_all()  # in the background: the first viewer of a model need not wait for its export
    try:
        demo.queue(default_concurrency_limit=4).launch(
            max_file_size=MAX_VIDEO_BYTES,  # per uploaded file; images: 25 MB, refused by demo.pipeline.images
            app_kwargs={"middleware": [Middleware(ClosedRoutes),  # Gradio routes this page does not use
                                       Middleware(BodyLimit),  # every other request body
                                       Middleware(NoStore),  # nothing served is kept in the browser's cache
                                       Middleware(BrowserFiles, exports=exports)]},  # /live/: the browser mode's files
            # Spaces set GRADIO_SSR_MODE=true, which puts a Node server in front of this one: it
            # would receive every request before BodyLimit and the gate, so the page is served
            # from Python only, as it is tested (tests/server.py sets that variable too).
            ssr_mode=False,
            # Gradio 6 saves every run in the visitor's browser (localStorage: file names, each
            # face's emotions) for its "runs" page, kept after they leave, which a shared computer
            # shows to the next person; False also deletes what an earlier version saved there.
            run_history=False,
            state_session_capacity=SESSIONS_KEPT,  # Gradio's default, 10,000, is ~0.5 GB here (demo/web/page.py)
            show_error=True, css=CSS)
    finally:
        files.close()
