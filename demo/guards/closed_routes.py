"""Gradio routes this page does not use, answered 404 before their body is read.

`POST /gradio_api/process_recording` post-processes the screen recordings of Gradio's settings
panel: it takes any uploaded video, of any length, and re-encodes it with the system's `ffmpeg`
at 1920 x 1080 once for each "zoom effect" in the request's JSON, outside the queue and with no
limit on their number, and it goes on after its client has left. Hugging Face Spaces install
`ffmpeg`. Measured with it on PATH: a 2 KB clip with 5 effects took 8.3 s of both cores; 16
requests of 210 KB each (2,000 effects, about an hour of work each) took /predict from 0.25 s to
3 to 7 s. This page analyses videos through its own queue (demo/pipeline/video.py); the settings panel's
recorder, when this route fails, saves its recording as it is (Gradio's frontend: "Failed to
process recording. Saving original version.").

`GET /gradio_api/custom_component/...` serves the files of custom components, which this page
has none of (its components are Gradio's own, subclassed). It printed every request's path to
the log, decoded: a newline in it wrote a line of the requester's choosing, such as a forged
"ekspresi.gate rejected ..." line.
"""

from __future__ import annotations

import logging

from demo.guards.answers import send_answer

log = logging.getLogger("ekspresi.routes")

CLOSED = ("/gradio_api/process_recording", "/gradio_api/custom_component/")  # "/" at the end: all below it


def closed_route(path: str, closed: tuple[str, ...]) -> str | None:
    """The closed route that `path` falls under, if any."""
    for route in closed:
        if path.rstrip("/") == route.rstrip("/") or (route.endswith("/") and path.startswith(route)):
            return route
    return None


class ClosedRoutes:
    """ASGI middleware: 404 for the routes in `closed`, logged as one line each (the route's
    name, never the rest of the path, which is the requester's)."""

    def __init__(self, app, closed: tuple[str, ...] = CLOSED):
        self.app = app
        self.closed = closed

    async def __call__(self, scope, receive, send):
        route = closed_route(scope["path"], self.closed) if scope["type"] == "http" else None
        if route is None:
            return await self.app(scope, receive, send)
        log.info("refused a request to %s: not offered by this server", route)
        await send_answer(send, 404, "not offered by this server")
