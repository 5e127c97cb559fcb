// demo/pipeline/tracking.py's Tracker in the browser: faces matched to the last frame's tracks by
// box overlap (best pairs first), each track's probabilities an exponential moving average, and a
// timeline of the largest face. The constants come from the server (/live/config.json).

export function iou(a, b) {
  const [ax, ay, aw, ah] = a;
  const [bx, by, bw, bh] = b;
  const ix = Math.max(0, Math.min(ax + aw, bx + bw) - Math.max(ax, bx));
  const iy = Math.max(0, Math.min(ay + ah, by + bh) - Math.max(ay, by));
  const inter = ix * iy;
  const union = aw * ah + bw * bh - inter;
  return union ? inter / union : 0;
}

export class Tracker {
  constructor({ alpha, min_iou, history_s }) {
    this.alpha = alpha;
    this.minIou = min_iou;
    this.historyS = history_s;
    this.tracks = [];
    this.nextId = 1;
    this.history = []; // [seconds, probabilities of the largest face]
  }

  // Match this frame's boxes to tracks: [{id, box, probs, classifiedAt}] in the order of `boxes`.
  // Probabilities arrive later (classify()), so a new track starts without them.
  match(boxes) {
    const pairs = [];
    this.tracks.forEach((t, ti) => boxes.forEach((b, fi) => pairs.push([iou(t.box, b), ti, fi])));
    pairs.sort((p, q) => q[0] - p[0]);
    const usedTracks = new Set();
    const assigned = new Map();
    for (const [overlap, ti, fi] of pairs) {
      if (overlap < this.minIou) break;
      if (usedTracks.has(ti) || assigned.has(fi)) continue;
      usedTracks.add(ti);
      assigned.set(fi, this.tracks[ti]);
    }
    this.tracks = boxes.map((box, fi) => {
      const track = assigned.get(fi) || { id: this.nextId++, probs: null, classifiedAt: -Infinity };
      track.box = box;
      return track;
    });
    return this.tracks;
  }

  // A track's new probabilities, blended into its average as Tracker.update does.
  classify(track, probs, t) {
    track.probs = track.probs
      ? Float32Array.from(probs, (p, i) => this.alpha * p + (1 - this.alpha) * track.probs[i])
      : Float32Array.from(probs);
    track.classifiedAt = t;
    const largest = this.tracks.reduce((a, b) => (b.box[2] * b.box[3] > a.box[2] * a.box[3] ? b : a), track);
    if (largest === track) {
      this.history.push([t / 1000, track.probs]);
      while (this.history.length && this.history[0][0] < t / 1000 - this.historyS) this.history.shift();
    }
  }
}
