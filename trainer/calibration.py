"""Confidence calibration: one temperature per model and view set, fitted on val.

Our models end in a softmax, so a temperature T acts on their probabilities as it would on
the logits: softmax(log(p) / T) = p ** (1/T), renormalised. T > 1 softens over-confident
predictions and never changes which class wins, so accuracy is untouched. T is chosen to
minimise the negative log-likelihood on val (Guo et al., 2017); expected calibration error
(ECE) is reported over 15 equal-width confidence bins.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
ENSEMBLE_FILE = "ensemble.json"  # beside the models: the ensemble's temperature, for its list of members


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities rescaled by a temperature; rows still sum to 1, the argmax is unchanged."""
    if temperature == 1.0:
        return np.asarray(probs, dtype=np.float32)
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    scaled = np.exp(logp)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    picked = np.asarray(probs, dtype=np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: |accuracy - confidence| per confidence bin, weighted by its share."""
    probs = np.asarray(probs)
    return ece_of(probs.max(axis=1), probs.argmax(axis=1) == labels, bins)


def ece_of(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE from each prediction's top confidence and whether it was right (what a user sees)."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    # Bins (k/bins, (k+1)/bins]; a confidence of exactly 0 cannot occur with 7 classes.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for k in range(bins):
        members = index == k
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises NLL on (probs, labels): a grid on log T, then golden section."""
    def loss(log_t):
        return nll(apply_temperature(probs, float(np.exp(log_t))), labels)

    grid = np.linspace(np.log(0.05), np.log(20.0), 61)
    best = int(np.argmin([loss(g) for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):  # NLL is convex in 1/T: the bracket holds the minimum
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def calibration_report(probs: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """ECE and NLL before and after a temperature."""
    after = apply_temperature(probs, temperature)
    return {"temperature": float(temperature),
            "ece_before": ece(probs, labels), "ece_after": ece(after, labels),
            "nll_before": nll(probs, labels), "nll_after": nll(after, labels)}


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path, bins: int = ECE_BINS):
    """Reliability diagrams, one panel per entry {title: (probs, labels, temperature)}: before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 4.4), squeeze=False)
    edges = np.linspace(0, 1, bins + 1)
    for ax, (title, (probs, labels, temperature)) in zip(axes[0], curves.items()):
        for label, p, style in (("before", probs, "o--"), (f"after (T = {temperature:.2f})",
                                                            apply_temperature(probs, temperature), "s-")):
            conf, correct = p.max(axis=1), p.argmax(axis=1) == labels
            index = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
            xs = [conf[index == k].mean() for k in range(bins) if (index == k).sum() >= 10]
            ys = [correct[index == k].mean() for k in range(bins) if (index == k).sum() >= 10]
            ax.plot(xs, ys, style, label=f"{label}: ECE {ece(p, labels):.3f}")
        ax.plot(edges, edges, color="grey", lw=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=title)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def serving(meta: dict, view_set: str | None = None) -> tuple[str, float]:
    """(view set, temperature) to serve a model with, from its NAME.json "serving" entry.

    view_set None means the set chosen on val (trainer.calibrate); a model never calibrated
    is served plain at T = 1.
    """
    entry = meta.get("serving", {})
    view_set = view_set or entry.get("views", "none")
    return view_set, float(entry.get("temperature", {}).get(view_set, 1.0))
