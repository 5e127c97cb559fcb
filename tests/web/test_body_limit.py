"""demo.guards.body_limit's idle cut-off on a real uvicorn server, with a 1-second idle limit instead of 60.

The app behind it is a small Starlette one: Gradio's own routes are exercised against the real
app.py in test_server.py; waiting out the real limit there would cost a minute a test.
"""

import asyncio
import http.client
import threading
import time

import pytest
import uvicorn
from server import free_port, start_upload, until
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from demo.guards.body_limit import MAX_UPLOAD_BYTES, BodyLimit

IDLE_S = 1.0


async def upload(request):
    body = await request.body()
    return PlainTextResponse(f"{len(body)} bytes")


async def slow_answer(request):
    await request.body()

    async def lines():
        for i in range(5):  # 2.5 s of answer, well past IDLE_S, after the body is in
            await asyncio.sleep(0.5)
            yield f"{i}\n"
    return StreamingResponse(lines(), media_type="text/plain")


@pytest.fixture(scope="module")
def served():
    limit = {}

    def app_with_limit(app):
        limit["middleware"] = BodyLimit(app, idle_s=IDLE_S)
        return limit["middleware"]

    app = Starlette(routes=[Route("/gradio_api/upload", upload, methods=["POST"]),
                            Route("/slow", slow_answer, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app_with_limit(app), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/", limit["middleware"]
    server.should_exit = True
    thread.join(10)


def test_an_upload_that_stalls_is_cut_off_and_gives_its_reservation_back(served):
    url, middleware = served
    conn = start_upload(url, MAX_UPLOAD_BYTES)  # declares 201 MB, sends a few bytes, then nothing
    until(lambda: middleware.uploading == MAX_UPLOAD_BYTES, 5, every=0.02)
    start = time.monotonic()
    response = conn.getresponse()
    assert response.status == 408 and time.monotonic() - start < IDLE_S + 2
    assert response.read().decode() == f"the request body sent nothing for {IDLE_S:g} s"
    until(lambda: middleware.uploading == 0, 5, every=0.02)  # given back just after the answer is sent


def test_a_slow_body_that_keeps_sending_is_read_whole(served):
    url, _ = served
    conn = http.client.HTTPConnection(url[7:-1], timeout=30)
    conn.putrequest("POST", "/gradio_api/upload")
    conn.putheader("Content-Length", str(6 * 1000))
    conn.endheaders()
    for _ in range(6):  # 3 s in all, each pause shorter than the idle limit
        conn.send(b"x" * 1000)
        time.sleep(0.5)
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"6000 bytes")


def test_an_answer_may_take_longer_than_the_idle_limit_once_the_body_is_in(served):
    url, _ = served
    conn = http.client.HTTPConnection(url[7:-1], timeout=30)
    conn.request("POST", "/slow", body=b"{}")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"0\n1\n2\n3\n4\n")
