"""A cap on the request bodies that Gradio reads whole into memory.

Gradio parses a JSON body (an API call, a queue join, a webcam frame) completely before any of
our code sees it, and our gate refuses an oversized data URL only after that: one 1.5 GB POST
raised the server's resident memory by 5.8 GB (measured), and a few at once would end it. So
every body is capped at MAX_BODY_BYTES before the app reads it. The cap is twice the data URL
of the largest image the gate accepts, so that an image somewhat over the limit still gets the
gate's own message, which names its size.

File uploads are exempt: Gradio streams their multipart bodies to disk and refuses each file
over launch(max_file_size=...) itself.
"""

from __future__ import annotations

import json
import logging

from demo.images import MAX_FILE_BYTES

log = logging.getLogger("ekspresi.gate")

MAX_BODY_BYTES = 2 * 4 * -(-MAX_FILE_BYTES // 3)  # base64 of the largest accepted image, twice
STREAMED_TO_DISK = ("/gradio_api/upload", "/gradio_api/process_recording")


class BodyLimit:
    """ASGI middleware: 413 for a request body over max_bytes, declared or sent chunked."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH")
                or scope["path"].rstrip("/").endswith(STREAMED_TO_DISK)):
            return await self.app(scope, receive, send)  # no body that Gradio reads whole
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            # The HTTP server delivers no more than the declared length, so the header is enough.
            if not length.isdigit() or int(length) > self.max_bytes:
                return await self._refuse(send)
            return await self.app(scope, receive, send)
        # No declared length (chunked): read up to the cap here, then hand the app what came.
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away; the app sees the disconnect
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._refuse(send)
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, send):
        log.info("rejected request body: over %d bytes", self.max_bytes)
        detail = f"the request body is over {self.max_bytes // 2**20} MB; send large files to /gradio_api/upload"
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
