"""Faces followed across frames: a stable id per face, smoothed probabilities, and a timeline.

One tracker serves the live webcam (one per viewer, in gr.State) and video files (one per
clip). Each frame's faces are matched to the last frame's tracks by box overlap (the best
pairs first); a matched face's probabilities are blended with its track's (an exponential
moving average, so labels do not flicker), an unmatched face starts a new track with a new
id, and a track whose face is not found for more than `max_missing` frames ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

ALPHA = 0.4  # weight of the newest frame in the moving average
MIN_IOU = 0.3  # overlap for a face to continue a track
HISTORY_S = 30.0  # how far back the timeline reaches
# A live viewer whose stream stopped this long ago has nothing left inside the timeline's window
# (demo.web.live drops their state, demo.guards.queue_limits ends their stream).
VIEWER_IDLE_S = HISTORY_S


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


@dataclass
class Track:
    id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray | None  # None until its face is classified (after forget_probs())
    missing: int = 0  # frames in a row without this face
    classified: float | None = None  # when its probabilities were last computed (update's t)


@dataclass
class Tracker:
    alpha: float = ALPHA
    min_iou: float = MIN_IOU
    max_missing: int = 0  # webcam: a face that is gone is gone; video: bridge a missed detection or two
    history_s: float = HISTORY_S
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 1
    # (time in seconds, smoothed probabilities of the largest face) for the timeline
    history: deque = field(default_factory=deque)

    def _assign(self, boxes) -> dict[int, int]:
        """{face index: track index}: best overlaps first, each track and each face used once."""
        pairs = sorted(((iou(track.box, box), ti, fi) for ti, track in enumerate(self.tracks)
                        for fi, box in enumerate(boxes)), reverse=True)
        assigned: dict[int, int] = {}
        for overlap, ti, fi in pairs:
            if overlap < self.min_iou:
                break
            if ti in assigned.values() or fi in assigned:
                continue
            assigned[fi] = ti
        return assigned

    def stale(self, boxes, t: float, max_age_s: float) -> list[bool]:
        """For each face, whether it needs classifying now: it starts a track, or its track's
        probabilities were computed max_age_s or more before t (less a microsecond of rounding)."""
        assigned = self._assign(boxes)
        return [fi not in assigned or self.tracks[assigned[fi]].classified is None
                or t - self.tracks[assigned[fi]].classified >= max_age_s - 1e-6 for fi in range(len(boxes))]

    def forget_probs(self) -> None:
        """Another model now: every track keeps its face and id, and its next probabilities
        replace the old model's instead of joining their average."""
        for track in self.tracks:
            track.probs, track.classified = None, None

    def update(self, boxes, probs, t: float | None = None, fresh=None) -> tuple[np.ndarray, list[int]]:
        """Smoothed probabilities and track ids for this frame's faces (in the order given).

        fresh: for each face, whether its row of probs was computed on this frame (all, if None);
        a face not fresh must continue a track (stale() said so) and keeps that track's.
        """
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim != 2 or len(probs) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but probabilities of shape {probs.shape}")
        fresh = [True] * len(boxes) if fresh is None else list(fresh)
        assigned = {fi: self.tracks[ti] for fi, ti in self._assign(boxes).items()}
        matched_tracks = {id(track) for track in assigned.values()}
        out, ids, alive = np.empty_like(probs), [], []
        for fi, box in enumerate(boxes):
            track = assigned.get(fi)
            if track is None:
                if not fresh[fi]:
                    raise ValueError(f"face {fi} starts a track but has no probabilities of its own")
                track = Track(self.next_id, tuple(box), probs[fi], classified=t)
                self.next_id += 1
            else:
                if fresh[fi]:
                    track.probs = probs[fi] if track.probs is None else \
                        self.alpha * probs[fi] + (1 - self.alpha) * track.probs
                    track.classified = t
                track.box, track.missing = tuple(box), 0
            out[fi] = track.probs
            ids.append(track.id)
            alive.append(track)
        for track in self.tracks:
            if id(track) not in matched_tracks and track.missing < self.max_missing:
                track.missing += 1
                alive.append(track)
        self.tracks = alive
        if t is not None and len(boxes):
            largest = max(range(len(boxes)), key=lambda i: boxes[i][2] * boxes[i][3])
            self.history.append((t, out[largest].copy()))
            while self.history and self.history[0][0] < t - self.history_s:
                self.history.popleft()
        return out, ids

    def timeline(self) -> tuple[np.ndarray, np.ndarray, float | None]:
        """(seconds relative to the newest entry, probabilities, the newest entry's time) of the
        largest face, oldest first."""
        history = list(self.history)  # one copy in C: the live stream appends from another thread
        if not history:
            return np.zeros(0), np.zeros((0, 0)), None
        times = np.array([t for t, _ in history])
        return times - times[-1], np.stack([p for _, p in history]), float(times[-1])
