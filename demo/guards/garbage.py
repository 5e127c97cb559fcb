"""A full garbage collection soon after a large input was refused.

A refusal is an exception, and Gradio's queue keeps each failed event in a reference cycle (the
frame of `process_events` holds the error, whose traceback holds that frame); the event holds
the HTTP request, and the request its body. So every refused image stayed in memory until
Python's next full collection, which with the models loaded (about 555,000 objects) comes only
after tens of such requests: 20 refused 40 MB data URLs left +296 MB, 100 of them 1-2 GB
(measured). A full collection costs about 280 ms here, too much to run after every request,
so it runs a moment after a large refusal (once the event has finished), and at most once
every MIN_GAP_S: refusals within the gap are collected together at its end. Then glibc is asked
to hand the freed pages back to the system (malloc_trim).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time

LARGE_BYTES = 2**20  # smaller refusals (a bad webcam frame) are left to Python's own schedule
DELAY_S = 1.0
MIN_GAP_S = 10.0

_lock = threading.Lock()
_pending = False
_last = -MIN_GAP_S


def collect_soon(size: int | None) -> bool:
    """Schedule a full collection after a refusal of `size` bytes, if that is large: DELAY_S from
    now, or MIN_GAP_S after the last one. False if none was scheduled (small, or one pending)."""
    global _pending
    if size is None or size < LARGE_BYTES:
        return False
    with _lock:
        if _pending:
            return False
        _pending = True
        delay = max(DELAY_S, _last + MIN_GAP_S - time.monotonic())
    timer = threading.Timer(delay, _collect)
    timer.daemon = True
    timer.start()
    return True


def _collect() -> None:
    global _pending, _last
    with _lock:  # before collecting: a refusal meanwhile schedules the next one
        _pending, _last = False, time.monotonic()
    gc.collect()
    _release_free_memory()


def _release_free_memory() -> None:
    """glibc keeps freed memory in its per-thread arenas (about 10 MB after six refused 40 MB
    bodies here), which malloc_trim returns."""
    if _libc is not None:
        _libc.malloc_trim(0)


def _load_glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None  # not glibc (musl, macOS): nothing to trim


_libc = _load_glibc()
