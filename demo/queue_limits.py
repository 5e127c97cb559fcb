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
"""

from __future__ import annotations

import logging
import threading
import time

from gradio import queueing

log = logging.getLogger("ekspresi.queue")

# About 12 s of work at the soak's 8 requests a second: a longer line is better told to retry.
MAX_WAITING = 100
# A browser reads its messages as they come, so its unread count stays near zero. An event
# nobody reads leaves at least three (its place in the line, its start, its result), and one
# more each time a job starts while it waits.
MAX_UNREAD = 500
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
    and stopping running events whose client has gone."""

    def set_progress(self, event_id, iterables):
        # A disconnected client's event is marked not alive (clean_events); a cancelled one is
        # taken out of active_jobs while its thread runs on. Either way nobody waits for it.
        running = [event for job in self.active_jobs if job for event in job if event._id == event_id]
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
