"""Bounds on Gradio's queue for clients that send events and never read the answers.

Gradio puts every message for an event (its place in the line, start, result) in a per-session
queue that the client drains over /gradio_api/queue/data; a client that never connects there
leaves them in memory. Two things made that grow without end (bench/soak.py, 5,000 sessions of
one cheap event each: +1.2 GB, still climbing after the last was sent):
- Each time a job starts, every waiting event is sent its new place in the line: a backlog of
  L events costs L messages per start, so a flood's cost grows with the square of its backlog.
  MAX_WAITING (Gradio's queue max_size) bounds L; past it a request is told the queue is full
  (HTTP 503).
- One session may queue any number of events. Past MAX_UNREAD unread messages a session's
  next event is refused (HTTP 503) until it reads them; a browser reads as they come.

And a running event whose client has gone (the tab closed, the request cancelled) is stopped:
Gradio marks it dead but lets a plain function's thread run to the end, which for a video is
up to ten minutes of one of two cores, and cancelling frees the concurrency slot while that
thread still runs. Such an event's next progress report raises Abandoned instead.

A webcam stream holds one of the webcam's concurrency slots for as long as Gradio waits for
its next frame, and Gradio waits up to the stream's time_limit (600 s) even once its client
has gone: eight viewers whose connection dropped (a phone locked, a laptop closed, a network
lost) after one frame each kept a ninth waiting 594 s (measured). A stream whose client has
gone, or that has sent no frame for VIEWER_IDLE_S (when its viewer's timeline is dropped too;
a browser sends many a second, and Chrome slows a hidden tab to one a second, one a minute
after five minutes hidden), is ended the way the browser's own /stream/ID/close ends it. The
page keeps its last frame, and starts a new stream by itself once its frames can reach the
server again (headless Chromium, measured). A client that sends a frame now and then still
holds a slot: the webcam serves its concurrency limit of viewers at once, whoever they are.

And with nothing to do the queue looks for work less often: Gradio's loops wake every 1 and
10 ms (0.05 and 0.1 s on Windows), which cost the idle server about 2.5 CPU-seconds a minute,
more than a browser-mode viewer adds (bench/results/webcam.json). Gradio's Windows intervals
are used everywhere: an event may wait up to 50 ms more to start; a stream's frames do not
pass through that loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time

from gradio import queueing
from gradio.utils import run_coro_in_background

from demo.pipeline.tracking import VIEWER_IDLE_S

log = logging.getLogger("ekspresi.queue")

# About 12 s of work at the soak's 8 requests a second: a longer line is better told to retry.
MAX_WAITING = 100
# A browser reads its messages as they come, so its unread count stays near zero. An event
# nobody reads leaves at least three (its place in the line, its start, its result), and one
# more each time a job starts while it waits.
MAX_UNREAD = 500
STREAMS_CHECKED_EVERY_S = 1.0
IDLE_POLL_S, PROGRESS_POLL_S = 0.05, 0.1  # how often the idle queue looks for work and for progress to send
LOG_EVERY_S = 10.0  # one log line per this many seconds of refusals: a flood must not flood the log


class Refusals:
    """Counts refused events and logs them at most once every LOG_EVERY_S."""

    def __init__(self):
        self.count, self.last_line = 0, float("-inf")
        self._lock = threading.Lock()

    def add(self, unread: int) -> None:
        with self._lock:
            self.count += 1
            now = time.monotonic()
            if now - self.last_line < LOG_EVERY_S:
                return
            count, self.count, self.last_line = self.count, 0, now
        log.info("refused %d event(s) from sessions that leave their answers unread (latest: %d unread)",
                 count, unread)


refusals = Refusals()


class Abandoned(Exception):
    """Raised in a running event's thread, at its next progress report, once its client has gone."""


class SessionQueue(queueing.Queue):
    """Gradio's queue, refusing events from a session that leaves MAX_UNREAD messages unread,
    and stopping running events whose client has gone, and streams nobody sends to."""

    def running(self) -> list[queueing.Event]:
        """The events being processed now."""
        return [event for job in self.active_jobs if job for event in job]

    def start(self):
        self.sleep_when_free, self.progress_update_sleep_when_free = IDLE_POLL_S, PROGRESS_POLL_S
        super().start()
        run_coro_in_background(self.end_lost_streams)

    async def end_lost_streams(self) -> None:
        """Ends each running stream whose client has gone or that has sent no frame for
        VIEWER_IDLE_S, checking every STREAMS_CHECKED_EVERY_S."""
        latest = {}  # event id -> (the body of its newest frame, when that came)
        while not self.stopped:
            await asyncio.sleep(STREAMS_CHECKED_EVERY_S)
            latest = self._end_lost(latest)

    def _end_lost(self, latest: dict) -> dict:
        # A function of its own: a loop variable in the coroutine above would keep the last event
        # it saw, and that event's request body, alive until another event came.
        now, seen = time.monotonic(), {}
        for event in self.running():
            if not event.streaming or event.closed:
                continue
            body, since = latest.get(event._id, (event.data, now))
            if event.data is not body:  # Gradio's /stream/ID route puts each new frame's body here
                body, since = event.data, now
            seen[event._id] = (body, since)
            if not event.alive or now - since >= VIEWER_IDLE_S:
                log.info("ended webcam stream %s: %s", event._id[:8], "its client has gone" if not event.alive
                         else f"no frame for {VIEWER_IDLE_S:.0f} s")
                event.run_time, event.closed = math.inf, True  # as /stream/ID/close does
                event.signal.set()
        return seen

    def set_progress(self, event_id, iterables):
        # A disconnected client's event is marked not alive (clean_events); a cancelled one is
        # taken out of active_jobs while its thread runs on. Either way nobody waits for it.
        running = [event for event in self.running() if event._id == event_id]
        if not running or not running[0].alive:
            raise Abandoned(f"event {event_id[:8]}: its client has gone")
        super().set_progress(event_id, iterables)

    async def push(self, body, request, username):
        unread = self.pending_messages_per_session.get(body.session_hash) if body.session_hash else None
        if unread is not None and unread.qsize() >= MAX_UNREAD:
            refusals.add(unread.qsize())
            return (False, f"this session has {unread.qsize()} answers nobody has read "
                           "(GET /gradio_api/queue/data); read them before sending more", "queue_full")
        return await super().push(body, request, username)
