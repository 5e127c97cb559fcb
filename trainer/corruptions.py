"""What real cameras do to a face: blur, noise, compression, low resolution, dim light, occlusion.

A fixed set of corruption kinds at five severities each, in the style of ImageNet-C (Hendrycks
and Dietterich, 2019), sized for face crops: every parameter is given for a 48-pixel face and
scales with the crop's side, so a 64-pixel RGB input gets the same corruption relative to the
face. `corrupt` works on uint8 arrays of (n, h, w, c) with a NumPy generator, so the benchmark
(trainer.evaluate --corruptions: one generator per kind and severity, seeded from BENCHMARK_SEED)
is the same on every run and machine, and training (trainer.augment) draws from the batch's own
generator.
"""

from __future__ import annotations

import cv2
import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)
BENCHMARK_SEED = 2019
REFERENCE_SIDE = 48  # the parameters below are for a face this many pixels wide

# Per kind, the parameter at severities 1..5 (for a 48-pixel face).
PARAMETERS = {
    "gaussian_blur": (0.6, 0.9, 1.2, 1.6, 2.1),       # sigma, pixels
    "motion_blur": (3, 5, 7, 9, 12),                  # streak length, pixels, random direction
    "gaussian_noise": (6, 10, 15, 22, 30),            # sigma, 0-255 levels
    "poisson_noise": (120, 60, 30, 15, 8),             # photons at full white (fewer = noisier)
    "jpeg": (40, 25, 15, 10, 6),                      # JPEG quality
    "low_resolution": (32, 24, 20, 16, 12),           # side it is shrunk to, then enlarged back
    "low_light": ((0.55, 4), (0.45, 6), (0.35, 8), (0.25, 10), (0.18, 12)),  # brightness x, then noise sigma
    "contrast": (0.6, 0.45, 0.35, 0.25, 0.15),        # contrast kept, around the image's mean
    "occlusion": (0.12, 0.2, 0.28, 0.36, 0.45),       # fraction of the face covered by one block
}
KINDS = tuple(PARAMETERS)


def _float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)


def _uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _each(x: np.ndarray, fn) -> np.ndarray:
    """fn on every (h, w) or (h, w, 3) image, keeping the (n, h, w, c) layout."""
    out = np.empty_like(x)
    for i in range(len(x)):
        img = x[i, ..., 0] if x.shape[-1] == 1 else x[i]
        out[i] = fn(img, i).reshape(x.shape[1:])
    return out


def gaussian_blur(x, p, rng, scale):
    return _each(x, lambda img, _: cv2.GaussianBlur(img, (0, 0), p * scale, borderType=cv2.BORDER_REFLECT))


def motion_blur(x, p, rng, scale):
    length = max(2, int(round(p * scale)))
    angles = rng.uniform(0, 180, len(x))

    def streak(img, i):
        k = np.zeros((length, length), np.float32)
        k[length // 2, :] = 1.0
        m = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angles[i], 1.0)
        k = cv2.warpAffine(k, m, (length, length))
        return cv2.filter2D(img, -1, k / max(k.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)

    return _each(x, streak)


def gaussian_noise(x, p, rng, scale):
    return _uint8(_float(x) + rng.normal(0, p, x.shape))


def poisson_noise(x, p, rng, scale):
    return _uint8(rng.poisson(_float(x) / 255.0 * p) / p * 255.0)


def jpeg(x, p, rng, scale):
    def round_trip(img, _):
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(p)])
        flag = cv2.IMREAD_GRAYSCALE if img.ndim == 2 else cv2.IMREAD_COLOR
        return cv2.imdecode(buf, flag)

    return _each(x, round_trip)


def low_resolution(x, p, rng, scale):
    h, w = x.shape[1:3]
    side = max(4, int(round(p * scale)))
    return _each(x, lambda img, _: cv2.resize(cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA),
                                              (w, h), interpolation=cv2.INTER_LINEAR))


def low_light(x, p, rng, scale):
    gain, sigma = p
    return _uint8(_float(x) * gain + rng.normal(0, sigma, x.shape))


def contrast(x, p, rng, scale):
    f = _float(x)
    mean = f.mean(axis=(1, 2, 3), keepdims=True)
    return _uint8((f - mean) * p + mean)


def occlusion(x, p, rng, scale):
    n, h, w, _ = x.shape
    out = x.copy()
    aspect = rng.uniform(0.5, 2.0, n)  # width / height of the block
    shade = rng.integers(0, 256, n)
    for i in range(n):
        bh = int(round(min(h, np.sqrt(p * h * w / aspect[i]))))
        bw = int(round(min(w, p * h * w / max(bh, 1))))
        top, left = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
        out[i, top:top + bh, left:left + bw] = shade[i]
    return out


FUNCTIONS = {"gaussian_blur": gaussian_blur, "motion_blur": motion_blur, "gaussian_noise": gaussian_noise,
             "poisson_noise": poisson_noise, "jpeg": jpeg, "low_resolution": low_resolution,
             "low_light": low_light, "contrast": contrast, "occlusion": occlusion}


def corrupt(x: np.ndarray, kind: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """x (n, h, w, c) uint8 under one corruption kind at severity 1-5, as uint8 of the same shape."""
    if kind not in FUNCTIONS:
        raise ValueError(f"unknown corruption {kind!r}; known: {', '.join(KINDS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    x = np.ascontiguousarray(x, dtype=np.uint8)
    scale = x.shape[2] / REFERENCE_SIDE
    return FUNCTIONS[kind](x, PARAMETERS[kind][severity - 1], rng, scale)


def benchmark_rng(kind: str, severity: int) -> np.random.Generator:
    """The benchmark's generator for one kind and severity: the same images get the same corruption."""
    return np.random.default_rng((BENCHMARK_SEED, KINDS.index(kind), severity))


def benchmark_views(x: np.ndarray):
    """(kind, severity, corrupted x) for every kind and severity of the benchmark, computed on the fly."""
    for kind in KINDS:
        for severity in SEVERITIES:
            yield kind, severity, corrupt(x, kind, severity, benchmark_rng(kind, severity))


def random_corruptions(x: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Training: each image, with `probability`, under one kind at one severity drawn at random.

    x is float32 0-255 (after the host's warps); returned the same. Images sharing a draw are
    corrupted together, so a batch costs at most one call per kind and severity.
    """
    hit = rng.random(len(x)) < probability
    if not hit.any():
        return x
    kinds = rng.integers(0, len(KINDS), len(x))
    severities = rng.integers(1, len(SEVERITIES) + 1, len(x))
    out = x.copy()
    for k in np.unique(kinds[hit]):
        for s in np.unique(severities[hit & (kinds == k)]):
            idx = np.flatnonzero(hit & (kinds == k) & (severities == s))
            out[idx] = corrupt(_uint8(x[idx]), KINDS[k], int(s), rng).astype(np.float32)
    return out
