"""Caps on request bodies, applied before Gradio reads them.

Gradio parses a JSON body (an API call, a queue join, a webcam frame) completely before any of
our code sees it, and our gate refuses an oversized data URL only after that: one 1.5 GB POST
raised the server's resident memory by 5.8 GB (measured), and a few at once would end it. So
every body is capped at MAX_BODY_BYTES before the app reads it. The cap is twice the data URL
of the largest image the gate accepts, so that an image somewhat over the limit still gets the
gate's own message, which names its size.

File uploads are streamed to disk by Gradio, which caps each file (launch(max_file_size=...))
but not how many come in one request (up to 1,000) nor how many requests upload at once. Files
still being written are open, so the sweeper (demo/guards/server_files.py) can unlink them but not free
their space: one request of 12 files of 190 MB took 2.2 GB of disk while the folder never showed
more than 457 MB (measured). So an upload body may hold one file of the largest size
(MAX_UPLOAD_BYTES; the page and gradio_client send one file per request), and uploads in flight
together may hold UPLOADS_IN_FLIGHT_BYTES; past that one is asked to retry (503).

A body that sends nothing for BODY_IDLE_S is cut off (408), as nginx's client_body_timeout
does: the HTTP server waits for a body as long as its client likes, and five uploads that
declared 201 MB and then stalled held the whole in-flight budget, so that nobody could upload.
"""

from __future__ import annotations

import asyncio
import logging

from demo.guards.answers import send_answer
from demo.guards.server_files import HARD_MAX_BYTES
from demo.pipeline.images import MAX_FILE_BYTES
from demo.pipeline.video import MAX_VIDEO_BYTES

log = logging.getLogger("ekspresi.gate")

MAX_BODY_BYTES = 2 * 4 * -(-MAX_FILE_BYTES // 3)  # base64 of the largest accepted image, twice
MAX_UPLOAD_BYTES = MAX_VIDEO_BYTES + 2**20  # one file of the largest size and its multipart framing
UPLOADS_IN_FLIGHT_BYTES = HARD_MAX_BYTES  # what the sweeper lets finished files hold, once more
BODY_IDLE_S = 60.0  # nginx's default client_body_timeout
STREAMED_TO_DISK = ("/gradio_api/upload",)  # /gradio_api/process_recording is closed (demo/guards/closed_routes.py)


def too_large(cap: int, upload: bool) -> str:
    return f"the request body is over {cap // 2**20} MB; " + (
        "upload one file at a time" if upload else "send large files to /gradio_api/upload")


class BodyLimit:
    """ASGI middleware: 413 for a request body over its cap, declared or sent chunked; 503 for an
    upload that would take the uploads in flight past their budget."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES, max_upload_bytes: int = MAX_UPLOAD_BYTES,
                 uploads_in_flight_bytes: int = UPLOADS_IN_FLIGHT_BYTES, idle_s: float = BODY_IDLE_S):
        self.app = app
        self.idle_s = idle_s
        self.max_bytes, self.max_upload_bytes = max_bytes, max_upload_bytes
        self.uploads_in_flight_bytes = uploads_in_flight_bytes
        self.uploading = 0  # bytes reserved by the uploads being received now (one event loop: no lock)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)  # no body
        upload = scope["path"].rstrip("/").endswith(STREAMED_TO_DISK)
        cap = self.max_upload_bytes if upload else self.max_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > cap):
            return await self._answer(send, 413, too_large(cap, upload), upload)
        if not upload:
            return await self._counted(scope, receive, send, cap, upload)
        reserved = int(length) if length is not None else cap  # a chunked body may grow to the cap
        if self.uploading + reserved > self.uploads_in_flight_bytes:
            # Read (and drop) the body first, at most `cap` bytes: a client still sending, as
            # browsers do, would otherwise lose the answer to the connection being closed.
            await self._drain(self._patient(receive), cap)
            return await self._answer(send, 503, "the server is receiving too many uploads at once; "
                                                 "try again in a minute", upload, retry_after=60)
        self.uploading += reserved
        try:
            return await self._counted(scope, receive, send, cap, upload)
        finally:
            self.uploading -= reserved

    async def _counted(self, scope, receive, send, cap: int, upload: bool):
        """Run the app on the body, counting it as it streams: the HTTP server delivers no more than
        a declared length, and a chunked body past `cap` or stalled for idle_s ends as if its
        client had gone, the app's answer dropped for ours."""
        received, over, gone, answered, stalled, complete = 0, False, False, False, False, False
        patient = self._patient(receive)

        async def counted_receive():
            nonlocal received, over, gone, stalled, complete
            if over:
                return {"type": "http.disconnect"}
            if complete:  # the body is in: the app may wait here for a disconnect as long as it likes
                return await receive()
            message = await patient()
            if message is None:
                over = stalled = True
                return {"type": "http.disconnect"}
            gone = message["type"] == "http.disconnect"
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > cap:
                    over = True
                    return {"type": "http.disconnect"}  # the app stops reading here
            return message

        async def guarded_send(message):
            nonlocal answered
            if not over:
                answered = True
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            # Gradio's upload route raises when its client leaves mid-body (a closed tab), and
            # uvicorn would log a traceback for each: no one is left to answer, so that ends here.
            if not (over or gone):
                raise  # the app's own failure; a cut-off body is answered below
        if stalled and not answered:
            await self._answer(send, 408, f"the request body sent nothing for {self.idle_s:g} s", upload)
        elif over and not answered:
            await self._answer(send, 413, too_large(cap, upload), upload)

    def _patient(self, receive):
        """receive(), or None once the client has sent nothing for idle_s."""
        async def patient_receive():
            try:
                return await asyncio.wait_for(receive(), self.idle_s)
            except TimeoutError:
                return None
        return patient_receive

    @staticmethod
    async def _drain(receive, cap: int):
        received = 0
        while received <= cap:
            message = await receive()
            if message is None or message["type"] != "http.request" or not message.get("more_body", False):
                return
            received += len(message.get("body", b""))

    async def _answer(self, send, status: int, detail: str, upload: bool, retry_after: int | None = None):
        """JSON {"detail"} as FastAPI answers, except to uploads: Gradio's page shows an upload's
        refusal as "HTTP 503: " followed by the body as it came, so that body is the sentence."""
        log.info("rejected request body (%d): %s", status, detail)
        await send_answer(send, status, detail, plain=upload, retry_after=retry_after)
