"""Per-face smoothing of webcam predictions across frames, so labels do not flicker.

State is a plain list of tracks ({"box", "probs"}) that lives in the user's gr.State.
"""

from __future__ import annotations

import numpy as np

ALPHA = 0.4  # weight of the newest frame in the moving average
MIN_IOU = 0.3  # overlap for a face to continue a track from the previous frame


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def smooth(tracks: list[dict] | None, boxes, probs: np.ndarray, alpha: float = ALPHA):
    """Blend each face's probabilities with the best-overlapping track of the last frame.

    Returns (smoothed probabilities, new tracks). Faces that left the frame are dropped;
    a frame without faces gives an empty (0, classes) array and no tracks.
    """
    probs = np.asarray(probs, dtype=np.float32)
    tracks = list(tracks or [])
    out, new_tracks = [], []
    for box, p in zip(boxes, probs):
        best = max(tracks, key=lambda t: iou(t["box"], box), default=None)
        if best is not None and iou(best["box"], box) >= MIN_IOU:
            tracks.remove(best)  # one face per track
            p = alpha * np.asarray(p) + (1 - alpha) * np.asarray(best["probs"])
        out.append(np.asarray(p))
        new_tracks.append({"box": list(box), "probs": [float(v) for v in p]})
    return np.array(out, dtype=np.float32).reshape(probs.shape), new_tracks
