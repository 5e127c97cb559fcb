"""Files served to the browser (uploads, annotated images and videos) are never cached there.

Gradio serves them with Last-Modified and an ETag but no Cache-Control, so a browser may keep
them in its disk cache, faces included, after the visitor has gone: on a shared computer, for
the next person. `Cache-Control: no-store` asks it not to keep them at all. The page's own code
and styles stay cacheable.
"""

from __future__ import annotations

FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")


class NoStore:
    """ASGI middleware: `Cache-Control: no-store` on every answer of Gradio's file routes."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not any(route in scope["path"] for route in FILE_ROUTES):
            return await self.app(scope, receive, send)

        async def send_no_store(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                message = {**message, "headers": [*headers, (b"cache-control", b"no-store")]}
            await send(message)

        await self.app(scope, receive, send_no_store)
