"""Ekspresi demo: `python app.py` (or Hugging Face Spaces) serves the Gradio page.

Honours GRADIO_SERVER_NAME and GRADIO_SERVER_PORT (Gradio reads them in launch()).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no analytics calls
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from demo.images import MAX_FILE_BYTES  # noqa: E402
from demo.ui import build_app  # noqa: E402

demo = build_app()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=4).launch(max_file_size=MAX_FILE_BYTES, show_error=True)
