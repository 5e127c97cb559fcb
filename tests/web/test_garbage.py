"""demo.guards.garbage: a full collection soon after a large refusal, one at a time, spaced out."""

import gc
import time
import weakref

import pytest

from demo.guards import garbage


class Holder:
    pass


def cyclic_garbage():
    """A reference cycle no one refers to, as Gradio leaves a failed event: freed only by a collection."""
    a, b = Holder(), Holder()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(garbage, "DELAY_S", 0.05)
    monkeypatch.setattr(garbage, "MIN_GAP_S", 0.5)
    monkeypatch.setattr(garbage, "_pending", False)
    monkeypatch.setattr(garbage, "_last", -1.0)
    gc.disable()  # Python's own schedule must not collect for it
    yield
    gc.enable()


def wait_until_dead(ref, seconds):
    deadline = time.monotonic() + seconds
    while ref() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    return ref() is None


def test_small_refusals_leave_garbage_to_python(quick):
    assert not garbage.collect_soon(None) and not garbage.collect_soon(garbage.LARGE_BYTES - 1)
    assert not garbage._pending


def test_a_large_refusal_is_collected_soon_and_the_next_waits_for_the_gap(quick):
    ref = cyclic_garbage()
    assert garbage.collect_soon(garbage.LARGE_BYTES)
    assert not garbage.collect_soon(50 * garbage.LARGE_BYTES)  # one is pending: that one covers it
    assert wait_until_dead(ref, 1.0)
    first = garbage._last  # when that collection ran
    assert garbage.collect_soon(garbage.LARGE_BYTES)  # within the gap: scheduled for its end
    deadline = time.monotonic() + 2
    while garbage._last == first:
        assert time.monotonic() < deadline, "the second collection never ran"
        time.sleep(0.01)
    # Timed by the collections' own clock, not by when the cycle died: other threads in the
    # test process (Popen re-enables gc around a fork) may collect too.
    assert garbage._last - first >= garbage.MIN_GAP_S - 0.01
