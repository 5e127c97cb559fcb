"""Gradio routes this page does not use, answered 404 before their body is read.

`POST /gradio_api/process_recording` post-processes the screen recordings of Gradio's settings
panel: it takes any uploaded video, of any length, and re-encodes it with the system's `ffmpeg`
at 1920 x 1080 once for each "zoom effect" in the request's JSON, outside the queue and with no
limit on their number, and it goes on after its client has left. Hugging Face Spaces install
`ffmpeg`. Measured with it on PATH: a 2 KB clip with 5 effects took 8.3 s of both cores; 16
requests of 210 KB each (2,000 effects, about an hour of work each) took /predict from 0.25 s to
3 to 7 s. This page analyses videos through its own queue (demo/video.py); the settings panel's
recorder, when this route fails, saves its recording as it is (Gradio's frontend: "Failed to
process recording. Saving original version.").
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger("ekspresi.routes")

CLOSED = ("/gradio_api/process_recording",)


class ClosedRoutes:
    """ASGI middleware: 404 for the routes in `closed`, logged as one line each."""

    def __init__(self, app, closed: tuple[str, ...] = CLOSED):
        self.app = app
        self.closed = closed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/") not in self.closed:
            return await self.app(scope, receive, send)
        log.info("refused a request to %s: not offered by this server", scope["path"].rstrip("/"))
        body = json.dumps({"detail": "not offered by this server"}).encode()
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
