"""Answers the ASGI middlewares (demo.guards.body_limit, demo.guards.closed_routes) send themselves, before
Gradio sees the request."""

from __future__ import annotations

import json


async def send_answer(send, status: int, detail: str, plain: bool = False, retry_after: int | None = None):
    """JSON {"detail"} as FastAPI answers, or the sentence alone as plain text; the connection
    is closed after it, since the request's body may not have been read."""
    if plain:
        body, content_type = detail.encode(), b"text/plain; charset=utf-8"
    else:
        body, content_type = json.dumps({"detail": detail}).encode(), b"application/json"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
